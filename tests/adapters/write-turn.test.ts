/**
 * The session is the one layer that merges writes (adapters/shared/session.ts): what a server
 * socket is sent during one turn of the event loop, by the code of several reads and the
 * microtasks after each, reaches the runtime's transport as one `write()`, once every read of
 * the turn was handled (where the transport gives `afterReads`: Node, Bun), or, on a transport
 * without it (Deno), one write per tick. The transport is the runtime's real one, wrapped to
 * count its writes.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { runtime, runtimeName, type ServerWebSocket, WebSocketServer } from "../../adapters/auto.ts";
import { loggingRuntime } from "../support/logged-transport.ts";
import { RawClient, until } from "../support/net.ts";

test(`server on ${runtimeName}: sends of one loop turn, across microtasks, reach the transport as one write (per tick without afterReads), in order`, async () => {
  const { runtime: counting, transports } = loggingRuntime(runtime);
  let socket: ServerWebSocket | null = null;
  const server = await new WebSocketServer({}, { open: (ws) => (socket = ws) }).listen(counting, { port: 0 });
  const raw = await RawClient.connect(server.port);
  try {
    await raw.opened();
    await until(() => socket !== null, "the server socket");
    await new Promise((resolve) => setTimeout(resolve, 10)); // a turn of its own
    const before = transports[0].writes.length;
    for (let i = 0; i < 50; i++) socket!.send(`a${i}`);
    // Microtasks, as after each read of a turn (a publisher's handler, a resolved promise)...
    for (let i = 0; i < 3; i++) await new Promise<void>((resolve) => queueMicrotask(resolve));
    // ...then more sends of the same turn: they join the same write.
    for (let i = 0; i < 50; i++) socket!.send(`b${i}`);
    const texts = () => raw.events.filter((e) => e.type === "text").map((e) => (e as { data: string }).data);
    await until(() => texts().length === 100, "the 100 messages");
    assert.deepEqual(texts(), [...Array.from({ length: 50 }, (_, i) => `a${i}`), ...Array.from({ length: 50 }, (_, i) => `b${i}`)]);
    const expected = transports[0].afterReads === undefined ? [1, 1] : [1];
    assert.deepEqual(transports[0].writes.slice(before), expected, "one write of one merged chunk per loop turn (per tick)");
  } finally {
    raw.destroy();
    await server.close({ timeout: 100 });
  }
});
