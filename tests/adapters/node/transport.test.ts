/**
 * The Node adapter's transport over real loopback sockets: TCP and TLS, IPv4 and IPv6,
 * backpressure, reads, and every way a connection ends. Everything opened is closed by the
 * test that opened it (see `track`), and every wait is bounded (see `until`).
 */
import { describe, test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { existsSync, readFileSync } from "node:fs";
import * as net from "node:net";
import * as tls from "node:tls";
import { fileURLToPath } from "node:url";
import { dial, listen, nodeRuntime, socketTransport } from "../../../adapters/node/runtime.ts";
import type { Listener, TlsClientOptions, Transport, TransportHandler } from "../../../adapters/shared/transport.ts";

// ---------------------------------------------------------------------------------------------
// Helpers

/** tests/fixtures/tls, found upwards from this file (it runs from dist/ after tsc). */
function fixturesDir(): string {
  for (let url = new URL("./", import.meta.url); url.pathname !== "/"; url = new URL("../", url)) {
    const dir = new URL("tests/fixtures/tls/", url);
    if (existsSync(new URL("ca.pem", dir))) return fileURLToPath(dir);
  }
  throw new Error("tests/fixtures/tls not found");
}
const FIXTURES = fixturesDir();
const pem = (name: string) => readFileSync(FIXTURES + name, "utf8");
const SERVER_TLS = { cert: pem("cert.pem"), key: pem("key.pem") };
const CA = pem("ca.pem");

/** Above Node's default socket high-water mark (16 KiB on Node 20, 64 KiB later). */
const ABOVE_HIGH_WATER = 64 * 1024;

/** Polls `ready` until it holds; fails with `what` after `ms`. */
async function until(ready: () => boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ready()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const text = (s: string) => new TextEncoder().encode(s);
const concat = (chunks: readonly Uint8Array[]) => Buffer.concat(chunks);

/** `size` bytes where each 4-byte word holds its own index: any loss, duplication or reordering shows. */
function pattern(size: number): Uint8Array {
  const bytes = new Uint8Array(size);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i + 4 <= size; i += 4) view.setUint32(i, i / 4);
  return bytes;
}

function sameBytes(actual: Uint8Array, expected: Uint8Array, what: string): void {
  assert.equal(actual.byteLength, expected.byteLength, `${what}: length`);
  assert.ok(Buffer.from(actual.buffer, actual.byteOffset, actual.byteLength).equals(expected), `${what}: content`);
}

/** A handler that records everything; optionally echoes or reacts to the peer's FIN. */
class Recorder implements TransportHandler {
  transport!: Transport;
  readonly chunks: Uint8Array[] = [];
  /** Copies taken when each chunk arrived, to catch an adapter that reuses read buffers. */
  readonly copies: Uint8Array[] = [];
  received = 0;
  ends = 0;
  drains = 0;
  readonly closes: (Error | undefined)[] = [];
  readonly log: string[] = [];

  readonly options: { echo?: boolean; onEnd?: (t: Transport) => void };

  constructor(options: { echo?: boolean; onEnd?: (t: Transport) => void } = {}) {
    this.options = options;
  }

  bind = (transport: Transport): TransportHandler => {
    this.transport = transport;
    return this;
  };

  onData(chunk: Uint8Array): void {
    this.chunks.push(chunk);
    this.copies.push(chunk.slice());
    this.received += chunk.byteLength;
    if (this.log.at(-1) !== "data") this.log.push("data");
    if (this.options.echo) this.transport.write([chunk]);
  }
  onEnd(): void {
    this.ends++;
    this.log.push("end");
    this.options.onEnd?.(this.transport);
  }
  onDrain(): void {
    this.drains++;
  }
  onClose(error?: Error): void {
    this.closes.push(error);
    this.log.push("close");
  }

  get data(): Buffer {
    return concat(this.chunks);
  }
  get closed(): boolean {
    return this.closes.length > 0;
  }
}

/** Closes what a test opened, whatever its outcome. */
function track(t: TestContext) {
  const listeners: Listener[] = [];
  const transports: Transport[] = [];
  const servers: net.Server[] = [];
  const sockets = new Set<net.Socket>();
  t.after(async () => {
    for (const tr of transports) tr.destroy();
    for (const s of sockets) s.destroy();
    for (const s of servers) s.close();
    await Promise.all(listeners.map((l) => l.close()));
  });
  return {
    listener<L extends Listener>(l: L): L {
      listeners.push(l);
      return l;
    },
    transport<T extends Transport>(tr: T): T {
      transports.push(tr);
      return tr;
    },
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

/** Listens with `nodeRuntime`, giving every accepted connection a fresh recorder. */
async function serve(
  bag: ReturnType<typeof track>,
  options: { hostname?: string; tls?: boolean; recorder?: () => Recorder; pause?: boolean } = {},
) {
  const accepted: Recorder[] = [];
  const listener = bag.listener(
    await nodeRuntime.listen(
      { port: 0, hostname: options.hostname ?? "127.0.0.1", tls: options.tls ? SERVER_TLS : undefined },
      (transport) => {
        bag.transport(transport);
        if (options.pause) transport.pause();
        const rec = options.recorder?.() ?? new Recorder({ echo: true });
        accepted.push(rec);
        return rec.bind(transport);
      },
    ),
  );
  return { listener, accepted };
}

async function connect(
  bag: ReturnType<typeof track>,
  host: string,
  port: number,
  tlsOptions?: TlsClientOptions,
  rec = new Recorder(),
) {
  const transport = bag.transport(await nodeRuntime.dial({ host, port, tls: tlsOptions }, rec.bind));
  assert.equal(transport, rec.transport, "dial resolves with the transport bind was given");
  return rec;
}

/** A connected pair of raw sockets' client side, from a raw Node server. */
async function rawPair(bag: ReturnType<typeof track>, server: net.Server): Promise<net.Socket> {
  bag.server(server);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as net.AddressInfo;
  const socket = bag.socket(net.connect({ host: "127.0.0.1", port }));
  await new Promise((r) => socket.once("connect", r));
  return socket;
}

/** Echoes a few messages over a fresh connection and closes it cleanly. */
async function echoRoundTrip(bag: ReturnType<typeof track>, host: string, port: number, tlsOptions?: TlsClientOptions) {
  const client = await connect(bag, host, port, tlsOptions);
  const messages = ["hello", "wörld", "x".repeat(100_000)].map(text);
  for (const m of messages) client.transport.write([m.subarray(0, 1), m.subarray(1)]);
  const expected = concat(messages);
  await until(() => client.received >= expected.length, "the echo");
  sameBytes(client.data, expected, "echo");
  client.transport.end();
  await until(() => client.closed, "the client to close");
  assert.deepEqual(client.closes, [undefined]);
  return client;
}

// ---------------------------------------------------------------------------------------------

describe("node runtime: listen and dial", () => {
  test("is named node", () => {
    assert.equal(nodeRuntime.name, "node");
    assert.equal(nodeRuntime.listen, listen);
    assert.equal(nodeRuntime.dial, dial);
  });

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
    assert.equal(accepted[0].transport.remoteAddress, "127.0.0.1");
    assert.ok(accepted[0].transport.remotePort > 0);
  });

  test("echoes over TCP on ::1 (IPv6 addresses without brackets)", async (t) => {
    const bag = track(t);
    const { listener, accepted } = await serve(bag, { hostname: "::1" });
    assert.equal(listener.hostname, "::1");
    const client = await echoRoundTrip(bag, "::1", listener.port);
    assert.equal(client.transport.remoteAddress, "::1");
    await until(() => accepted.length === 1, "the accept");
    assert.equal(accepted[0].transport.remoteAddress, "::1");
  });

  test("an IPv4 peer of a dual-stack listener is reported as the socket has it", async (t) => {
    const bag = track(t);
    const { listener, accepted } = await serve(bag, { hostname: "::" });
    await echoRoundTrip(bag, "127.0.0.1", listener.port);
    await until(() => accepted.length === 1, "the accept");
    // "::ffff:127.0.0.1" on a dual-stack host, as Node reports it
    assert.match(accepted[0].transport.remoteAddress, /^(::ffff:)?127\.0\.0\.1$/);
  });

  test("the server sees the client's port as remotePort", async (t) => {
    const bag = track(t);
    let seen = 0;
    const server = net.createServer((s) => {
      seen = s.remotePort ?? -1;
      s.end();
    });
    const raw = await rawPair(bag, server);
    const localPort = raw.localPort;
    const rec = new Recorder();
    const tr = bag.transport(socketTransport(raw, rec.bind));
    await until(() => seen !== 0 && rec.closed, "the raw server's view and the close");
    assert.equal(seen, localPort);
    assert.equal(tr.remotePort, (server.address() as net.AddressInfo).port);
    assert.equal(tr.remoteAddress, "127.0.0.1", "kept after the socket closed");
  });

  test("listen rejects when the port is taken", async (t) => {
    const bag = track(t);
    const { listener } = await serve(bag);
    await assert.rejects(
      nodeRuntime.listen({ port: listener.port, hostname: "127.0.0.1" }, () => new Recorder()),
      { code: "EADDRINUSE" },
    );
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

  test("listener close() stops accepting; open connections keep working", async (t) => {
    const bag = track(t);
    const { listener, accepted } = await serve(bag);
    const client = await connect(bag, "127.0.0.1", listener.port);
    await listener.close();
    await listener.close(); // twice is harmless
    await assert.rejects(connect(bag, "127.0.0.1", listener.port), { code: "ECONNREFUSED" });
    client.transport.write([text("still here")]);
    await until(() => client.received >= 10, "the echo after close()");
    assert.equal(client.data.toString(), "still here");
    assert.equal(accepted.length, 1);
  });
});

describe("node runtime: TLS", () => {
  test("echoes with the fixture CA, by name", async (t) => {
    const bag = track(t);
    const { listener, accepted } = await serve(bag, { tls: true });
    await echoRoundTrip(bag, "localhost", listener.port, { ca: CA });
    await until(() => accepted[0]?.closed, "the server side to close");
    assert.deepEqual(accepted[0].closes, [undefined]);
  });

  test("echoes to 127.0.0.1 and ::1, verified against the certificate's IP SANs", async (t) => {
    const bag = track(t);
    for (const hostname of ["127.0.0.1", "::1"]) {
      const { listener } = await serve(bag, { hostname, tls: true });
      await echoRoundTrip(bag, hostname, listener.port, { ca: new TextEncoder().encode(CA) });
    }
  });

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

  test("rejectUnauthorized: false connects without the CA", async (t) => {
    const bag = track(t);
    const { listener } = await serve(bag, { tls: true });
    await echoRoundTrip(bag, "127.0.0.1", listener.port, { rejectUnauthorized: false });
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

  test("a servername the certificate does not cover fails verification", async (t) => {
    const bag = track(t);
    const { listener } = await serve(bag, { tls: true });
    await assert.rejects(
      nodeRuntime.dial(
        { host: "127.0.0.1", port: listener.port, tls: { ca: CA, servername: "example.com" } },
        (tr) => new Recorder().bind(tr),
      ),
      { code: "ERR_TLS_CERT_ALTNAME_INVALID" },
    );
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
      const data = pattern(16 * 1024 * 1024);
      const step = 64 * 1024;
      let falses = 0;
      for (let at = 0; at < data.length; at += step) {
        const half = at + step / 2;
        if (!client.transport.write([data.subarray(at, half), data.subarray(half, at + step)])) falses++;
      }
      assert.ok(falses > 0, "write returned false");
      await sleep(100); // the kernel takes what it can
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
      sameBytes(server.data, data, "16 MiB");
    });
  }

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
      if (i % 1000 === 999) await sleep(0); // let some go out between bursts
    }
    const expected = concat(sent);
    await until(() => client.received >= expected.length, "the echo");
    sameBytes(client.data, expected, "echo");
    await until(() => client.transport.bufferedAmount === 0 && events.at(-1) !== "F", "the last drain");
    assert.ok(events.length > 0, "some write returned false");
    assert.match(events.join(""), /^(FD)+$/, "drains and false writes alternate");
  });

  test("no onDrain without a false write", async (t) => {
    const bag = track(t);
    const { listener } = await serve(bag);
    const client = await connect(bag, "127.0.0.1", listener.port);
    for (let i = 0; i < 10; i++) assert.equal(client.transport.write([text("small")]), true);
    await until(() => client.received === 50, "the echo");
    await sleep(20);
    assert.equal(client.drains, 0);
  });

  test("writes after end() are dropped", async (t) => {
    const bag = track(t);
    const { listener, accepted } = await serve(bag, { recorder: () => new Recorder() });
    const client = await connect(bag, "127.0.0.1", listener.port);
    client.transport.write([text("a")]);
    client.transport.end();
    assert.equal(client.transport.write([text("b")]), false);
    await until(() => client.closed && accepted[0]?.closed, "both closes");
    assert.equal(accepted[0].data.toString(), "a");
    assert.deepEqual(client.closes, [undefined]);
  });
});

describe("node runtime: reads", () => {
  for (const useTls of [false, true]) {
    test(`received chunks are fresh memory, never reused by later reads${useTls ? " (TLS)" : ""}`, async (t) => {
      const bag = track(t);
      const sender = new Recorder();
      const { listener } = await serve(bag, { tls: useTls, recorder: () => sender });
      const client = new Recorder();
      // like the shared layer: unmask in place (here: invert) and keep the chunk
      const onData = client.onData.bind(client);
      client.onData = (chunk) => {
        onData(chunk);
        for (let i = 0; i < chunk.length; i++) chunk[i] ^= 0xff;
      };
      await connect(bag, "127.0.0.1", listener.port, useTls ? { ca: CA } : undefined, client);
      await until(() => sender.transport !== undefined, "the accept");
      const sent: Uint8Array[] = [];
      for (let i = 0; i < 200; i++) {
        const piece = new Uint8Array(1 + ((i * 7919) % 3000)).fill(i);
        sent.push(piece);
        sender.transport.write([piece]);
        await new Promise((r) => setImmediate(r)); // separate reads
      }
      const expected = concat(sent);
      await until(() => client.received >= expected.length, "all pieces");
      assert.ok(client.chunks.length > 10, `${client.chunks.length} reads`);
      for (const [i, chunk] of client.chunks.entries()) {
        assert.equal(Object.getPrototypeOf(chunk), Uint8Array.prototype, "a plain Uint8Array");
        for (let j = 0; j < chunk.length; j++) chunk[j] ^= 0xff; // undo the in-place change
        sameBytes(chunk, client.copies[i], `chunk ${i}`);
      }
      sameBytes(client.data, expected, "all pieces");
      const buffers = new Set(client.chunks.map((c) => c.buffer));
      assert.equal(buffers.size, client.chunks.length, "one ArrayBuffer per read");
    });
  }
});

describe("node runtime: closing", () => {
  test("end(): the peer sees EOF and closes; onClose() once on both sides, without error", async (t) => {
    const bag = track(t);
    const { listener, accepted } = await serve(bag);
    const client = await connect(bag, "127.0.0.1", listener.port);
    client.transport.write([text("hi")]);
    await until(() => client.received === 2, "the echo");
    client.transport.end();
    client.transport.end(); // twice is harmless
    await until(() => client.closed && accepted[0]?.closed, "both closes");
    await sleep(50);
    assert.deepEqual(client.closes, [undefined]);
    assert.deepEqual(accepted[0].closes, [undefined]);
    assert.deepEqual(accepted[0].log, ["data", "end", "close"]);
    assert.deepEqual(client.log, ["data", "end", "close"]);
  });

  test("writes made inside onEnd go out before the transport ends itself", async (t) => {
    const bag = track(t);
    const { listener, accepted } = await serve(bag, {
      tls: true,
      recorder: () => new Recorder({ onEnd: (tr) => tr.write([text("close frame")]) }),
    });
    const client = await connect(bag, "127.0.0.1", listener.port, { ca: CA });
    client.transport.end();
    await until(() => client.closed && accepted[0]?.closed, "both closes");
    assert.equal(client.data.toString(), "close frame");
    assert.deepEqual(client.log, ["data", "end", "close"]);
    assert.deepEqual(client.closes, [undefined]);
  });

  test("a socket Node made without allowHalfOpen (as servers hand over) still flushes onEnd's writes", async (t) => {
    const bag = track(t);
    const server = net.createServer((s) => {
      const rec = new Recorder({ onEnd: (tr) => tr.write([text("bye")]) });
      bag.transport(socketTransport(s, rec.bind));
    });
    const raw = await rawPair(bag, server);
    const got: Buffer[] = [];
    raw.on("data", (d: Buffer) => got.push(d));
    const closed = new Promise((r) => raw.once("close", r));
    raw.end();
    await Promise.race([closed, sleep(5000)]);
    assert.equal(Buffer.concat(got).toString(), "bye");
  });

  test("end() to a peer that never closes still ends in onClose", async (t) => {
    const bag = track(t);
    let peerEnded = false;
    const server = net.createServer({ allowHalfOpen: true }, (s) => {
      s.resume();
      s.on("end", () => (peerEnded = true)); // and never ends its side
    });
    const raw = await rawPair(bag, server);
    const rec = new Recorder();
    const tr = bag.transport(socketTransport(raw, rec.bind, { lingerMs: 200 }));
    const started = Date.now();
    tr.end();
    await until(() => rec.closed, "the close", 5000);
    assert.ok(peerEnded, "the peer got our FIN");
    assert.ok(Date.now() - started >= 150, "it waited for the peer's FIN first");
    assert.deepEqual(rec.closes, [undefined]);
  });

  test("end() with megabytes stuck behind a peer that never reads still ends in onClose", async (t) => {
    const bag = track(t);
    const server = net.createServer({ pauseOnConnect: true }, () => {});
    const raw = await rawPair(bag, server);
    const rec = new Recorder();
    const tr = bag.transport(socketTransport(raw, rec.bind, { lingerMs: 200 }));
    tr.write([pattern(16 * 1024 * 1024)]);
    tr.end();
    await until(() => rec.closed, "the close", 5000);
    assert.deepEqual(rec.closes, [undefined]);
  });

  test("the default linger closes a socket whose peer never answers our FIN", async (t) => {
    const bag = track(t);
    const server = net.createServer({ allowHalfOpen: true }, (s) => s.resume());
    const raw = await rawPair(bag, server);
    const rec = new Recorder();
    bag.transport(socketTransport(raw, rec.bind)).end();
    await until(() => rec.closed, "the close", 10_000);
    assert.deepEqual(rec.closes, [undefined]);
  });

  test("destroy() mid-transfer: the peer sees the connection go; onClose() once", async (t) => {
    const bag = track(t);
    const { listener, accepted } = await serve(bag, { recorder: () => new Recorder() });
    const client = await connect(bag, "127.0.0.1", listener.port);
    const data = pattern(16 * 1024 * 1024);
    for (let at = 0; at < data.length; at += 1 << 20) client.transport.write([data.subarray(at, at + (1 << 20))]);
    await until(() => (accepted[0]?.received ?? 0) > 0, "the first bytes");
    client.transport.destroy();
    client.transport.destroy(); // twice is harmless
    await until(() => client.closed && accepted[0].closed, "both closes");
    await sleep(50);
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
    tr.write([text("reset me")]);
    await until(() => rec.closed, "the close");
    await sleep(50);
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
    await sleep(50);
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
    await sleep(20);
    assert.deepEqual(rec.closes, [undefined]);
  });
});
