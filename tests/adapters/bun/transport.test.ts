/**
 * The Bun adapter's transport over real loopback sockets: TCP and TLS, IPv4 and IPv6, partial
 * writes and backpressure, reads, and every way a connection ends. Misbehaving peers (one that
 * never reads, never closes, or resets) are raw `Bun.listen`/`Bun.connect` sockets. Everything
 * opened is closed by the test that opened it (see `track`), and every wait is bounded (`until`).
 *
 * Measured while writing the adapter (Bun 1.4.5, Linux, loopback, a loaded 2-CPU machine, sender
 * and receiver in one process, through the adapter; CPU time per message, median of 5 runs of
 * 100000 messages; `write([header, payload])` with a 2-byte header):
 *
 *                               a send(2) per chunk   a send(2) per write()   per-tick batching
 *   32 B, 1 message per tick    14.5 µs               10.0 µs                 10.1-10.5 µs
 *   32 B, 64 messages per tick   8.8 µs                4.5-4.9 µs             0.32-0.45 µs
 *   1 KiB, 64 per tick, TCP                            5.2 µs                  1.2 µs
 *   1 KiB, 64 per tick, TLS                            3.4-4.3 µs              1.5 µs
 *   16 KiB, 8 per tick                                 17-23 µs                17-19 µs
 *   256 KiB, 1 per tick                                ~150 µs TCP, ~230 µs TLS, either way
 *
 * (send(2) calls, strace: 500000 vs 7815 for 500000 32-byte messages, 64 per tick.) Bun has no
 * writev and does not cork writes made inside its callbacks (64 writes in a `data` callback are
 * 64 send(2) calls), hence the per-tick batching of small chunks, done by the session
 * (adapters/shared/session.ts) for every transport. Copying a header
 * together with a 16 KiB payload into one write measured worse here (~24 µs), with a 256 KiB
 * payload no better; but a server echoing 16 KiB messages (bench/echo.ts, server CPU only) spent
 * 30-45% less CPU per message with them merged up to 64 KiB (one send(2) instead of two per
 * message); the session (adapters/shared/session.ts) merges up to its COALESCE_LIMIT.
 */
import { describe, test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import {
  bunRuntime,
  HIGH_WATER_MARK,
} from "../../../adapters/bun/runtime.ts";
import { concatBytes } from "../../../core/bytes.ts";
// Loaded only to check that it leaves the core's engine settings alone on Bun (see the last test).
import "../../../adapters/node/runtime.ts";
import { assertBytes, fromUtf8, pattern, utf8 } from "../../support/bytes.ts";
import { readTlsFixtures } from "../../support/fixtures.ts";
import { delay, until } from "../../support/time.ts";
import { endCases, listenAndDialCases, readCases, runtimePair, tlsCases, writeCases } from "../../support/transport-contract.ts";
import { Recorder, trackTransports, transportHarness } from "../../support/transport-recorder.ts";

// ---------------------------------------------------------------------------------------------
// Helpers

const { cert, key, ca: CA } = await readTlsFixtures();
const SERVER_TLS = { cert, key };

type RawSocket = Bun.Socket<undefined>;
type RawHandler = Bun.SocketHandler<undefined>;

/** Closes what a test opened, whatever its outcome, raw Bun listeners and sockets included. */
function track(t: TestContext) {
  const rawListeners: Bun.TCPSocketListener<undefined>[] = [];
  const rawSockets = new Set<RawSocket>();
  const bag = trackTransports(t, () => {
    for (const s of rawSockets) s.terminate();
    for (const l of rawListeners) l.stop(true);
  });
  return {
    ...bag,
    /** A raw Bun server (half-open allowed) whose accepted sockets are also closed at the end. */
    rawServer(socket: RawHandler, tls = false): { port: number; sockets: RawSocket[] } {
      const sockets: RawSocket[] = [];
      const open = socket.open;
      const server = Bun.listen({
        hostname: "127.0.0.1",
        port: 0,
        allowHalfOpen: true,
        tls: tls ? SERVER_TLS : undefined,
        socket: {
          ...socket,
          open(s) {
            sockets.push(s);
            rawSockets.add(s);
            return open?.(s);
          },
        },
      });
      rawListeners.push(server);
      return { port: server.port, sockets };
    },
    raw(s: RawSocket): RawSocket {
      rawSockets.add(s);
      return s;
    },
  };
}

const harness = transportHarness(bunRuntime, SERVER_TLS);
const { serve, connect } = harness;
/** For the cases every socket runtime shares (tests/support/transport-contract.ts). */
const rig = { ...harness, track, ca: CA };

const errorCode = (e: Error | undefined) => (e as (Error & { code?: string }) | undefined)?.code;

// ---------------------------------------------------------------------------------------------

describe("bun runtime: listen and dial", () => {
  test("is named bun", () => {
    assert.equal(bunRuntime.name, "bun");
    assert.ok(HIGH_WATER_MARK > 0);
  });

  listenAndDialCases(rig);

  test("the server sees the client's port as remotePort", async (t) => {
    const bag = track(t);
    const { listener, accepted } = await serve(bag);
    let localPort = 0;
    const raw = bag.raw(
      await Bun.connect({ hostname: "127.0.0.1", port: listener.port, socket: { data() {} } }),
    );
    localPort = raw.localPort;
    await until(() => accepted.length === 1, "the accept");
    assert.equal(accepted[0].transport.remotePort, localPort);
  });

  for (const host of ["127.0.0.1", "::1"]) {
    test(`dial to a closed port on ${host} rejects with ECONNREFUSED naming the address`, async (t) => {
      const bag = track(t);
      const { listener } = await serve(bag, { hostname: host });
      const port = listener.port;
      await listener.close();
      let bound = false;
      await assert.rejects(
        bunRuntime.dial({ host, port }, (tr) => {
          bound = true;
          return new Recorder().bind(tr);
        }),
        (e: Error & { code?: string }) => {
          assert.equal(e.code, "ECONNREFUSED");
          assert.ok(e.message.includes(host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`), e.message);
          return true;
        },
      );
      assert.equal(bound, false, "bind is not called for a failed dial");
    });
  }
});

describe("bun runtime: TLS", () => {
  tlsCases(rig);

  test("sends SNI for names only", async (t) => {
    const bag = track(t);
    const names: (string | undefined)[] = [];
    const { port } = bag.rawServer(
      {
        open(s) {
          names.push(s.getServername());
          s.end();
        },
        data() {},
      },
      true,
    );
    for (const host of ["localhost", "127.0.0.1"]) {
      const rec = await connect(bag, host, port, { ca: [CA] });
      await until(() => rec.closed, `the close from ${host}`);
      assert.deepEqual(rec.closes, [undefined]);
    }
    assert.deepEqual(names, ["localhost", undefined]);
  });

  test("without the CA, verification fails and dial rejects", async (t) => {
    const bag = track(t);
    const { listener, accepted } = await serve(bag, { tls: true });
    let bound = false;
    await assert.rejects(
      bunRuntime.dial({ host: "localhost", port: listener.port, tls: {} }, (tr) => {
        bound = true;
        return new Recorder().bind(tr);
      }),
      (e: Error & { code?: string }) => {
        assert.equal(typeof e.code, "string", String(e));
        assert.match(e.code!, /CERT|SIGNATURE|ISSUER/);
        assert.match(e.message, new RegExp(`localhost:${listener.port}`));
        return true;
      },
    );
    assert.equal(bound, false);
    await delay(50);
    for (const rec of accepted) await until(() => rec.closed, "the server side of the refused client to close");
  });
});

describe("bun runtime: writes and backpressure", () => {
  for (const useTls of [false, true]) {
    test(`16 MiB to a paused peer${useTls ? " over TLS" : ""}: false, buffered, one drain, intact`, async (t) => {
      const bag = track(t);
      const { listener, accepted } = await serve(bag, { tls: useTls, pause: true, recorder: () => new Recorder() });
      const client = await connect(bag, "127.0.0.1", listener.port, useTls ? { ca: CA } : undefined);
      const data = pattern(0, 16 * 1024 * 1024);
      const step = 64 * 1024;
      let falses = 0;
      for (let at = 0; at < data.length; at += step) {
        const half = at + step / 2;
        if (!client.transport.write([data.subarray(at, half), data.subarray(half, at + step)])) falses++;
      }
      assert.ok(falses > 0, "write returned false");
      await delay(100);
      const buffered = client.transport.bufferedAmount;
      assert.ok(buffered > HIGH_WATER_MARK, `bufferedAmount ${buffered} while the peer is paused`);
      assert.ok(buffered < data.length, "the kernel took the start");
      assert.equal(client.drains, 0, "no drain while the peer is paused");
      await until(() => accepted.length === 1, "the accept");
      const server = accepted[0];
      assert.equal(server.received, 0, "a paused transport reads nothing");
      server.transport.resume();
      await until(() => server.received >= data.length && client.drains > 0, "all bytes and the drain", 30_000);
      assert.equal(client.drains, 1);
      assert.equal(client.transport.bufferedAmount, 0);
      assertBytes(server.data(), data, "16 MiB");
    });
  }

  test("a chunk the kernel takes only part of: the rest waits in the queue, uncopied, and follows in order", async (t) => {
    const bag = track(t);
    const { listener, accepted } = await serve(bag, { pause: true, recorder: () => new Recorder() });
    const client = await connect(bag, "127.0.0.1", listener.port);
    const big = pattern(0, 32 * 1024 * 1024); // far more than loopback's socket buffers
    assert.equal(client.transport.write([big]), false);
    const buffered = client.transport.bufferedAmount;
    assert.ok(buffered > 0 && buffered < big.length, `a partial write: ${buffered} of ${big.length} bytes queued`);
    // Small writes behind it queue in order (none of them can jump the queue).
    const tail: Uint8Array[] = [];
    for (let i = 0; i < 300; i++) {
      const header = new Uint8Array([0x82, i & 0x7f]);
      const payload = new Uint8Array(i % 40).fill(i);
      tail.push(header, payload);
      assert.equal(client.transport.write([header, payload]), false);
    }
    assert.equal(client.transport.bufferedAmount, buffered + concatBytes(tail).length);
    // The queue holds a view of the caller's chunk, not a copy: a change made now is what goes out.
    big[big.length - 1] ^= 0xff;
    await until(() => accepted.length === 1, "the accept");
    accepted[0].transport.resume();
    const expected = concatBytes([big, ...tail]);
    await until(() => accepted[0].received >= expected.length && client.drains === 1, "everything", 30_000);
    assertBytes(accepted[0].data(), expected, "32 MiB then 300 small writes");
  });

  writeCases(rig);

  test("no onDrain without a false write; small writes are true", async (t) => {
    const bag = track(t);
    const { listener } = await serve(bag);
    const client = await connect(bag, "127.0.0.1", listener.port);
    for (let i = 0; i < 10; i++) assert.equal(client.transport.write([utf8("small")]), true);
    await until(() => client.received === 50, "the echo");
    await delay(20);
    assert.equal(client.drains, 0);
    assert.equal(client.transport.bufferedAmount, 0);
  });

  test("the highWaterMark: false as soon as the queue passes it", async (t) => {
    const bag = track(t);
    const { listener, accepted } = await serve(bag, { pause: true, recorder: () => new Recorder() });
    const client = await connect(bag, "127.0.0.1", listener.port, undefined, new Recorder());
    // Fill the kernel first: a large write, then small ones that only queue.
    client.transport.write([pattern(0, 32 * 1024 * 1024)]);
    await delay(20);
    const before = client.transport.bufferedAmount;
    assert.ok(before > HIGH_WATER_MARK);
    await until(() => accepted.length === 1, "the accept");
    accepted[0].transport.resume();
    await until(() => client.drains === 1, "the drain", 30_000);
    accepted[0].transport.pause();
    let firstFalse = -1;
    for (let i = 0; i < 4096 && firstFalse < 0; i++) {
      if (!client.transport.write([pattern(0, 64 * 1024)])) firstFalse = i;
    }
    assert.ok(firstFalse >= 0, "a write returned false");
    assert.ok(client.transport.bufferedAmount > HIGH_WATER_MARK);
    assert.ok(client.transport.bufferedAmount <= HIGH_WATER_MARK + 64 * 1024, `${client.transport.bufferedAmount} queued at the first false`);
  });
});

describe("bun runtime: reads", () => {
  readCases(rig);

  test("pause() inside onData stops reads until resume()", async (t) => {
    const bag = track(t);
    let paused = 0;
    const server = new Recorder({
      onChunk: () => {
        if (paused === 0) {
          paused = server.received;
          server.transport.pause();
        }
      },
    });
    const { listener } = await serve(bag, { recorder: () => server });
    const client = await connect(bag, "127.0.0.1", listener.port);
    const data = pattern(0, 8 * 1024 * 1024);
    client.transport.write([data]);
    await until(() => paused > 0, "the first read");
    await delay(200);
    assert.equal(server.received, paused, "no read after pause()");
    server.transport.resume();
    await until(() => server.received >= data.length, "the rest", 30_000);
    assertBytes(server.data(), data, "8 MiB");
  });
  for (const useTls of [false, true]) {
    test(`data and a FIN that arrive while paused wait for resume(), in order${useTls ? " (TLS)" : ""}`, async (t) => {
      const bag = track(t);
      const { listener, accepted } = await serve(bag, { tls: useTls, pause: true, recorder: () => new Recorder() });
      const client = await connect(bag, "127.0.0.1", listener.port, useTls ? { ca: CA } : undefined);
      client.transport.write([utf8("abc")]);
      client.transport.end();
      await until(() => accepted.length === 1, "the accept");
      await delay(100);
      assert.deepEqual(accepted[0].log, [], "nothing while paused");
      accepted[0].transport.resume();
      accepted[0].transport.resume(); // twice is harmless
      await until(() => accepted[0].closed && client.closed, "both closes");
      assert.equal(fromUtf8(accepted[0].data()), "abc");
      assert.deepEqual(accepted[0].log, ["data", "end", "close"]);
      assert.deepEqual(accepted[0].closes, [undefined]);
      assert.deepEqual(client.closes, [undefined]);
    });
  }
});

describe("bun runtime: closing", () => {
  for (const useTls of [false, true]) {
    test(`end(): the peer sees EOF and closes; onClose() once on both sides, without error${useTls ? " (TLS)" : ""}`, async (t) => {
      const bag = track(t);
      const { listener, accepted } = await serve(bag, { tls: useTls });
      const client = await connect(bag, "127.0.0.1", listener.port, useTls ? { ca: CA } : undefined);
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

    test(`writes made inside onEnd go out before the end that follows them${useTls ? " (TLS)" : ""}`, async (t) => {
      const bag = track(t);
      const { listener, accepted } = await serve(bag, {
        tls: useTls,
        recorder: () =>
          new Recorder({
            onEndHook: (self) => {
              self.transport.write([utf8("close frame")]);
              self.transport.end();
            },
          }),
      });
      const client = await connect(bag, "127.0.0.1", listener.port, useTls ? { ca: CA } : undefined);
      client.transport.end();
      await until(() => client.closed && accepted[0]?.closed, "both closes");
      assert.equal(fromUtf8(client.data()), "close frame");
      assert.deepEqual(client.log, ["data", "end", "close"]);
      assert.deepEqual(client.closes, [undefined]);
      assert.deepEqual(accepted[0].closes, [undefined]);
    });

    test(`destroy() mid-transfer: the peer sees the connection go; onClose() once${useTls ? " (TLS)" : ""}`, async (t) => {
      const bag = track(t);
      const { listener, accepted } = await serve(bag, { tls: useTls, recorder: () => new Recorder() });
      const client = await connect(bag, "127.0.0.1", listener.port, useTls ? { ca: CA } : undefined);
      const data = pattern(0, 32 * 1024 * 1024);
      for (let at = 0; at < data.length; at += 1 << 20) client.transport.write([data.subarray(at, at + (1 << 20))]);
      await until(() => (accepted[0]?.received ?? 0) > 0, "the first bytes");
      client.transport.destroy();
      client.transport.destroy(); // twice is harmless
      assert.deepEqual(client.closes, [undefined], "onClose at once");
      assert.equal(client.transport.bufferedAmount, 0);
      await until(() => accepted[0].closed, "the peer's close");
      await delay(50);
      assert.deepEqual(client.closes, [undefined]);
      assert.equal(accepted[0].closes.length, 1);
      assert.ok(accepted[0].received < data.length, `the peer got ${accepted[0].received} bytes, not all`);
    });
  }

  test("end() sends everything queued first, then the FIN", async (t) => {
    const bag = track(t);
    const { listener, accepted } = await serve(bag, { pause: true, recorder: () => new Recorder() });
    const client = await connect(bag, "127.0.0.1", listener.port);
    const data = pattern(0, 16 * 1024 * 1024);
    client.transport.write([data.subarray(0, 1 << 20), data.subarray(1 << 20)]);
    client.transport.write([utf8("last")]);
    client.transport.end();
    assert.ok(client.transport.bufferedAmount > 0, "still queued after end()");
    await until(() => accepted.length === 1, "the accept");
    accepted[0].transport.resume();
    await until(() => accepted[0].closed && client.closed, "both closes", 30_000);
    assertBytes(accepted[0].data(), concatBytes([data, utf8("last")]), "16 MiB and the last write");
    assert.deepEqual(accepted[0].log, ["data", "end", "close"]);
    assert.deepEqual(client.closes, [undefined]);
  });

  test("end() keeps flushing to a slow reader until everything is written", async (t) => {
    const bag = track(t);
    const server = new Recorder({
      onChunk: () => {
        // read one chunk every 20 ms
        server.transport.pause();
        setTimeout(() => server.transport.resume(), 20);
      },
    });
    const { listener } = await serve(bag, { recorder: () => server });
    const client = await connect(bag, "127.0.0.1", listener.port, undefined, new Recorder());
    const data = pattern(0, 24 * 1024 * 1024);
    client.transport.write([data]);
    client.transport.end();
    await until(() => server.closed && client.closed, "both closes", 30_000);
    assertBytes(server.data(), data, "24 MiB");
    assert.deepEqual(client.closes, [undefined]);
    assert.deepEqual(server.log.slice(-2), ["end", "close"]);
  });

  test("end() then destroy(): onClose() once", async (t) => {
    const bag = track(t);
    const { port } = bag.rawServer({ data() {} });
    const rec = await connect(bag, "127.0.0.1", port);
    rec.transport.end();
    rec.transport.destroy();
    await delay(50);
    assert.deepEqual(rec.closes, [undefined]);
  });

  test("the peer's FIN: onEnd, then the handler's end() closes it", async (t) => {
    const bag = track(t);
    const { port, sockets } = bag.rawServer({ data() {} });
    const rec = await connect(bag, "127.0.0.1", port);
    await until(() => sockets.length === 1, "the accept");
    let peerClosed = false;
    sockets[0].reload({ socket: { data() {}, close: () => void (peerClosed = true) } });
    sockets[0].shutdown(); // a FIN, and the raw socket stays open for reading
    await until(() => rec.closed, "the close");
    assert.deepEqual(rec.log, ["end", "close"]);
    assert.deepEqual(rec.closes, [undefined]);
    await until(() => peerClosed, "the peer to see our FIN");
  });

  test("a peer's reset: onClose(error) once", async (t) => {
    const bag = track(t);
    const { port } = bag.rawServer({ data: (s) => s.terminate() });
    const rec = await connect(bag, "127.0.0.1", port);
    rec.transport.write([utf8("reset me")]);
    await until(() => rec.closed, "the close");
    await delay(50);
    assert.equal(rec.closes.length, 1);
    assert.ok(rec.closes[0] instanceof Error, "with an error");
    assert.equal(errorCode(rec.closes[0]), "ECONNRESET");
  });

  test("writing into a reset connection: onClose(error) once", async (t) => {
    const bag = track(t);
    const { port } = bag.rawServer({ data: (s) => s.terminate() });
    const rec = await connect(bag, "127.0.0.1", port);
    await until(() => {
      rec.transport.write([new Uint8Array(1024)]);
      return rec.closed;
    }, "the close");
    await delay(50);
    assert.equal(rec.closes.length, 1);
    assert.match(String(errorCode(rec.closes[0])), /^(ECONNRESET|EPIPE)$/);
  });

  test("a handler that throws: the transport closes, onClose(error) reports the exception", async (t) => {
    const bag = track(t);
    const boom = new Error("boom");
    const { listener, accepted } = await serve(bag, {
      recorder: () =>
        new Recorder({
          onChunk: () => {
            throw boom;
          },
        }),
    });
    const client = await connect(bag, "127.0.0.1", listener.port);
    client.transport.write([utf8("x")]);
    await until(() => accepted[0]?.closed && client.closed, "both closes");
    assert.deepEqual(accepted[0].closes, [boom]);
    assert.equal(client.closes.length, 1);
  });
});

describe("bun runtime: the ending rules of every transport", () => {
  endCases(runtimePair(bunRuntime));
});
