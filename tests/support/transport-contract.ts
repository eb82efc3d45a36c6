/**
 * Test cases that the transports must pass alike: the socket runtimes' (Node's and Bun's) for
 * listening, dialing, writes and reads, and every transport (Node, Deno, Bun, streams) for the
 * ending rules (`endCases`). Each runtime's transport test calls these inside its own
 * `describe` blocks, so they run, and are named, as that runtime's tests; cases that need a
 * runtime's raw sockets or its own limits stay in its file. Runtime-neutral, like
 * transport-recorder.ts.
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { concatBytes } from "../../core/bytes.ts";
import { assertBytes, fromUtf8, pattern, utf8 } from "./bytes.ts";
import { delay, until } from "./time.ts";
import { type Bag, endBack, endGracefully, type Harness, Recorder } from "./transport-recorder.ts";
import { ServerConnection } from "../../core/mod.ts";
import { now, Session, SessionHost, type SessionOwner } from "../../adapters/shared/session.ts";
import type { Runtime, Transport, TransportHandler } from "../../adapters/shared/transport.ts";

/** A runtime's harness, with its `track` (which also closes its raw sockets) and the fixture CA. */
export type Rig = Harness & { track(t: TestContext): Bag; ca: string };

export function listenAndDialCases({ runtime, track, serve, connect, echoRoundTrip }: Rig): void {
  test("echoes over TCP on 127.0.0.1; port 0 reports the bound port", async (t) => {
    const bag = track(t);
    const { listener, accepted } = await serve(bag);
    assert.ok(listener.port > 0 && listener.port < 65536, `bound port ${listener.port}`);
    assert.equal(listener.hostname, "127.0.0.1");
    const client = await echoRoundTrip(bag, "127.0.0.1", listener.port);
    assert.equal(client.transport.remoteAddress, "127.0.0.1");
    assert.equal(client.transport.remotePort, listener.port);
    await until(() => accepted[0]?.closed, "the server side to close");
    assert.deepEqual(accepted[0].closes, [undefined]);
    assert.equal(accepted[0].transport.remoteAddress, "127.0.0.1", "kept after the close");
    assert.ok(accepted[0].transport.remotePort > 0);
  });

  test("echoes over TCP on ::1 (IPv6 addresses without brackets)", async (t) => {
    const bag = track(t);
    const { listener, accepted } = await serve(bag, { hostname: "::1" });
    assert.equal(listener.hostname, "::1");
    const client = await echoRoundTrip(bag, "::1", listener.port);
    assert.equal(client.transport.remoteAddress, "::1");
    assert.equal(client.transport.remotePort, listener.port);
    await until(() => accepted.length === 1, "the accept");
    assert.equal(accepted[0].transport.remoteAddress, "::1");
  });

  test("an IPv4 peer of a dual-stack listener is reported as the socket has it", async (t) => {
    const bag = track(t);
    const { listener, accepted } = await serve(bag, { hostname: "::" });
    await echoRoundTrip(bag, "127.0.0.1", listener.port);
    await until(() => accepted.length === 1, "the accept");
    // "::ffff:127.0.0.1" on a dual-stack host, as the runtime reports it
    assert.match(accepted[0].transport.remoteAddress, /^(::ffff:)?127\.0\.0\.1$/);
  });

  test("listen rejects when the port is taken", async (t) => {
    const bag = track(t);
    const { listener } = await serve(bag);
    await assert.rejects(
      runtime.listen({ port: listener.port, hostname: "127.0.0.1" }, (tr) => new Recorder().bind(tr)),
      (e: Error & { code?: string }) => {
        assert.equal(e.code, "EADDRINUSE");
        assert.match(e.message, new RegExp(`127\\.0\\.0\\.1:${listener.port}`));
        return true;
      },
    );
  });

  test("a dial whose bind throws rejects with that error and closes the connection", async (t) => {
    const bag = track(t);
    const { listener, accepted } = await serve(bag);
    const refused = new Error("bind refused");
    await assert.rejects(
      runtime.dial({ host: "127.0.0.1", port: listener.port }, () => {
        throw refused;
      }),
      (e) => e === refused,
    );
    await until(() => accepted[0]?.closed, "the server side to see the connection close");
  });

  test("listener close() stops accepting; open connections keep working", async (t) => {
    const bag = track(t);
    const { listener, accepted } = await serve(bag);
    const client = await connect(bag, "127.0.0.1", listener.port);
    await listener.close();
    await listener.close(); // twice is harmless
    await assert.rejects(connect(bag, "127.0.0.1", listener.port), { code: "ECONNREFUSED" });
    client.transport.write([utf8("still here")]);
    await until(() => client.received >= 10, "the echo after close()");
    assert.equal(fromUtf8(client.data()), "still here");
    assert.equal(accepted.length, 1);
  });
}

export function tlsCases({ runtime, track, serve, echoRoundTrip, ca }: Rig): void {
  test("echoes with the fixture CA, by name", async (t) => {
    const bag = track(t);
    const { listener, accepted } = await serve(bag, { tls: true });
    await echoRoundTrip(bag, "localhost", listener.port, { ca });
    await until(() => accepted[0]?.closed, "the server side to close");
    assert.deepEqual(accepted[0].closes, [undefined]);
  });

  test("echoes to 127.0.0.1 and ::1, verified against the certificate's IP SANs", async (t) => {
    const bag = track(t);
    for (const hostname of ["127.0.0.1", "::1"]) {
      const { listener } = await serve(bag, { hostname, tls: true });
      await echoRoundTrip(bag, hostname, listener.port, { ca: utf8(ca) });
    }
  });

  test("rejectUnauthorized: false connects without the CA", async (t) => {
    const bag = track(t);
    const { listener } = await serve(bag, { tls: true });
    await echoRoundTrip(bag, "127.0.0.1", listener.port, { rejectUnauthorized: false });
  });

  test("a servername the certificate does not cover fails verification", async (t) => {
    const bag = track(t);
    const { listener } = await serve(bag, { tls: true });
    await assert.rejects(
      runtime.dial(
        { host: "127.0.0.1", port: listener.port, tls: { ca, servername: "example.com" } },
        (tr) => new Recorder().bind(tr),
      ),
      { code: "ERR_TLS_CERT_ALTNAME_INVALID" },
    );
  });
}

export function writeCases({ track, serve, connect }: Rig): void {
  test("many small multi-chunk writes arrive intact and in order; each onDrain follows a false write", async (t) => {
    const bag = track(t);
    const { listener } = await serve(bag);
    const client = await connect(bag, "127.0.0.1", listener.port);
    const events: string[] = []; // "F": write returned false, "D": onDrain
    client.onDrain = () => events.push("D");
    const sent: Uint8Array[] = [];
    for (let i = 0; i < 20_000; i++) {
      const header = new Uint8Array([i >> 8, i & 0xff]);
      const payload = new Uint8Array(i % 37).fill(i & 0xff);
      sent.push(header, payload);
      if (!client.transport.write([header, payload]) && events.at(-1) !== "F") events.push("F");
      if (i % 1000 === 999) await delay(0); // let some go out between bursts
    }
    const big = pattern(0, 8 * 1024 * 1024); // and a large one, to make sure some write returns false
    sent.push(big);
    if (!client.transport.write([big]) && events.at(-1) !== "F") events.push("F");
    const expected = concatBytes(sent);
    await until(() => client.received >= expected.length, "the echo", 30_000);
    assertBytes(client.data(), expected, "echo");
    await until(() => client.transport.bufferedAmount === 0 && events.at(-1) !== "F", "the last drain");
    assert.ok(events.length > 0, "some write returned false");
    assert.match(events.join(""), /^(FD)+$/, "drains and false writes alternate");
  });

  test("writes after end() are dropped", async (t) => {
    const bag = track(t);
    const { listener, accepted } = await serve(bag, { recorder: () => new Recorder() });
    const client = await connect(bag, "127.0.0.1", listener.port);
    client.transport.write([utf8("a")]);
    client.transport.end();
    assert.equal(client.transport.write([utf8("b")]), false);
    await until(() => client.closed && accepted[0]?.closed, "both closes");
    assert.equal(fromUtf8(accepted[0].data()), "a");
    assert.deepEqual(client.closes, [undefined]);
  });
}

export function readCases({ track, serve, connect, ca }: Rig): void {
  for (const useTls of [false, true]) {
    test(`received chunks are fresh memory, never reused by later reads${useTls ? " (TLS)" : ""}`, async (t) => {
      const bag = track(t);
      const sender = new Recorder();
      const { listener } = await serve(bag, { tls: useTls, recorder: () => sender });
      // like the shared layer: unmask in place (here: invert) and keep the chunk
      const client = new Recorder({
        onChunk: (chunk) => {
          for (let i = 0; i < chunk.length; i++) chunk[i] ^= 0xff;
        },
      });
      await connect(bag, "127.0.0.1", listener.port, useTls ? { ca } : undefined, client);
      await until(() => sender.transport !== undefined, "the accept");
      const sent: Uint8Array[] = [];
      for (let i = 0; i < 200; i++) {
        const piece = new Uint8Array(1 + ((i * 7919) % 3000)).fill(i);
        sent.push(piece);
        sender.transport.write([piece]);
        await delay(0); // separate reads
      }
      const big = pattern(0, 8 * 1024 * 1024); // and a long transfer, read in many large chunks
      sent.push(big);
      sender.transport.write([big]);
      const expected = concatBytes(sent);
      await until(() => client.received >= expected.length, "all pieces", 30_000);
      assert.ok(client.chunks.length > 10, `${client.chunks.length} reads`);
      for (const [i, chunk] of client.chunks.entries()) {
        assert.equal(Object.getPrototypeOf(chunk), Uint8Array.prototype, "a plain Uint8Array");
        for (let j = 0; j < chunk.length; j++) chunk[j] ^= 0xff; // undo the in-place change
        assertBytes(chunk, client.copies[i], `chunk ${i}`);
      }
      assertBytes(client.data(), expected, "all pieces");
      const buffers = new Set(client.chunks.map((c) => c.buffer));
      assert.equal(buffers.size, client.chunks.length, "one ArrayBuffer per read");
    });
  }
}

/**
 * Connects two transports: `bind` gets the first one (the side under test, e.g. a session), the
 * recorder `peer` the other. Both are closed when the test ends.
 */
export type OpenPair = (t: TestContext, bind: (transport: Transport) => TransportHandler, peer: Recorder) => Promise<void>;

/** `OpenPair` over a runtime's listen and dial, on 127.0.0.1: the accepted side is the first. */
export function runtimePair(runtime: Runtime): OpenPair {
  return async (t, bind, peer) => {
    const transports: Transport[] = [];
    const listener = await runtime.listen({ port: 0, hostname: "127.0.0.1" }, (transport) => {
      transports.push(transport);
      return bind(transport);
    });
    t.after(async () => {
      for (const transport of transports) transport.destroy();
      await listener.close();
    });
    transports.push(await runtime.dial({ host: "127.0.0.1", port: listener.port }, peer.bind));
  };
}

/** Two recorders on a fresh pair. */
async function recordedPair(t: TestContext, open: OpenPair): Promise<{ a: Recorder; b: Recorder }> {
  const a = new Recorder();
  const b = new Recorder();
  await open(t, a.bind, b);
  await until(() => a.transport !== undefined, "the first transport");
  return { a, b };
}

/** What the sessions of these cases share. */
const host = new SessionHost();

/** The owner of a session that is only there to be ended. */
const quietOwner: SessionOwner = { onEvent() {}, onDrain() {}, onTransportClose() {} };

/**
 * The ending rules every transport follows, Node's, Deno's, Bun's and the streams' alike
 * (adapters/shared/transport.ts), and the one end policy of adapters/shared/session.ts on each.
 */
export function endCases(open: OpenPair): void {
  test("bytes arrive in order both ways; end() on both sides closes each once, without an error", async (t) => {
    const { a, b } = await recordedPair(t, open);
    const big = pattern(0, 1024 * 1024);
    a.transport.write([utf8("one"), big]);
    b.transport.write([utf8("two")]);
    await b.whenBytes(3 + big.length);
    await a.whenBytes(3);
    assertBytes(b.data(), concatBytes([utf8("one"), big]), "a to b");
    assert.equal(fromUtf8(a.data()), "two");
    await endGracefully(a, b);
    assert.deepEqual(a.log, ["data", "end", "close"]);
    assert.deepEqual(b.log, ["data", "end", "close"]);
  });

  test("the peer's end leaves our side open: what we write after it arrives, and only end() closes", async (t) => {
    const { a, b } = await recordedPair(t, open);
    b.transport.end();
    await a.whenEnded();
    await delay(50);
    assert.equal(a.closed || b.closed, false, "no transport ended itself");
    assert.equal(a.transport.write([utf8("late")]), true);
    await b.whenBytes(4);
    assert.equal(fromUtf8(b.data()), "late");
    a.transport.end();
    assert.equal(await a.whenClosed(), undefined);
    assert.equal(await b.whenClosed(), undefined);
    assert.deepEqual(a.log, ["end", "close"]);
    assert.deepEqual(b.log, ["data", "end", "close"]);
  });

  test("write() after end() returns false and the bytes are dropped", async (t) => {
    const { a, b } = await recordedPair(t, open);
    b.onEndHook = endBack;
    assert.equal(a.transport.write([utf8("kept")]), true);
    a.transport.end();
    assert.equal(a.transport.write([utf8("dropped")]), false);
    assert.equal(await a.whenClosed(), undefined);
    assert.equal(await b.whenClosed(), undefined);
    assert.equal(fromUtf8(b.data()), "kept");
    assert.equal(a.transport.write([utf8("after close")]), false);
    assert.equal(a.drains, 0);
  });

  test("write() after destroy() returns false; onClose comes once", async (t) => {
    const { a, b } = await recordedPair(t, open);
    b.onEndHook = endBack;
    a.transport.destroy();
    assert.equal(a.transport.write([utf8("dropped")]), false);
    a.transport.destroy();
    await a.whenClosed();
    await b.whenClosed();
    await delay(50);
    assert.equal(a.closes.length, 1);
    assert.equal(b.closes.length, 1);
    assert.equal(b.received, 0);
  });

  test("the session ends the transport after the core's last bytes, and destroys it when the peer never ends", async (t) => {
    const peer = new Recorder(); // reads everything, never ends its side
    let session: Session | undefined;
    await open(
      t,
      (transport) => {
        session = new Session(host, new ServerConnection({ now: now(), onWake: host.wake }), quietOwner);
        session.endTimeout = 100;
        return session.bind(transport);
      },
      peer,
    );
    await until(() => session !== undefined, "the session");
    // Not an upgrade request: the core answers 400 and expects the transport closed.
    peer.transport.write([utf8("GET / HTTP/1.1\r\nHost: x\r\n\r\n")]);
    await peer.whenEnded();
    assert.match(fromUtf8(peer.data()), /^HTTP\/1\.1 4\d\d /);
    await until(() => session!.transportClosed, "the session's transport to close");
    assert.deepEqual(peer.log, ["data", "end"], "the answer, then the end");
  });

  const upgrade = utf8(
    "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
  );

  /** A session whose owner rejects the upgrade with `body`: output, then the end, the core's way. */
  function rejectingSession(body: Uint8Array, endTimeout: number): { session: () => Session; bind: (tr: Transport) => TransportHandler } {
    let session: Session | undefined;
    const owner: SessionOwner = {
      onEvent(event) {
        if (event.type === "upgrade") (session!.connection as ServerConnection).reject({ status: 403, body });
      },
      onDrain() {},
      onTransportClose() {},
    };
    return {
      session: () => session!,
      bind(transport) {
        session = new Session(host, new ServerConnection({ now: now(), onWake: host.wake }), owner);
        session.endTimeout = endTimeout;
        return session.bind(transport);
      },
    };
  }

  test("the session destroys an ended transport whose peer reads nothing", async (t) => {
    const { session, bind } = rejectingSession(pattern(0, 16 * 1024 * 1024), 100);
    const peer = new Recorder({ onEndHook: endBack });
    await open(t, bind, peer);
    peer.transport.pause();
    peer.transport.write([upgrade]);
    await until(() => session().transportClosed, "the session's transport to close", 10_000);
    assert.ok(peer.received < 16 * 1024 * 1024, "the peer read nothing (but what it had before pausing)");
  });
}
