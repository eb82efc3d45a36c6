/**
 * What a server socket's `send()` returns, on the runtime running the test: the message's size
 * in bytes (UTF-8 for text), and -1 exactly when, after that call, the bytes waiting to be sent
 * (`bufferedAmount`: the transport's and those the session holds until the loop turn's reads were handled) are
 * over the transport's high-water mark, from inside a handler as from outside. The transport
 * under the server is the runtime's real one, seen through a wrapper for its high-water mark.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { runtime, runtimeName, type ServerHandlers, type ServerWebSocket, WebSocketServer } from "../../adapters/auto.ts";
import { concatBytes } from "../../core/bytes.ts";
import { encodeFrame, Opcode } from "../../core/mod.ts";
import { utf8 } from "../support/bytes.ts";
import { loggingRuntime } from "../support/logged-transport.ts";
import { RawClient, until } from "../support/net.ts";

async function watchedServer(handlers: ServerHandlers) {
  const { runtime: watching, transports } = loggingRuntime(runtime);
  const server = await new WebSocketServer({ backpressureLimit: 256 * 1024 * 1024 }, handlers).listen(watching, { port: 0 });
  return { server, transports };
}

const KEY = new Uint8Array([1, 2, 3, 4]);

test(`server on ${runtimeName}: send() and ping() count a string's UTF-8 bytes`, async () => {
  let socket: ServerWebSocket | null = null;
  const { server } = await watchedServer({ open: (ws) => (socket = ws) });
  const raw = await RawClient.connect(server.port);
  await raw.opened();
  await until(() => socket !== null, "the server socket");
  const text = "héllo € 😀"; // 10 UTF-16 code units, 15 bytes
  assert.equal(socket!.send(text), utf8(text).length);
  assert.equal(socket!.send("ascii"), 5);
  assert.equal(socket!.send(Uint8Array.of(1, 2, 3)), 3);
  assert.equal(socket!.ping("ü"), 2);
  await until(() => raw.events.filter((e) => e.type === "text" || e.type === "binary").length === 3, "the messages");
  assert.deepEqual(raw.events.filter((e) => e.type === "text").map((e) => (e as { data: string }).data), [text, "ascii"]);
  raw.destroy();
  await server.close({ timeout: 100 });
});

/** Sends 4 KiB messages until one returns -1 and a few more; each call's result beside the bufferedAmount it left. */
function sendUntilBackpressure(ws: ServerWebSocket): { result: number; buffered: number }[] {
  const chunk = new Uint8Array(4096);
  const calls: { result: number; buffered: number }[] = [];
  let after = -1;
  for (let i = 0; i < 16384 && after < 8; i++) {
    const result = ws.send(chunk);
    calls.push({ result, buffered: ws.bufferedAmount });
    if (result === -1 || after >= 0) after++;
  }
  return calls;
}

function assertEachCall(calls: { result: number; buffered: number }[], highWaterMark: number, first = true): void {
  if (first) assert.ok(calls.findIndex((c) => c.result === -1) > 0, `a send returned -1 after some that did not (${calls.length} sends)`);
  for (const [i, call] of calls.entries()) {
    assert.equal(call.result, call.buffered > highWaterMark ? -1 : 4096, `send #${i}: -1 exactly when it left the buffer over the high-water mark`);
  }
}

test(`server on ${runtimeName}: to a peer that never reads, send() returns -1 from the very call that passes the high-water mark`, async () => {
  let socket: ServerWebSocket | null = null;
  let inHandler: { result: number; buffered: number }[] | null = null;
  const { server, transports } = await watchedServer({
    open: (ws) => (socket = ws),
    // From inside a handler, where the session is already writing the output of a read.
    message: (ws) => void (inHandler = sendUntilBackpressure(ws)),
  });
  const raw = await RawClient.connect(server.port);
  await raw.opened();
  await until(() => socket !== null, "the server socket");
  raw.parse = false;
  raw.transport.pause();
  raw.write(concatBytes(encodeFrame(Opcode.TEXT, utf8("go"), true, 0, KEY)));
  await until(() => inHandler !== null, "the message handler");
  const highWaterMark = transports[0].highWaterMark;
  assertEachCall(inHandler!, highWaterMark);
  // And from outside any handler, still backpressured.
  assertEachCall(sendUntilBackpressure(socket!), highWaterMark, false);
  raw.destroy();
  await server.close({ timeout: 100 });
});
