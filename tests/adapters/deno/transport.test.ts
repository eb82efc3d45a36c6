/**
 * The Deno runtime adapter (adapters/deno/runtime.ts) over real loopback sockets: TCP and TLS,
 * IPv4 and IPv6, backpressure against a paused peer, every way a connection ends.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { denoRuntime } from "../../../adapters/deno/runtime.ts";
import type { Accept, Listener, ListenOptions, Transport, TransportHandler } from "../../../adapters/shared/transport.ts";

const fixture = (name: string) => Deno.readTextFileSync(new URL(`../../fixtures/tls/${name}`, import.meta.url));
const CERT = fixture("cert.pem");
const KEY = fixture("key.pem");
const CA = fixture("ca.pem");

const IPV6 = (() => {
  try {
    Deno.listen({ hostname: "::1", port: 0 }).close();
    return true;
  } catch {
    return false;
  }
})();

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** `promise`, or a rejection naming `what` after `ms` (the timer is always cleared). */
async function within<T>(promise: Promise<T>, what: string, ms = 10_000): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** A handler that records everything, with promises for the events a test waits on. */
class Recorder implements TransportHandler {
  transport!: Transport;
  chunks: Uint8Array[] = [];
  received = 0;
  ends = 0;
  drains = 0;
  closes: (Error | undefined)[] = [];
  onChunk: ((chunk: Uint8Array, self: Recorder) => void) | undefined;
  onEndHook: ((self: Recorder) => void) | undefined;
  #waiters: { bytes: number; resolve: () => void }[] = [];
  #endWaiters: (() => void)[] = [];
  #drainWaiters: (() => void)[] = [];
  #closeWaiters: ((error: Error | undefined) => void)[] = [];

  bind = (transport: Transport): TransportHandler => {
    this.transport = transport;
    return this;
  };

  onData(chunk: Uint8Array): void {
    assert.equal(this.closes.length, 0, "onData after onClose");
    this.chunks.push(chunk);
    this.received += chunk.length;
    this.#waiters = this.#waiters.filter((w) => {
      if (this.received < w.bytes) return true;
      w.resolve();
      return false;
    });
    this.onChunk?.(chunk, this);
  }
  onEnd(): void {
    assert.equal(this.closes.length, 0, "onEnd after onClose");
    this.ends++;
    for (const w of this.#endWaiters.splice(0)) w();
    this.onEndHook?.(this);
  }
  onDrain(): void {
    this.drains++;
    for (const w of this.#drainWaiters.splice(0)) w();
  }
  onClose(error?: Error): void {
    this.closes.push(error);
    for (const w of this.#closeWaiters.splice(0)) w(error);
  }

  bytes(n: number): Promise<void> {
    if (this.received >= n) return Promise.resolve();
    return within(new Promise((resolve) => this.#waiters.push({ bytes: n, resolve })), `${n} bytes`);
  }
  ended(): Promise<void> {
    if (this.ends) return Promise.resolve();
    return within(new Promise((resolve) => this.#endWaiters.push(resolve)), "onEnd");
  }
  drained(): Promise<void> {
    return within(new Promise((resolve) => this.#drainWaiters.push(resolve)), "onDrain");
  }
  closed(): Promise<Error | undefined> {
    if (this.closes.length) return Promise.resolve(this.closes[0]);
    return within(new Promise((resolve) => this.#closeWaiters.push(resolve)), "onClose");
  }
  data(): Uint8Array {
    return concat(this.chunks);
  }
}

function concat(chunks: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let offset = 0;
  for (const c of chunks) {
    out.set(c, offset);
    offset += c.length;
  }
  return out;
}

const patternByte = (i: number) => (i * 31 + (i >>> 8) * 7 + 11) & 0xff;
function pattern(from: number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = patternByte(from + i);
  return out;
}

/** A listener whose accepted connections are recorded (and set up by `setup`, if given). */
async function server(options: ListenOptions, setup?: (r: Recorder) => void) {
  const accepted: Recorder[] = [];
  const waiting: ((r: Recorder) => void)[] = [];
  const accept: Accept = (transport) => {
    const r = new Recorder();
    r.bind(transport);
    setup?.(r);
    accepted.push(r);
    waiting.shift()?.(r);
    return r;
  };
  const listener = await denoRuntime.listen(options, accept);
  /** The next connection accepted after this call. */
  const next = (): Promise<Recorder> =>
    within(new Promise((resolve) => waiting.push(resolve)), "an accepted connection");
  return { listener, accepted, next };
}

const echo = (r: Recorder) => {
  r.onChunk = (chunk, self) => self.transport.write([chunk]);
  r.onEndHook = (self) => self.transport.end();
};

/** Client ends, the echoing server ends back: both close without an error, once. */
async function endGracefully(client: Recorder, peer: Recorder): Promise<void> {
  client.transport.end();
  assert.equal(await client.closed(), undefined);
  assert.equal(await peer.closed(), undefined);
  assert.equal(client.closes.length, 1);
  assert.equal(peer.closes.length, 1);
  assert.equal(client.ends, 1);
  assert.equal(peer.ends, 1);
}

const enc = new TextEncoder();
const dec = new TextDecoder();

async function echoRoundTrip(
  listenOptions: ListenOptions,
  dialOptions: Omit<Parameters<typeof denoRuntime.dial>[0], "port">,
  expectedAddress: string,
) {
  const { listener, next } = await server(listenOptions, echo);
  try {
    assert.ok(listener.port > 0, "port 0 picks a port");
    const acceptedP = next();
    const client = new Recorder();
    const transport = await denoRuntime.dial({ ...dialOptions, port: listener.port }, client.bind);
    assert.equal(transport, client.transport);
    const peer = await acceptedP;
    assert.equal(client.transport.remoteAddress, expectedAddress);
    assert.equal(client.transport.remotePort, listener.port);
    assert.equal(peer.transport.remoteAddress, expectedAddress);
    assert.ok(peer.transport.remotePort > 0);
    client.transport.write([enc.encode("hello, "), enc.encode("world")]);
    await client.bytes(12);
    assert.equal(dec.decode(client.data()), "hello, world");
    await endGracefully(client, peer);
  } finally {
    await listener.close();
  }
}

describe("deno runtime", () => {
  test("name", () => {
    assert.equal(denoRuntime.name, "deno");
  });

  test("TCP echo over IPv4, port 0", async () => {
    await echoRoundTrip({ hostname: "127.0.0.1", port: 0 }, { host: "127.0.0.1" }, "127.0.0.1");
  });

  test("TCP echo over IPv6", { skip: !IPV6 && "no IPv6 loopback" }, async () => {
    await echoRoundTrip({ hostname: "::1", port: 0 }, { host: "::1" }, "::1");
  });

  test("TLS echo: key as bytes, CA as PEM text, verified against the IP address", async () => {
    await echoRoundTrip(
      { hostname: "127.0.0.1", port: 0, tls: { cert: CERT, key: enc.encode(KEY) } },
      { host: "127.0.0.1", tls: { ca: CA } },
      "127.0.0.1",
    );
  });

  test("TLS echo over IPv6 with the CA as bytes", { skip: !IPV6 && "no IPv6 loopback" }, async () => {
    await echoRoundTrip(
      { hostname: "::1", port: 0, tls: { cert: enc.encode(CERT), key: KEY } },
      { host: "::1", tls: { ca: [enc.encode(CA)] } },
      "::1",
    );
  });

  test("TLS: servername is the name verified", async () => {
    await echoRoundTrip(
      { hostname: "127.0.0.1", port: 0, tls: { cert: CERT, key: KEY } },
      { host: "127.0.0.1", tls: { ca: CA, servername: "localhost" } },
      "127.0.0.1",
    );
    const { listener, accepted } = await server({ hostname: "127.0.0.1", port: 0, tls: { cert: CERT, key: KEY } });
    try {
      await assert.rejects(
        denoRuntime.dial(
          { host: "127.0.0.1", port: listener.port, tls: { ca: CA, servername: "example.com" } },
          new Recorder().bind,
        ),
        /TLS handshake failed with 127\.0\.0\.1:\d+: .*(NotValidForName|certificate)/,
      );
      await sleep(20);
      assert.equal(accepted.length, 0);
    } finally {
      await listener.close();
    }
  });

  test("TLS: a client without the CA fails; the listener keeps serving others", async () => {
    const { listener, next, accepted } = await server(
      { hostname: "127.0.0.1", port: 0, tls: { cert: CERT, key: KEY } },
      echo,
    );
    try {
      let bound = false;
      await assert.rejects(
        denoRuntime.dial({ host: "localhost", port: listener.port, tls: {} }, (t) => {
          bound = true;
          return new Recorder().bind(t);
        }),
        (error: Error) => {
          assert.match(error.message, /TLS handshake failed with localhost:\d+: .*UnknownIssuer/);
          return true;
        },
      );
      assert.equal(bound, false, "bind is not called for a failed dial");
      await assert.rejects(
        denoRuntime.dial({ host: "localhost", port: listener.port, tls: { rejectUnauthorized: false } }, new Recorder().bind),
        /rejectUnauthorized: false cannot skip certificate verification on Deno/,
      );
      // A raw TCP client that sends garbage instead of a ClientHello.
      const raw = await Deno.connect({ hostname: "127.0.0.1", port: listener.port });
      await raw.write(enc.encode("GET / HTTP/1.1\r\n\r\n"));
      const buffer = new Uint8Array(1024);
      while (await raw.read(buffer).catch(() => null) !== null); // a TLS alert, then the end
      raw.close();
      await sleep(20);
      assert.equal(accepted.length, 0, "no failed handshake reaches accept");

      const acceptedP = next();
      const client = new Recorder();
      await denoRuntime.dial({ host: "localhost", port: listener.port, tls: { ca: CA } }, client.bind);
      const peer = await acceptedP;
      client.transport.write([enc.encode("still here")]);
      await client.bytes(10);
      assert.equal(dec.decode(client.data()), "still here");
      await endGracefully(client, peer);
    } finally {
      await listener.close();
    }
  });

  test("16 MiB to a paused peer: write() returns false, bufferedAmount grows, drain later, bytes intact", async () => {
    const total = 16 * 1024 * 1024;
    const { listener, next } = await server({ hostname: "127.0.0.1", port: 0 }, (r) => {
      r.transport.pause();
      r.onEndHook = (self) => self.transport.end();
    });
    try {
      const acceptedP = next();
      const client = new Recorder();
      await denoRuntime.dial({ host: "127.0.0.1", port: listener.port }, client.bind);
      const peer = await acceptedP;
      let first = -1;
      for (let sent = 0; sent < total; sent += 64 * 1024) {
        const ok = client.transport.write([pattern(sent, 64 * 1024)]);
        if (!ok && first < 0) first = sent;
      }
      assert.equal(first, 64 * 1024, "the second 64 KiB write is over the high-water mark");
      // The kernel buffers fill up, then the rest stays with the transport.
      let stuck = -1;
      for (let i = 0; i < 50 && client.transport.bufferedAmount !== stuck; i++) {
        stuck = client.transport.bufferedAmount;
        await sleep(100);
      }
      assert.equal(client.transport.bufferedAmount, stuck, "nothing moves while the peer is paused");
      assert.ok(stuck > 1024 * 1024 && stuck < total, `bufferedAmount ${stuck}`);
      assert.equal(peer.received, 0, "no onData while paused");
      assert.equal(client.drains, 0);

      let mismatch = -1;
      let checked = 0;
      peer.onChunk = (c, self) => {
        for (let i = 0; i < c.length; i++) {
          if (c[i] !== patternByte(checked + i) && mismatch < 0) mismatch = checked + i;
        }
        checked += c.length;
        self.chunks = [];
      };
      peer.transport.resume();
      await client.drained();
      assert.equal(client.transport.bufferedAmount, 0);
      assert.equal(client.drains, 1);
      await peer.bytes(total);
      assert.equal(peer.received, total);
      assert.equal(mismatch, -1, `first wrong byte at ${mismatch}`);
      await endGracefully(client, peer);
    } finally {
      await listener.close();
    }
  });

  test("received chunks are not overwritten by later reads", async () => {
    const { listener, next } = await server({ hostname: "127.0.0.1", port: 0 }, (r) => {
      r.onChunk = (_, self) => self.transport.write([enc.encode(".")]); // ack each chunk
      r.onEndHook = (self) => self.transport.end();
    });
    try {
      const acceptedP = next();
      const client = new Recorder();
      await denoRuntime.dial({ host: "127.0.0.1", port: listener.port }, client.bind);
      const peer = await acceptedP;
      // Small writes (copied out of the read buffer) and big ones (handed over), one at a time
      // so each lands in a read of its own.
      const sizes = [1, 7, 100, 40_000, 3, 65_536, 33_000, 12, 20_000, 64_000, 5];
      let offset = 0;
      for (const size of sizes) {
        const acked = client.received;
        client.transport.write([pattern(offset, size)]);
        offset += size;
        await peer.bytes(offset);
        await client.bytes(acked + 1);
      }
      assert.ok(peer.chunks.length >= sizes.length, `${peer.chunks.length} chunks`);
      assert.deepEqual(peer.data(), pattern(0, offset));
      const buffers = new Set(peer.chunks.map((c) => c.buffer));
      assert.equal(buffers.size, peer.chunks.length, "every chunk has memory of its own");
      await endGracefully(client, peer);
    } finally {
      await listener.close();
    }
  });

  test("destroy(): onClose() once on this side; the peer sees the end", async () => {
    const { listener, next } = await server({ hostname: "127.0.0.1", port: 0 }, echo);
    try {
      const acceptedP = next();
      const client = new Recorder();
      await denoRuntime.dial({ host: "127.0.0.1", port: listener.port }, client.bind);
      const peer = await acceptedP;
      client.transport.write([enc.encode("x")]);
      await client.bytes(1);
      client.transport.destroy();
      assert.equal(await client.closed(), undefined);
      await peer.closed(); // FIN: onEnd, the echo handler ends, closed
      assert.equal(peer.ends, 1);
      await sleep(20);
      assert.equal(client.closes.length, 1);
      assert.equal(peer.closes.length, 1);
    } finally {
      await listener.close();
    }
  });

  for (const tls of [false, true]) {
    test(`destroy() with a write stuck against a paused peer closes at once (${tls ? "TLS" : "TCP"})`, async () => {
      const { listener, next } = await server(
        { hostname: "127.0.0.1", port: 0, tls: tls ? { cert: CERT, key: KEY } : undefined },
        (r) => r.transport.pause(),
      );
      try {
        const acceptedP = next();
        const client = new Recorder();
        await denoRuntime.dial({ host: "localhost", port: listener.port, tls: tls ? { ca: CA } : undefined }, client.bind);
        const peer = await acceptedP;
        for (let i = 0; i < 64; i++) client.transport.write([new Uint8Array(256 * 1024)]);
        await sleep(100);
        assert.ok(client.transport.bufferedAmount > 0);
        client.transport.destroy();
        assert.equal(await within(client.closed(), "onClose after destroy", 2_000), undefined);
        peer.transport.destroy();
        await peer.closed();
        assert.equal(client.closes.length, 1);
        assert.equal(peer.closes.length, 1);
      } finally {
        await listener.close();
      }
    });
  }

  test("the peer resets the connection: onClose(error) exactly once", async () => {
    // The server writes to a raw client that never reads, which then closes with unread data
    // in its receive buffer: the kernel answers with RST.
    const { listener, next } = await server({ hostname: "127.0.0.1", port: 0 });
    try {
      const acceptedP = next();
      const raw = await Deno.connect({ hostname: "127.0.0.1", port: listener.port });
      const peer = await acceptedP;
      peer.transport.write([new Uint8Array(64 * 1024)]);
      await sleep(50);
      raw.close();
      // Deno 2.9's Conn#read reports ECONNRESET as the end of the stream (null), so the reset
      // shows as onEnd, and as an error once the transport writes again.
      await within(Promise.race([peer.ended(), peer.closed()]), "the reset");
      if (peer.closes.length === 0) {
        assert.equal(peer.ends, 1);
        for (let i = 0; i < 4 && peer.closes.length === 0; i++) {
          peer.transport.write([new Uint8Array(1024)]);
          await sleep(20);
        }
      }
      const error = await peer.closed();
      assert.ok(error instanceof Error, "reset is an error");
      assert.match(error.message, /broken pipe|reset/i);
      await sleep(20);
      assert.equal(peer.closes.length, 1);
    } finally {
      await listener.close();
    }
  });

  test("the server ends first; the client closes gracefully once it ends too", async () => {
    const { listener, next } = await server({ hostname: "127.0.0.1", port: 0 }, (r) => {
      r.transport.write([enc.encode("bye")]);
      r.transport.end();
    });
    try {
      const acceptedP = next();
      const client = new Recorder();
      client.onEndHook = (self) => self.transport.end();
      await denoRuntime.dial({ host: "127.0.0.1", port: listener.port }, client.bind);
      const peer = await acceptedP;
      await client.ended();
      assert.equal(dec.decode(client.data()), "bye");
      assert.equal(await client.closed(), undefined);
      assert.equal(await peer.closed(), undefined);
      assert.equal(peer.ends, 1);
    } finally {
      await listener.close();
    }
  });

  test("end() towards a peer that never ends closes after a bounded time", async () => {
    const { listener, next } = await server({ hostname: "127.0.0.1", port: 0 });
    try {
      const acceptedP = next();
      const client = new Recorder();
      await denoRuntime.dial({ host: "127.0.0.1", port: listener.port }, client.bind);
      const peer = await acceptedP;
      client.transport.end();
      await peer.ended();
      const t0 = performance.now();
      assert.equal(await client.closed(), undefined);
      assert.ok(performance.now() - t0 < 5_000);
      peer.transport.destroy();
      await peer.closed();
    } finally {
      await listener.close();
    }
  });

  test("dial to a closed port rejects with a clear error", async () => {
    const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (probe.addr as Deno.NetAddr).port;
    probe.close();
    let bound = false;
    await assert.rejects(
      denoRuntime.dial({ host: "127.0.0.1", port }, (t) => {
        bound = true;
        return new Recorder().bind(t);
      }),
      (error: Error & { code?: string }) => {
        assert.match(error.message, new RegExp(`^anyws: cannot connect to 127\\.0\\.0\\.1:${port}: .*refused`, "i"));
        assert.equal(error.code, "ECONNREFUSED");
        assert.ok(error.cause instanceof Error);
        return true;
      },
    );
    assert.equal(bound, false);
  });

  test("listen on a port in use rejects", async () => {
    const { listener } = await server({ hostname: "127.0.0.1", port: 0 });
    try {
      await assert.rejects(
        denoRuntime.listen({ hostname: "127.0.0.1", port: listener.port }, () => new Recorder()),
        (error: Error & { code?: string }) => error.code === "EADDRINUSE",
      );
    } finally {
      await listener.close();
    }
  });

  test("Listener.close() stops accepting and leaves accepted connections alone", async () => {
    const { listener, next } = await server({ hostname: "127.0.0.1", port: 0 }, echo);
    let closedListener: Listener | undefined = listener;
    try {
      assert.equal(listener.hostname, "127.0.0.1");
      const acceptedP = next();
      const client = new Recorder();
      await denoRuntime.dial({ host: "127.0.0.1", port: listener.port }, client.bind);
      const peer = await acceptedP;
      await within(listener.close(), "listener.close()");
      closedListener = undefined;
      await listener.close(); // twice is fine
      await assert.rejects(
        denoRuntime.dial({ host: "127.0.0.1", port: listener.port }, new Recorder().bind),
        /cannot connect/,
      );
      client.transport.write([enc.encode("after close")]);
      await client.bytes(11);
      assert.equal(dec.decode(client.data()), "after close");
      await endGracefully(client, peer);
    } finally {
      await closedListener?.close();
    }
  });

  test("an accept callback that throws costs only its connection", async () => {
    let calls = 0;
    const accepted: Recorder[] = [];
    const listener = await denoRuntime.listen({ hostname: "127.0.0.1", port: 0 }, (t) => {
      if (++calls === 1) throw new Error("app bug");
      const r = new Recorder();
      echo(r);
      accepted.push(r);
      return r.bind(t);
    });
    try {
      const first = new Recorder();
      first.onEndHook = (self) => self.transport.end();
      await denoRuntime.dial({ host: "127.0.0.1", port: listener.port }, first.bind);
      await first.closed(); // the server closed it
      const second = new Recorder();
      await denoRuntime.dial({ host: "127.0.0.1", port: listener.port }, second.bind);
      second.transport.write([enc.encode("ok")]);
      await second.bytes(2);
      await endGracefully(second, accepted[0]!);
    } finally {
      await listener.close();
    }
  });
});
