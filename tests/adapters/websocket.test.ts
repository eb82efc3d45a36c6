/**
 * The WHATWG-compatible WebSocket client over real loopback sockets, on the adapter of the
 * runtime running the test, against our server (and a silent TCP listener).
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { type AddressInfo, createServer, type Socket } from "node:net";
import { type ErrorEvent, runtime, runtimeName, serve, WebSocket, WebSocketError } from "../../adapters/auto.ts";
import { until } from "../support/net.ts";

function domError(name: string) {
  return (error: unknown) => error instanceof DOMException && error.name === name;
}

/** Records what a client dispatches, in order. */
function record(ws: InstanceType<typeof WebSocket>) {
  const log: string[] = [];
  const data: unknown[] = [];
  let close: { code: number; reason: string; wasClean: boolean } | null = null;
  let error: string | null = null;
  ws.addEventListener("open", () => log.push("open"));
  ws.addEventListener("message", (e) => {
    log.push("message");
    data.push((e as MessageEvent).data);
  });
  ws.addEventListener("error", (e) => {
    log.push("error");
    error = (e as ErrorEvent).message;
  });
  ws.addEventListener("close", (e) => {
    const c = e as CloseEvent;
    log.push("close");
    close = { code: c.code, reason: c.reason, wasClean: c.wasClean };
  });
  return {
    log,
    data,
    get error() {
      return error as string | null;
    },
    closed: () => until(() => close !== null, "the close event").then(() => close!),
  };
}

describe(`WebSocket client on ${runtimeName}`, () => {
  test("the constructor rejects bad URLs and subprotocols with SyntaxError", () => {
    assert.throws(() => new WebSocket("not a url"), domError("SyntaxError"));
    assert.throws(() => new WebSocket("ftp://127.0.0.1/"), domError("SyntaxError"));
    assert.throws(() => new WebSocket("ws://127.0.0.1/#fragment"), domError("SyntaxError"));
    assert.throws(() => new WebSocket("ws://127.0.0.1/", ["a", "a"]), domError("SyntaxError"));
    assert.throws(() => new WebSocket("ws://127.0.0.1/", "bad protocol"), domError("SyntaxError"));
    assert.throws(() => new WebSocket("ws://127.0.0.1/", "a\r\nX-Injected: 1"), domError("SyntaxError"));
  });

  test("a header value HTTP/1.1 cannot carry throws from the constructor, not later", () => {
    const invalid = (error: unknown) => error instanceof WebSocketError && error.code === "ERR_INVALID_HEADER";
    // U+2026 is no byte (RFC 7230 §3.2 field-content); CR LF would inject a header.
    assert.throws(() => new WebSocket("ws://127.0.0.1:9/", [], { headers: { Authorization: "Bearer \u2026" } }), invalid);
    assert.throws(() => new WebSocket("ws://127.0.0.1:9/", [], { headers: { "X-A": "1\r\nX-B: 2" } }), invalid);
  });

  test("constants, url, and http(s) schemes mapped to ws(s)", async () => {
    assert.deepEqual([WebSocket.CONNECTING, WebSocket.OPEN, WebSocket.CLOSING, WebSocket.CLOSED], [0, 1, 2, 3]);
    const server = await serve({ port: 0 }, {});
    const ws = new WebSocket(`http://127.0.0.1:${server.port}/p?q=1`);
    assert.equal(ws.url, `ws://127.0.0.1:${server.port}/p?q=1`);
    assert.equal(ws.OPEN, 1);
    assert.equal(ws.readyState, WebSocket.CONNECTING);
    assert.equal(ws.binaryType, "blob");
    const events = record(ws);
    await until(() => ws.readyState === WebSocket.OPEN, "open");
    ws.close();
    await events.closed();
    await server.close();
  });

  test("send while connecting throws InvalidStateError; close() validates code and reason", async () => {
    const server = await serve({ port: 0 }, {});
    const ws = new WebSocket(`ws://127.0.0.1:${server.port}`);
    assert.throws(() => ws.send("too early"), domError("InvalidStateError"));
    const events = record(ws);
    await until(() => ws.readyState === WebSocket.OPEN, "open");
    for (const code of [999, 1001, 1005, 1006, 2000, 2999, 5000]) {
      assert.throws(() => ws.close(code), domError("InvalidAccessError"), `code ${code}`);
    }
    assert.throws(() => ws.close(1000, "x".repeat(124)), domError("SyntaxError"));
    assert.equal(ws.readyState, WebSocket.OPEN);
    ws.close(3000, "x".repeat(123));
    assert.equal(ws.readyState, WebSocket.CLOSING);
    ws.send("discarded");
    assert.equal(ws.bufferedAmount >= "discarded".length, true, "data sent after close counts in bufferedAmount");
    assert.deepEqual(await events.closed(), { code: 3000, reason: "", wasClean: true });
    assert.equal(ws.readyState, WebSocket.CLOSED);
    await server.close();
  });

  test("the close event has the peer's code, as in browsers, and both close frames and who sent the first", async () => {
    const server = await serve({ port: 0 }, { message: (ws, data) => ws.close(4002, `server: ${data}`) });
    const closes: CloseEvent[] = [];
    const ours = new WebSocket(`ws://127.0.0.1:${server.port}`);
    ours.addEventListener("close", (e) => (closes[0] = e as CloseEvent));
    await until(() => ours.readyState === WebSocket.OPEN, "open");
    ours.close(4000, "client done");
    const theirs = new WebSocket(`ws://127.0.0.1:${server.port}`);
    theirs.addEventListener("close", (e) => (closes[1] = e as CloseEvent));
    theirs.onopen = () => theirs.send("bye");
    await until(() => closes[0] !== undefined && closes[1] !== undefined, "both close events");
    const fields = (e: CloseEvent) => {
      const c = e as CloseEvent & { sent: unknown; received: unknown; initiator: unknown };
      return { code: c.code, reason: c.reason, wasClean: c.wasClean, sent: c.sent, received: c.received, initiator: c.initiator };
    };
    assert.deepEqual(fields(closes[0]), {
      code: 4000, reason: "", wasClean: true,
      sent: { code: 4000, reason: "client done" }, received: { code: 4000, reason: "" }, initiator: "local",
    });
    assert.deepEqual(fields(closes[1]), {
      code: 4002, reason: "server: bye", wasClean: true,
      sent: { code: 4002, reason: "" }, received: { code: 4002, reason: "server: bye" }, initiator: "remote",
    });
    await server.close();
  });

  test("close() while connecting fails the connection: error, then close with 1006", async () => {
    const server = await serve({ port: 0 }, {});
    const ws = new WebSocket(`ws://127.0.0.1:${server.port}`);
    const events = record(ws);
    ws.close();
    assert.deepEqual(await events.closed(), { code: 1006, reason: "", wasClean: false });
    assert.deepEqual(events.log, ["error", "close"]);
    await server.close();
  });

  test("binaryType: blob, arraybuffer, uint8array; an unknown value is ignored", async () => {
    const server = await serve({ port: 0 }, { message: (ws) => ws.send(new Uint8Array([1, 2, 3])) });
    const ws = new WebSocket(`ws://127.0.0.1:${server.port}`);
    const events = record(ws);
    await until(() => ws.readyState === WebSocket.OPEN, "open");
    ws.send("go");
    await until(() => events.data.length === 1, "a blob");
    assert.ok(events.data[0] instanceof Blob);
    assert.deepEqual([...new Uint8Array(await (events.data[0] as Blob).arrayBuffer())], [1, 2, 3]);
    ws.binaryType = "arraybuffer";
    ws.send("go");
    await until(() => events.data.length === 2, "an ArrayBuffer");
    assert.ok(events.data[1] instanceof ArrayBuffer);
    assert.equal((events.data[1] as ArrayBuffer).byteLength, 3);
    ws.binaryType = "uint8array";
    ws.binaryType = "nonsense" as never;
    assert.equal(ws.binaryType, "uint8array");
    ws.send("go");
    await until(() => events.data.length === 3, "a Uint8Array");
    assert.ok(events.data[2] instanceof Uint8Array);
    ws.close();
    await events.closed();
    await server.close();
  });

  test("on* handler attributes: set, replace, clear; `this` is the socket", async () => {
    const server = await serve({ port: 0 }, { open: (ws) => ws.send("one") });
    const ws = new WebSocket(`ws://127.0.0.1:${server.port}`);
    const calls: string[] = [];
    ws.onmessage = () => calls.push("first");
    ws.onmessage = function (this: unknown) {
      calls.push(this === ws ? "second, this=ws" : "second");
    };
    assert.equal(typeof ws.onmessage, "function");
    ws.onopen = () => calls.push("open");
    const events = record(ws);
    await until(() => calls.length === 2, "two calls");
    assert.deepEqual(calls, ["open", "second, this=ws"]);
    ws.onmessage = null;
    assert.equal(ws.onmessage, null);
    ws.close();
    await events.closed();
    await server.close();
  });

  test("an on* handler keeps its place among the listeners when replaced, and goes last when set again after null (HTML §8.1.8.1)", async () => {
    const server = await serve({ port: 0 }, { open: (ws) => ws.send("one"), message: (ws) => ws.send("two") });
    const ws = new WebSocket(`ws://127.0.0.1:${server.port}`);
    const calls: string[] = [];
    ws.addEventListener("message", (event) => calls.push(`A ${event.data}`));
    ws.onmessage = (event) => calls.push(`first handler ${event.data}`);
    ws.addEventListener("message", (event) => calls.push(`B ${event.data}`));
    ws.onmessage = (event) => calls.push(`second handler ${event.data}`);
    const events = record(ws);
    await until(() => calls.length === 3, "the first message through every listener");
    ws.onmessage = null;
    ws.onmessage = (event) => calls.push(`third handler ${event.data}`);
    ws.send("next");
    await until(() => calls.length === 6, "the second message through every listener");
    assert.deepEqual(calls, ["A one", "second handler one", "B one", "A two", "B two", "third handler two"]);
    ws.close();
    await events.closed();
    await server.close();
  });

  test("an unreachable server: error, then close with 1006", async () => {
    const listener = await runtime.listen({ port: 0, hostname: "127.0.0.1" }, (t) => {
      t.destroy();
      return { onData() {}, onEnd() {}, onDrain() {}, onClose() {} };
    });
    const port = listener.port;
    await listener.close();
    const ws = new WebSocket(`ws://127.0.0.1:${port}`);
    const events = record(ws);
    assert.deepEqual(await events.closed(), { code: 1006, reason: "", wasClean: false });
    assert.deepEqual(events.log, ["error", "close"]);
    assert.match(events.error ?? "", /cannot connect/);
  });

  test("a server that accepts TCP but never answers: the connect timeout fails the connection", async () => {
    // Silent even to our FIN (half-open allowed), as an overloaded or stuck server is.
    const silent: Socket[] = [];
    const listener = createServer({ allowHalfOpen: true }, (socket) => {
      socket.on("error", () => {});
      silent.push(socket);
    });
    await new Promise<void>((resolve) => listener.listen(0, "127.0.0.1", resolve));
    const port = (listener.address() as AddressInfo).port;
    try {
      const started = performance.now();
      const ws = new WebSocket(`ws://127.0.0.1:${port}`, [], { connectTimeout: 200 });
      const events = record(ws);
      assert.deepEqual(await events.closed(), { code: 1006, reason: "", wasClean: false });
      // Not a timing measurement: only far from the 3 s an ended transport lingers for the
      // server's FIN, which a failed handshake must not wait for.
      const elapsed = performance.now() - started;
      assert.ok(elapsed < 1500, `the connect timeout fired after ${Math.round(elapsed)} ms`);
      assert.match(events.error ?? "", /timeout/);
    } finally {
      for (const socket of silent) socket.destroy();
      await new Promise((resolve) => listener.close(resolve));
    }
  });

  test("wss:// to a plain ws:// server: a TLS error that says so, with the TLS stack's own as cause", async () => {
    const server = await serve({ port: 0, hostname: "127.0.0.1" }, {});
    try {
      const ws = new WebSocket(`wss://127.0.0.1:${server.port}/`);
      let error: ErrorEvent | null = null;
      ws.onerror = (event) => (error = event);
      const events = record(ws);
      assert.deepEqual(await events.closed(), { code: 1006, reason: "", wasClean: false });
      const failure = (error as ErrorEvent | null)?.error;
      assert.equal(
        failure?.message,
        `cannot connect to 127.0.0.1:${server.port}: TLS handshake failed: the server did not answer with TLS (is it ws://?)`,
      );
      assert.ok(failure.cause instanceof Error, "the TLS stack's error is kept as the cause");
    } finally {
      await server.close();
    }
  });

  test("IPv6 literal URLs, extra headers and Origin", async () => {
    let seen: { host: string | null; token: string | null; origin: string | null } | null = null;
    const server = await serve({ port: 0, hostname: "::1" }, {
      upgrade(request) {
        seen = { host: request.headers.get("host"), token: request.headers.get("x-token"), origin: request.origin };
      },
    });
    const ws = new WebSocket(`ws://[::1]:${server.port}/`, [], { headers: { "X-Token": "secret" }, origin: "https://o.example" });
    const events = record(ws);
    await until(() => ws.readyState === WebSocket.OPEN, "open over IPv6");
    assert.deepEqual(seen, { host: `[::1]:${server.port}`, token: "secret", origin: "https://o.example" });
    ws.close();
    await events.closed();
    await server.close();
  });

  test("a message over maxMessageSize fails the connection with 1009 towards the server", async () => {
    let serverClose = 0;
    const server = await serve({ port: 0 }, {
      open: (ws) => ws.send(new Uint8Array(2000)),
      close: (_ws, code) => (serverClose = code),
    });
    const ws = new WebSocket(`ws://127.0.0.1:${server.port}`, [], { maxMessageSize: 1000 });
    const events = record(ws);
    await events.closed();
    assert.ok(events.log.includes("error"));
    assert.match(events.error ?? "", /over 1000 bytes/);
    await until(() => serverClose !== 0, "the server's close");
    assert.equal(serverClose, 1009);
    await server.close();
  });

  test("the server closing: close event with its code and reason", async () => {
    const server = await serve({ port: 0 }, { message: (ws) => ws.close(4321, "bye now") });
    const ws = new WebSocket(`ws://127.0.0.1:${server.port}`);
    const events = record(ws);
    await until(() => ws.readyState === WebSocket.OPEN, "open");
    ws.send("close please");
    assert.deepEqual(await events.closed(), { code: 4321, reason: "bye now", wasClean: true });
    assert.deepEqual(events.log, ["open", "close"]);
    await server.close();
  });
});
