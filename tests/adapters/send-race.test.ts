/**
 * A send that races with the peer's close is dropped and reported, never thrown: the server
 * socket's `send`/`ping` return 0, our WebSocket discards it and counts it in `bufferedAmount`
 * (WHATWG). A send in answer to a message read with the close is no race: it goes out before the
 * close reply (RFC 6455 §5.5.1). The race is made deterministic with an extension whose encoding
 * finishes when the test says: while it runs, the peer's close has been answered but the
 * connection is not CLOSED.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { runtimeName, serve, type ServerWebSocket, WebSocket } from "../../adapters/auto.ts";
import { encodeFrame, Opcode } from "../../core/mod.ts";
import { concatBytes } from "../../core/bytes.ts";
import { utf8 } from "../support/bytes.ts";
import { clientFactory, DeferredExtension, serverFactory } from "../support/deferred-extension.ts";
import { RawClient, until } from "../support/net.ts";

const KEY = new Uint8Array([1, 2, 3, 4]);

test(`server on ${runtimeName}: send() and ping() after the peer's close was answered return 0, without an error`, async () => {
  const extension = new DeferredExtension();
  const results: number[] = [];
  const errors: string[] = [];
  const closes: number[] = [];
  let socket: ServerWebSocket | null = null;
  const server = await serve({ port: 0, extensions: [serverFactory(extension)] }, {
    open(ws) {
      socket = ws;
      ws.send("being encoded"); // waits on the extension: the close reply will queue behind it
    },
    message(ws, data) {
      results.push(ws.send(`re: ${data}`), ws.ping("p"));
    },
    error: (_ws, error) => void errors.push(error.message),
    close: (_ws, code) => void closes.push(code),
  });
  const raw = await RawClient.connect(server.port, { handshake: false });
  try {
    raw.write(utf8(
      "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Extensions: x-deferred\r\n\r\n",
    ));
    await until(() => socket !== null && extension.waiting.length === 1, "the server's open and its message being encoded");
    // A message and a close frame in one write: the handler's answer goes out before the close reply.
    raw.write(concatBytes([
      ...encodeFrame(Opcode.TEXT, utf8("hello"), true, 0, KEY),
      ...encodeFrame(Opcode.CLOSE, Uint8Array.of(0x03, 0xe8), true, 0, KEY),
    ]));
    await until(() => results.length === 2, "the message handler");
    assert.ok(results[0] !== 0 && results[1] !== 0, `the answer to the message is sent, got ${results}`);
    // The close reply now waits behind the message being encoded: a send meanwhile lost the race.
    results.push(socket!.send("late"), socket!.ping("p"));
    assert.deepEqual(results.slice(2), [0, 0], "dropped");
    assert.deepEqual(errors, [], "no error reported");
    await until(() => (extension.finishAll(), closes.length === 1), "the close handler");
    assert.deepEqual(closes, [1000]);
    assert.deepEqual(errors, []);
  } finally {
    raw.destroy();
    await server.close({ timeout: 500 });
  }
});

test(`our WebSocket on ${runtimeName}: send() after the server's close was answered is discarded and counted, not thrown`, async () => {
  const server = await serve({ port: 0, extensions: [serverFactory(Object.assign(new DeferredExtension(), { sync: true }))] }, {
    message(ws, data) {
      if (data === "go") {
        ws.send("bye");
        ws.close(1000);
      }
    },
  });
  const extension = new DeferredExtension();
  extension.sync = true;
  const ws = new WebSocket(`ws://127.0.0.1:${server.port}`, [], { perMessageDeflate: false, extensions: [clientFactory(extension)] });
  try {
    let thrown: unknown = null;
    let buffered: [number, number] | null = null;
    let closed: number | null = null;
    let replied = false;
    ws.onmessage = () => {
      ws.send("reply"); // in answer to the message read with the close: sent before the close reply
      replied = true;
    };
    ws.onclose = (event) => void (closed = (event as unknown as { code: number }).code);
    await until(() => ws.readyState === WebSocket.OPEN, "the client to open");
    ws.send("go"); // encoded at once: written
    extension.sync = false;
    ws.send("x".repeat(100)); // waits on the extension: our close reply will queue behind it
    await until(() => replied, "the message");
    // The close reply waits behind the message being encoded: a send meanwhile lost the race.
    const before = ws.bufferedAmount;
    try {
      ws.send("later");
    } catch (error) {
      thrown = error;
    }
    buffered = [before, ws.bufferedAmount];
    assert.equal(thrown, null, "send() did not throw");
    const [, after] = buffered!;
    assert.equal(after - before, 5, "the discarded message is counted in bufferedAmount");
    await until(() => (extension.finishAll(), closed !== null), "the close event");
    assert.equal(closed, 1000);
  } finally {
    ws.close();
    await server.close({ timeout: 500 });
  }
});
