/**
 * The server API over real loopback sockets, on the adapter of the runtime running the test
 * (Node's net, Deno.listen, Bun.listen), with our client and hand-driven raw clients as peers.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { checkOrigin, type ClosingHandshake, runtimeName, serve, type ServerWebSocket, WebSocket } from "../../adapters/auto.ts";
import { encodeFrame, Opcode } from "../../core/mod.ts";
import { delay, RawClient, readFixture, until } from "../support/net.ts";

type Closed = { code: number; reason: string; wasClean: boolean };

/** Opens our client and waits for open; collects its messages and close. */
async function connect(url: string, protocols?: string[], options?: ConstructorParameters<typeof WebSocket>[2]) {
  const ws = new WebSocket(url, protocols, options);
  ws.binaryType = "uint8array";
  const messages: (string | Uint8Array)[] = [];
  let closed: Closed | null = null;
  let error: string | null = null;
  ws.addEventListener("message", (e) => messages.push((e as MessageEvent).data));
  ws.addEventListener("error", (e) => (error = (e as ErrorEvent).message));
  ws.addEventListener("close", (e) => {
    const c = e as CloseEvent;
    closed = { code: c.code, reason: c.reason, wasClean: c.wasClean };
  });
  await until(() => ws.readyState !== WebSocket.CONNECTING, "the client to open");
  return {
    ws,
    messages,
    get closed() {
      return closed as Closed | null;
    },
    get error() {
      return error as string | null;
    },
    whenClosed: () => until(() => closed !== null, "the client close event").then(() => closed as unknown as Closed),
  };
}

describe(`server on ${runtimeName}`, () => {
  test("echo: text, binary, empty and 1 MiB messages, in order", async () => {
    const server = await serve({ port: 0 }, {
      message(ws, data) {
        ws.send(data);
      },
    });
    const client = await connect(`ws://127.0.0.1:${server.port}`);
    const big = new Uint8Array(1024 * 1024).map((_, i) => i * 7);
    client.ws.send("héllo");
    client.ws.send(new Uint8Array([1, 2, 3]));
    client.ws.send("");
    client.ws.send(big);
    client.ws.send(new Blob(["from a blob"]));
    client.ws.send("after the blob");
    await until(() => client.messages.length === 6, "six echoes");
    assert.equal(client.messages[0], "héllo");
    assert.deepEqual([...(client.messages[1] as Uint8Array)], [1, 2, 3]);
    assert.equal(client.messages[2], "");
    assert.deepEqual(client.messages[3], big);
    assert.equal(new TextDecoder().decode(client.messages[4] as Uint8Array), "from a blob");
    assert.equal(client.messages[5], "after the blob");
    client.ws.close(1000, "bye");
    assert.deepEqual(await client.whenClosed(), { code: 1000, reason: "", wasClean: true });
    await server.close();
  });

  test("handlers see open, message, ping, pong and close with code, reason, wasClean and both close frames", async () => {
    const log: string[] = [];
    let closeInfo: Closed | null = null;
    let closing: ClosingHandshake | null = null;
    const server = await serve({ port: 0 }, {
      open: (ws) => log.push(`open ${ws.protocol}`),
      message: (_ws, data, isBinary) => log.push(`message ${isBinary} ${data}`),
      ping: (_ws, data) => log.push(`ping ${new TextDecoder().decode(data)}`),
      pong: (_ws, data) => log.push(`pong ${new TextDecoder().decode(data)}`),
      close: (_ws, code, reason, wasClean, handshake) => {
        closeInfo = { code, reason, wasClean };
        closing = { sent: handshake.sent, received: handshake.received, initiator: handshake.initiator };
      },
    });
    const raw = await RawClient.connect(server.port, { protocols: ["chat"] });
    await raw.opened();
    raw.connection.sendText("t");
    raw.connection.ping("are you there");
    raw.connection.pong("unsolicited");
    raw.connection.close(4001, "done here");
    raw.pump();
    await until(() => closeInfo !== null, "the server close handler");
    assert.deepEqual(log, ["open chat", "message false t", "ping are you there", "pong unsolicited"]);
    assert.deepEqual(closeInfo, { code: 4001, reason: "done here", wasClean: true });
    assert.deepEqual(closing, { sent: { code: 4001, reason: "" }, received: { code: 4001, reason: "done here" }, initiator: "remote" });
    assert.ok(raw.events.some((e) => e.type === "pong"), "the server answered the ping");
    await server.close();
  });

  test("the upgrade hook sees the request and can accept with a subprotocol, headers and data", async () => {
    let seen: { path: string; query: string; origin: string | null; protocols: readonly string[]; remote: string } | null = null;
    const server = await serve<{ user: string }>({ port: 0 }, {
      upgrade(request) {
        seen = {
          path: request.path,
          query: request.query,
          origin: request.origin,
          protocols: request.protocols,
          remote: request.remoteAddress,
        };
        return { protocol: "v2", headers: { "X-Server": "anyws" }, data: { user: "ada" } };
      },
      open(ws) {
        ws.send(`hello ${ws.data.user}, ${ws.protocol}`);
      },
    });
    const client = await connect(`ws://127.0.0.1:${server.port}/room?id=7`, ["v1", "v2"], { origin: "https://app.example" });
    await until(() => client.messages.length === 1, "the greeting");
    assert.equal(client.messages[0], "hello ada, v2");
    assert.equal(client.ws.protocol, "v2");
    assert.deepEqual(seen, { path: "/room", query: "id=7", origin: "https://app.example", protocols: ["v1", "v2"], remote: "127.0.0.1" });
    client.ws.close();
    await client.whenClosed();
    await server.close();
  });

  test("the upgrade hook can reject with a status; the client reports it", async () => {
    const server = await serve({ port: 0 }, {
      upgrade: async (request) => {
        await delay(10); // asynchronous hooks are awaited
        return checkOrigin(request, ["https://good.example"]) ?? { accept: false, status: 401, body: "who are you" };
      },
    });
    const bad = await connect(`ws://127.0.0.1:${server.port}`, undefined, { origin: "https://evil.example" });
    assert.deepEqual(await bad.whenClosed(), { code: 1006, reason: "", wasClean: false });
    assert.match(bad.error ?? "", /HTTP 403/);
    const unauthorized = await connect(`ws://127.0.0.1:${server.port}`, undefined, { origin: "https://good.example" });
    await unauthorized.whenClosed();
    assert.match(unauthorized.error ?? "", /HTTP 401/);
    assert.equal(server.clients.size, 0);
    await server.close();
  });

  test("checkOrigin accepts a request without Origin unless allowMissing is false", async () => {
    for (const allowMissing of [undefined, false]) {
      const server = await serve({ port: 0 }, {
        upgrade: (request) => checkOrigin(request, ["https://good.example"], { allowMissing }),
      });
      const good = await connect(`ws://127.0.0.1:${server.port}`, undefined, { origin: "https://GOOD.example" });
      assert.equal(good.ws.readyState, WebSocket.OPEN, "a listed origin, in any case");
      good.ws.close();
      await good.whenClosed();
      const none = await connect(`ws://127.0.0.1:${server.port}`); // our client sends no Origin unless told
      if (allowMissing === false) {
        assert.deepEqual(await none.whenClosed(), { code: 1006, reason: "", wasClean: false });
        assert.match(none.error ?? "", /HTTP 403/);
      } else {
        assert.equal(none.ws.readyState, WebSocket.OPEN, "no Origin: accepted by default");
        none.ws.close();
        await none.whenClosed();
      }
      await server.close();
    }
  });

  test("handlers that throw: the upgrade request gets 500, errors go to the error handler, the server keeps serving", async () => {
    const logged: unknown[] = [];
    const originalError = console.error;
    console.error = (...args: unknown[]) => void logged.push(args[1]);
    const errors: string[] = [];
    try {
      const server = await serve({ port: 0 }, {
        upgrade(request) {
          if (request.query === "boom") throw new Error("hook failed");
        },
        message(ws, data) {
          if (data === "throw") throw new Error("handler failed");
          ws.send(data);
        },
        error: (_ws, error) => void errors.push(error.message),
      });
      const refused = await connect(`ws://127.0.0.1:${server.port}/?boom`);
      await refused.whenClosed();
      assert.match(refused.error ?? "", /HTTP 500/);
      assert.deepEqual(logged.map((e) => (e as Error).message), ["hook failed"]);
      const client = await connect(`ws://127.0.0.1:${server.port}/`);
      client.ws.send("throw");
      client.ws.send("still served");
      await until(() => client.messages.length === 1, "the echo after the throw");
      assert.equal(client.messages[0], "still served");
      assert.deepEqual(errors, ["handler failed"]);
      client.ws.close();
      await client.whenClosed();
      await server.close();
    } finally {
      console.error = originalError;
    }
  });

  test("a path option answers other paths with 404", async () => {
    const server = await serve({ port: 0, path: "/ws" }, {});
    const wrong = await connect(`ws://127.0.0.1:${server.port}/other`);
    await wrong.whenClosed();
    assert.match(wrong.error ?? "", /HTTP 404/);
    const right = await connect(`ws://127.0.0.1:${server.port}/ws`);
    assert.equal(right.ws.readyState, WebSocket.OPEN);
    right.ws.close();
    await right.whenClosed();
    await server.close();
  });

  test("server-initiated close and terminate", async () => {
    const sockets: ServerWebSocket[] = [];
    const server = await serve({ port: 0 }, { open: (ws) => sockets.push(ws) });
    const a = await connect(`ws://127.0.0.1:${server.port}`);
    const b = await connect(`ws://127.0.0.1:${server.port}`);
    await until(() => sockets.length === 2, "two server sockets");
    sockets[0].close(4000, "go away");
    sockets[1].terminate();
    assert.deepEqual(await a.whenClosed(), { code: 4000, reason: "go away", wasClean: true });
    assert.deepEqual(await b.whenClosed(), { code: 1006, reason: "", wasClean: false });
    assert.equal(server.clients.size, 0);
    assert.throws(() => sockets[0].close(1005)); // not a sendable code
    await server.close();
  });

  test("pub/sub: subscribers get published messages; the publisher and unsubscribed sockets don't", async () => {
    const server = await serve({ port: 0 }, {
      open(ws) {
        ws.subscribe("news");
      },
      message(ws, data) {
        if (data === "leave") ws.unsubscribe("news");
        else ws.publish("news", data);
      },
    });
    const clients = await Promise.all([0, 1, 2].map(() => connect(`ws://127.0.0.1:${server.port}`)));
    await until(() => server.subscriberCount("news") === 3, "three subscribers");
    clients[0].ws.send("from 0");
    await until(() => clients[1].messages.length === 1 && clients[2].messages.length === 1, "the publication");
    assert.deepEqual(clients[0].messages, []);
    clients[2].ws.send("leave");
    await until(() => server.subscriberCount("news") === 2, "an unsubscribe");
    assert.equal(server.publish("news", new Uint8Array([42])), 2);
    await until(() => clients[0].messages.length === 1 && clients[1].messages.length === 2, "the server's publication");
    assert.deepEqual([...(clients[1].messages[1] as Uint8Array)], [42]);
    assert.equal(clients[2].messages.length, 1);
    for (const c of clients) c.ws.close();
    await Promise.all(clients.map((c) => c.whenClosed()));
    assert.equal(server.subscriberCount("news"), 0, "closed sockets leave their topics");
    await server.close();
  });

  test("backpressure: a peer that never reads cannot grow the server's memory; sends are dropped", async () => {
    const results: number[] = [];
    let drained = false;
    let serverSocket: ServerWebSocket | null = null;
    const limit = 4 * 1024 * 1024;
    const server = await serve({ port: 0, backpressureLimit: limit }, {
      open: (ws) => (serverSocket = ws),
      drain: () => (drained = true),
    });
    const raw = await RawClient.connect(server.port);
    await raw.opened();
    raw.transport.pause();
    raw.parse = false;
    await until(() => serverSocket !== null, "the server socket");
    const chunk = new Uint8Array(1024 * 1024);
    let maxBuffered = 0;
    // Offer 1 GiB in 1 MiB messages.
    for (let i = 0; i < 1024; i++) {
      results.push(serverSocket!.send(chunk));
      maxBuffered = Math.max(maxBuffered, serverSocket!.bufferedAmount);
      if (i % 64 === 0) await delay(1);
    }
    assert.ok(results.includes(-1), "some sends were queued under backpressure");
    assert.ok(results.filter((r) => r === 0).length > 900, "most of the gigabyte was dropped, not buffered");
    assert.ok(maxBuffered <= limit + chunk.length, `buffered ${maxBuffered} bytes, limit ${limit}`);
    raw.received.length = 0;
    raw.transport.resume();
    await until(() => drained, "the drain handler");
    raw.destroy();
    await server.close();
  });

  test("backpressure with closeOnBackpressureLimit closes the connection with 1008", async () => {
    let closeCode = 0;
    let serverSocket: ServerWebSocket | null = null;
    const server = await serve({ port: 0, backpressureLimit: 1024 * 1024, closeOnBackpressureLimit: true, closeTimeout: 200 }, {
      open: (ws) => (serverSocket = ws),
      close: (_ws, code) => (closeCode = code),
    });
    const raw = await RawClient.connect(server.port);
    await raw.opened();
    raw.transport.pause();
    await until(() => serverSocket !== null, "the server socket");
    const chunk = new Uint8Array(256 * 1024);
    let sent = 0;
    while (serverSocket!.send(chunk) !== 0 && sent < 4096) sent++;
    assert.ok(sent < 4096, "the limit was reached");
    raw.parse = false;
    raw.transport.resume();
    await until(() => raw.closed, "the server to close the connection", 10_000);
    await until(() => closeCode !== 0, "the close handler");
    // The peer never answered the close frame: the close timeout ended it.
    assert.equal(closeCode, 1006);
    const bytes = new Uint8Array(raw.received.reduce((n, c) => n + c.length, 0));
    let offset = 0;
    for (const c of raw.received) {
      bytes.set(c, offset);
      offset += c.length;
    }
    // The last frame the server wrote is its close frame with 1008.
    const close = bytes.subarray(bytes.length - 2 - 2 - "send buffer limit exceeded".length);
    assert.equal(close[0], 0x88);
    assert.equal((close[2] << 8) | close[3], 1008);
    await server.close();
  });

  test("slowloris: a client sending its handshake one byte at a time is cut at the handshake timeout", async () => {
    const server = await serve({ port: 0, handshakeTimeout: 1000 }, {});
    const raw = await RawClient.connect(server.port, { handshake: false });
    const request = new TextEncoder().encode(`GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n`);
    let sent = 0;
    for (; sent < request.length && !raw.closed; sent++) {
      raw.write(request.subarray(sent, sent + 1));
      await delay(100);
    }
    await raw.whenClosed(5000);
    assert.ok(sent < request.length, "cut before the request was complete");
    // 408 is the handshake timeout's answer.
    assert.match(new TextDecoder().decode(raw.received[0]), /^HTTP\/1\.1 408 /);
    await server.close();
  });

  test("keepalive: a peer that never answers pings is dropped with 1011", async () => {
    let closeCode = 0;
    const server = await serve({ port: 0, keepaliveInterval: 200, pongTimeout: 200 }, {
      close: (_ws, code) => (closeCode = code),
    });
    const raw = await RawClient.connect(server.port, { autoPong: false });
    await raw.opened();
    await raw.whenClosed(5000);
    assert.ok(raw.events.some((e) => e.type === "ping"), "the server pinged");
    const close = raw.events.find((e) => e.type === "close");
    assert.ok(close && close.type === "close");
    assert.equal(close.code, 1011);
    assert.equal(close.reason, "keepalive ping timeout");
    await until(() => closeCode !== 0, "the server's close handler");
    await server.close();
  });

  test("idle connections that answer pings stay open", async () => {
    const server = await serve({ port: 0, keepaliveInterval: 100, pongTimeout: 100 }, {});
    const client = await connect(`ws://127.0.0.1:${server.port}`);
    await delay(600);
    assert.equal(client.ws.readyState, WebSocket.OPEN);
    client.ws.close();
    await client.whenClosed();
    await server.close();
  });

  test("abrupt resets in the middle of frames: close events with 1006, and the server keeps serving", async () => {
    const codes: number[] = [];
    const server = await serve({ port: 0 }, {
      message: (ws, data) => ws.send(data),
      close: (_ws, code, _reason, wasClean) => codes.push(wasClean ? -code : code),
    });
    for (let i = 0; i < 20; i++) {
      const raw = await RawClient.connect(server.port);
      await raw.opened();
      const frame = encodeFrame(Opcode.BINARY, new Uint8Array(1000 + i * 100), true, 0, new Uint8Array([1, 2, 3, 4]));
      const bytes = frame.length === 1 ? frame[0] : new Uint8Array([...frame[0], ...frame[1]]);
      raw.write(bytes.subarray(0, 2 + i * 50));
      await delay(5);
      raw.destroy();
    }
    await until(() => codes.length === 20, "twenty close events");
    assert.deepEqual(codes, Array(20).fill(1006));
    assert.equal(server.clients.size, 0, "no socket left behind");
    const client = await connect(`ws://127.0.0.1:${server.port}`);
    client.ws.send("still here");
    await until(() => client.messages.length === 1, "an echo");
    client.ws.close();
    await client.whenClosed();
    await server.close();
  });

  test("garbage instead of a handshake gets 400 and the server keeps serving", async () => {
    const server = await serve({ port: 0 }, {});
    const raw = await RawClient.connect(server.port, { handshake: false });
    raw.write(new TextEncoder().encode("\x16\x03\x01 not http at all\r\n\r\n"));
    await raw.whenClosed();
    assert.match(new TextDecoder().decode(raw.received[0]), /^HTTP\/1\.1 400 /);
    await server.close();
  });

  test("1,000 concurrent connections echo sequence numbers: nothing lost, nothing reordered", async () => {
    const server = await serve({ port: 0 }, { message: (ws, data) => ws.send(data) });
    const count = 1000;
    const perClient = 10;
    const clients: Awaited<ReturnType<typeof connect>>[] = [];
    for (let i = 0; i < count; i += 100) {
      clients.push(...(await Promise.all(Array.from({ length: 100 }, () => connect(`ws://127.0.0.1:${server.port}`)))));
    }
    assert.equal(server.clients.size, count);
    clients.forEach((c, i) => {
      for (let n = 0; n < perClient; n++) c.ws.send(`${i}:${n}`);
    });
    await until(() => clients.every((c) => c.messages.length === perClient), "every echo", 30_000);
    clients.forEach((c, i) => {
      assert.deepEqual(c.messages, Array.from({ length: perClient }, (_, n) => `${i}:${n}`));
    });
    await server.close({ timeout: 10_000 });
    await until(() => clients.every((c) => c.closed !== null), "every close", 30_000);
    assert.ok(clients.every((c) => c.closed!.code === 1001 && c.closed!.wasClean));
  });

  test("graceful shutdown: 1001 to cooperating clients, terminate the rest after the timeout", async () => {
    const server = await serve({ port: 0, closeTimeout: 60_000 }, {});
    const polite = await connect(`ws://127.0.0.1:${server.port}`);
    const deaf = await RawClient.connect(server.port);
    await deaf.opened();
    deaf.parse = false; // never answers the close frame
    await until(() => server.clients.size === 2, "two clients");
    await server.close({ timeout: 300 });
    assert.deepEqual(await polite.whenClosed(), { code: 1001, reason: "server shutting down", wasClean: true });
    await deaf.whenClosed();
    assert.equal(server.clients.size, 0);
    // Not accepting anymore.
    const late = new WebSocket(`ws://127.0.0.1:${server.port}`);
    await new Promise((resolve) => late.addEventListener("close", resolve));
  });

  test("TLS", async () => {
    const server = await serve({ port: 0, tls: { cert: await readFixture("cert.pem"), key: await readFixture("key.pem") } }, {
      message: (ws, data) => ws.send(data),
    });
    const client = await connect(`wss://127.0.0.1:${server.port}`, undefined, { tls: { ca: await readFixture("ca.pem") } });
    assert.equal(client.ws.readyState, WebSocket.OPEN);
    client.ws.send("secure");
    await until(() => client.messages.length === 1, "the echo");
    assert.equal(client.messages[0], "secure");
    client.ws.close();
    await client.whenClosed();
    const untrusted = await connect(`wss://127.0.0.1:${server.port}`);
    const closed = await untrusted.whenClosed();
    assert.equal(closed.code, 1006);
    assert.ok(untrusted.error, "an untrusted certificate is an error");
    await server.close();
  });
});
