/**
 * The Node adapter's transport over real loopback sockets: TCP and TLS, IPv4 and IPv6,
 * backpressure, reads, and every way a connection ends. Everything opened is closed by the
 * test that opened it (see `track`), and every wait is bounded (see `until`).
 */
import { describe, test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import * as net from "node:net";
import * as tls from "node:tls";
import { dial, listen, nodeRuntime, socketTransport } from "../../../adapters/node/runtime.ts";
import { assertBytes, fromUtf8, pattern, utf8 } from "../../support/bytes.ts";
import { readTlsFixtures } from "../../support/fixtures.ts";
import { delay, until } from "../../support/time.ts";
import { endCases, listenAndDialCases, readCases, runtimePair, tlsCases, writeCases } from "../../support/transport-contract.ts";
import { endBack, Recorder, trackTransports, transportHarness } from "../../support/transport-recorder.ts";

// ---------------------------------------------------------------------------------------------
// Helpers

const { cert, key, ca: CA } = await readTlsFixtures();
const SERVER_TLS = { cert, key };

/** Above Node's default socket high-water mark (16 KiB on Node 20, 64 KiB later). */
const ABOVE_HIGH_WATER = 64 * 1024;

/** Closes what a test opened, whatever its outcome, raw Node servers and sockets included. */
function track(t: TestContext) {
  const servers: net.Server[] = [];
  const sockets = new Set<net.Socket>();
  const bag = trackTransports(t, () => {
    for (const s of sockets) s.destroy();
    for (const s of servers) s.close();
  });
  return {
    ...bag,
    /** A raw Node server whose connections are also destroyed at the end. */
    server<S extends net.Server>(s: S): S {
      servers.push(s);
      s.on(s instanceof tls.Server ? "secureConnection" : "connection", (c: net.Socket) => sockets.add(c));
      return s;
    },
    socket<S extends net.Socket>(s: S): S {
      sockets.add(s);
      return s;
    },
  };
}

const harness = transportHarness(nodeRuntime, SERVER_TLS);
const { serve, connect } = harness;
/** For the cases every socket runtime shares (tests/support/transport-contract.ts). */
const rig = { ...harness, track, ca: CA };

/** A connected pair of raw sockets' client side, from a raw Node server. */
async function rawPair(bag: ReturnType<typeof track>, server: net.Server): Promise<net.Socket> {
  bag.server(server);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as net.AddressInfo;
  const socket = bag.socket(net.connect({ host: "127.0.0.1", port }));
  await new Promise((r) => socket.once("connect", r));
  return socket;
}

// ---------------------------------------------------------------------------------------------

describe("node runtime: listen and dial", () => {
  test("is named node", () => {
    assert.equal(nodeRuntime.name, "node");
    assert.equal(nodeRuntime.listen, listen);
    assert.equal(nodeRuntime.dial, dial);
  });

  listenAndDialCases(rig);

  test("the server sees the client's port as remotePort", async (t) => {
    const bag = track(t);
    let seen = 0;
    const server = net.createServer((s) => {
      seen = s.remotePort ?? -1;
      s.end();
    });
    const raw = await rawPair(bag, server);
    const localPort = raw.localPort;
    const rec = new Recorder({ onEndHook: endBack });
    const tr = bag.transport(socketTransport(raw, rec.bind));
    await until(() => seen !== 0 && rec.closed, "the raw server's view and the close");
    assert.equal(seen, localPort);
    assert.equal(tr.remotePort, (server.address() as net.AddressInfo).port);
    assert.equal(tr.remoteAddress, "127.0.0.1", "kept after the socket closed");
  });

  test("dial to a closed port rejects with ECONNREFUSED naming the address", async (t) => {
    const bag = track(t);
    const { listener } = await serve(bag);
    const port = listener.port;
    await listener.close();
    let bound = false;
    await assert.rejects(
      nodeRuntime.dial({ host: "127.0.0.1", port }, (tr) => {
        bound = true;
        return new Recorder().bind(tr);
      }),
      (e: NodeJS.ErrnoException) => {
        assert.equal(e.code, "ECONNREFUSED");
        assert.match(e.message, new RegExp(`127\\.0\\.0\\.1:${port}`));
        return true;
      },
    );
    assert.equal(bound, false, "bind is not called for a failed dial");
  });
});

describe("node runtime: TLS", () => {
  tlsCases(rig);

  test("sends SNI for names only", async (t) => {
    const bag = track(t);
    const names: (string | false)[] = [];
    const server = bag.server(
      tls.createServer(SERVER_TLS, (s) => {
        names.push((s as tls.TLSSocket & { servername: string | false }).servername);
        s.end();
      }),
    );
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const { port } = server.address() as net.AddressInfo;
    for (const host of ["localhost", "127.0.0.1"]) {
      const rec = await connect(bag, host, port, { ca: [CA] });
      await until(() => rec.closed, `the close from ${host}`);
      assert.deepEqual(rec.closes, [undefined]);
    }
    assert.deepEqual(names, ["localhost", false]);
  });

  test("without the CA, verification fails and dial rejects", async (t) => {
    const bag = track(t);
    const { listener } = await serve(bag, { tls: true });
    let bound = false;
    await assert.rejects(
      nodeRuntime.dial({ host: "localhost", port: listener.port, tls: {} }, (tr) => {
        bound = true;
        return new Recorder().bind(tr);
      }),
      (e: NodeJS.ErrnoException) => {
        assert.equal(typeof e.code, "string", String(e));
        assert.match(e.code!, /CERT|SIGNATURE|ISSUER/);
        return true;
      },
    );
    assert.equal(bound, false);
  });
});

describe("node runtime: writes and backpressure", () => {
  for (const useTls of [false, true]) {
    test(`16 MiB to a paused peer${useTls ? " over TLS" : ""}: false, buffered, drain, intact`, async (t) => {
      const bag = track(t);
      const { listener, accepted } = await serve(bag, {
        tls: useTls,
        pause: true,
        recorder: () => new Recorder(),
      });
      const client = await connect(bag, "127.0.0.1", listener.port, useTls ? { ca: CA } : undefined);
      const data = pattern(0, 16 * 1024 * 1024);
      const step = 64 * 1024;
      let falses = 0;
      for (let at = 0; at < data.length; at += step) {
        const half = at + step / 2;
        if (!client.transport.write([data.subarray(at, half), data.subarray(half, at + step)])) falses++;
      }
      assert.ok(falses > 0, "write returned false");
      await delay(100); // the kernel takes what it can
      const buffered = client.transport.bufferedAmount;
      assert.ok(buffered > ABOVE_HIGH_WATER, `bufferedAmount ${buffered} while the peer is paused`);
      assert.equal(client.drains, 0, "no drain while the peer is paused");
      await until(() => accepted.length === 1, "the accept");
      const server = accepted[0];
      assert.ok(server.received < data.length, "the paused peer has not read everything");
      server.transport.resume();
      await until(() => server.received >= data.length && client.drains > 0, "all bytes and the drain", 30_000);
      assert.equal(client.drains, 1);
      assert.equal(client.transport.bufferedAmount, 0);
      assertBytes(server.data(), data, "16 MiB");
    });
  }

  writeCases(rig);

  test("no onDrain without a false write", async (t) => {
    const bag = track(t);
    const { listener } = await serve(bag);
    const client = await connect(bag, "127.0.0.1", listener.port);
    for (let i = 0; i < 10; i++) assert.equal(client.transport.write([utf8("small")]), true);
    await until(() => client.received === 50, "the echo");
    await delay(20);
    assert.equal(client.drains, 0);
  });
});

describe("node runtime: reads", () => {
  readCases(rig);
});

describe("node runtime: closing", () => {
  test("end(): the peer sees EOF and closes; onClose() once on both sides, without error", async (t) => {
    const bag = track(t);
    const { listener, accepted } = await serve(bag);
    const client = await connect(bag, "127.0.0.1", listener.port);
    client.transport.write([utf8("hi")]);
    await until(() => client.received === 2, "the echo");
    client.transport.end();
    client.transport.end(); // twice is harmless
    await until(() => client.closed && accepted[0]?.closed, "both closes");
    await delay(50);
    assert.deepEqual(client.closes, [undefined]);
    assert.deepEqual(accepted[0].closes, [undefined]);
    assert.deepEqual(accepted[0].log, ["data", "end", "close"]);
    assert.deepEqual(client.log, ["data", "end", "close"]);
  });

  test("writes made inside onEnd go out before the end that follows them", async (t) => {
    const bag = track(t);
    const { listener, accepted } = await serve(bag, {
      tls: true,
      recorder: () =>
        new Recorder({
          onEndHook: (self) => {
            self.transport.write([utf8("close frame")]);
            self.transport.end();
          },
        }),
    });
    const client = await connect(bag, "127.0.0.1", listener.port, { ca: CA });
    client.transport.end();
    await until(() => client.closed && accepted[0]?.closed, "both closes");
    assert.equal(fromUtf8(client.data()), "close frame");
    assert.deepEqual(client.log, ["data", "end", "close"]);
    assert.deepEqual(client.closes, [undefined]);
  });

  test("a socket Node made without allowHalfOpen (as servers hand over) still flushes onEnd's writes", async (t) => {
    const bag = track(t);
    const server = net.createServer((s) => {
      const rec = new Recorder({
        onEndHook: (self) => {
          self.transport.write([utf8("bye")]);
          self.transport.end();
        },
      });
      bag.transport(socketTransport(s, rec.bind));
    });
    const raw = await rawPair(bag, server);
    const got: Buffer[] = [];
    raw.on("data", (d: Buffer) => got.push(d));
    const closed = new Promise((r) => raw.once("close", r));
    raw.end();
    await Promise.race([closed, delay(5000)]);
    assert.equal(Buffer.concat(got).toString(), "bye");
  });

  test("destroy() mid-transfer: the peer sees the connection go; onClose() once", async (t) => {
    const bag = track(t);
    const { listener, accepted } = await serve(bag, { recorder: () => new Recorder() });
    const client = await connect(bag, "127.0.0.1", listener.port);
    const data = pattern(0, 16 * 1024 * 1024);
    for (let at = 0; at < data.length; at += 1 << 20) client.transport.write([data.subarray(at, at + (1 << 20))]);
    await until(() => (accepted[0]?.received ?? 0) > 0, "the first bytes");
    client.transport.destroy();
    client.transport.destroy(); // twice is harmless
    await until(() => client.closed && accepted[0].closed, "both closes");
    await delay(50);
    assert.deepEqual(client.closes, [undefined]);
    assert.equal(accepted[0].closes.length, 1);
    assert.ok(accepted[0].received < data.length, `the peer got ${accepted[0].received} bytes, not all`);
  });

  test("a peer's reset: onClose(error) once", async (t) => {
    const bag = track(t);
    const server = net.createServer((s) => {
      s.once("data", () => s.resetAndDestroy());
    });
    const raw = await rawPair(bag, server);
    const rec = new Recorder();
    const tr = bag.transport(socketTransport(raw, rec.bind));
    tr.write([utf8("reset me")]);
    await until(() => rec.closed, "the close");
    await delay(50);
    assert.equal(rec.closes.length, 1);
    assert.ok(rec.closes[0] instanceof Error, "with an error");
    assert.equal((rec.closes[0] as NodeJS.ErrnoException).code, "ECONNRESET");
  });

  test("writing into a reset connection: onClose(error) once, no unhandled 'error'", async (t) => {
    const bag = track(t);
    const server = net.createServer((s) => s.once("data", () => s.resetAndDestroy()));
    const raw = await rawPair(bag, server);
    const rec = new Recorder();
    const tr = bag.transport(socketTransport(raw, rec.bind));
    await until(() => {
      tr.write([new Uint8Array(1024)]);
      return rec.closed;
    }, "the close");
    await delay(50);
    assert.equal(rec.closes.length, 1);
    assert.match(String((rec.closes[0] as NodeJS.ErrnoException)?.code), /^(ECONNRESET|EPIPE)$/);
  });

  test("a bind that throws: the socket is destroyed and the error passes through", async (t) => {
    const bag = track(t);
    const raw = await rawPair(bag, net.createServer((s) => s.resume()));
    assert.throws(() => socketTransport(raw, () => {
      throw new Error("no handler");
    }), /no handler/);
    assert.equal(raw.destroyed, true);
  });

  test("a socket handed over already closed reports onClose once", async (t) => {
    const bag = track(t);
    const server = net.createServer((s) => s.end());
    const raw = await rawPair(bag, server);
    raw.destroy();
    await new Promise((r) => raw.once("close", r));
    const rec = new Recorder();
    socketTransport(raw, rec.bind);
    await until(() => rec.closed, "the close");
    await delay(20);
    assert.deepEqual(rec.closes, [undefined]);
  });
});

describe("node runtime: the ending rules of every transport", () => {
  endCases(runtimePair(nodeRuntime));
});
