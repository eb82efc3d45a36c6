/**
 * Two servers in one process share nothing (adapters/shared/session.ts, SessionHost): a merge
 * buffer that one server's socket used for its writes, and gave back once its transport had sent
 * it, is reused by that server only, never handed to another server's socket. The transports are
 * the runtime's real ones, wrapped to record the memory under each chunk written.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { runtime, runtimeName, type ServerWebSocket, WebSocketServer } from "../../adapters/auto.ts";
import { loggingRuntime } from "../support/logged-transport.ts";
import { RawClient, until } from "../support/net.ts";

/** A listening server whose transports are logged, with one client connected to it. */
async function serverWithClient() {
  const { runtime: logging, transports } = loggingRuntime(runtime);
  let socket: ServerWebSocket | null = null;
  const server = await new WebSocketServer({}, { open: (ws) => (socket = ws) }).listen(logging, { port: 0 });
  const client = await RawClient.connect(server.port);
  await client.opened();
  await until(() => socket !== null, "the server socket");
  const binaries = () => client.events.filter((e) => e.type === "binary").length;
  return { server, client, transport: () => transports[0], socket: () => socket!, binaries };
}

/** Sends eight 4000-byte messages in one turn (merged into one pooled buffer), and waits until the client has them all. */
async function burst(s: Awaited<ReturnType<typeof serverWithClient>>): Promise<void> {
  const before = s.binaries();
  for (let i = 0; i < 8; i++) s.socket().send(new Uint8Array(4000).fill(i));
  await until(() => s.binaries() === before + 8, "the burst");
  await until(() => s.transport().bufferedAmount === 0, "the transport to have sent it");
}

test(`on ${runtimeName}, a merge buffer one server gave back is never handed to another server's socket`, async () => {
  const a = await serverWithClient();
  const b = await serverWithClient();
  try {
    await burst(a);
    const used = new Set(a.transport().buffers);
    // A small send: server a's session finds its transport empty and gives its merge buffer back.
    a.socket().send("x");
    await until(() => a.client.events.some((e) => e.type === "text"), "the text");
    await burst(b);
    const shared = b.transport().buffers.filter((buffer) => used.has(buffer));
    assert.equal(shared.length, 0, "server b wrote from none of server a's buffers");
    // The buffer is still server a's to reuse: its next burst merges into memory it used before.
    const before = a.transport().buffers.length;
    await burst(a);
    assert.ok(a.transport().buffers.slice(before).some((buffer) => used.has(buffer)), "server a reuses its own buffer");
  } finally {
    a.client.destroy();
    b.client.destroy();
    await Promise.all([a.server.close({ timeout: 100 }), b.server.close({ timeout: 100 })]);
  }
});
