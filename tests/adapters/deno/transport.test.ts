/**
 * The Deno runtime adapter (adapters/deno/runtime.ts) over real loopback sockets: TCP and TLS,
 * IPv4 and IPv6, backpressure against a paused peer, every way a connection ends.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { denoRuntime } from "../../../adapters/deno/runtime.ts";
import type { DialOptions, Listener, ListenOptions } from "../../../adapters/shared/transport.ts";
import { fromUtf8, pattern, patternByte, utf8 } from "../../support/bytes.ts";
import { readTlsFixtures } from "../../support/fixtures.ts";
import { delay, withTimeout } from "../../support/time.ts";
import { echoChunk, endBack, endGracefully, listenRecorded, Recorder } from "../../support/transport-recorder.ts";
import { endCases, runtimePair } from "../../support/transport-contract.ts";

const { cert: CERT, key: KEY, ca: CA } = await readTlsFixtures();

const IPV6 = (() => {
  try {
    Deno.listen({ hostname: "::1", port: 0 }).close();
    return true;
  } catch {
    return false;
  }
})();

/** A listener whose accepted connections are recorded (and set up by `setup`, if given). */
const server = (options: ListenOptions, setup?: (r: Recorder) => void) =>
  listenRecorded(denoRuntime, options, { setup });

const echo = (r: Recorder) => {
  r.onChunk = echoChunk;
  r.onEndHook = endBack;
};

async function echoRoundTrip(
  listenOptions: ListenOptions,
  dialOptions: Omit<DialOptions, "port">,
  expectedAddress: string,
) {
  const { listener, dial } = await server(listenOptions, echo);
  try {
    assert.ok(listener.port > 0, "port 0 picks a port");
    const { client, peer } = await dial(dialOptions);
    assert.equal(client.transport.remoteAddress, expectedAddress);
    assert.equal(client.transport.remotePort, listener.port);
    assert.equal(peer.transport.remoteAddress, expectedAddress);
    assert.ok(peer.transport.remotePort > 0);
    client.transport.write([utf8("hello, "), utf8("world")]);
    await client.whenBytes(12);
    assert.equal(fromUtf8(client.data()), "hello, world");
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
      { hostname: "127.0.0.1", port: 0, tls: { cert: CERT, key: utf8(KEY) } },
      { host: "127.0.0.1", tls: { ca: CA } },
      "127.0.0.1",
    );
  });

  test("TLS echo over IPv6 with the CA as bytes", { skip: !IPV6 && "no IPv6 loopback" }, async () => {
    await echoRoundTrip(
      { hostname: "::1", port: 0, tls: { cert: utf8(CERT), key: KEY } },
      { host: "::1", tls: { ca: [utf8(CA)] } },
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
      await delay(20);
      assert.equal(accepted.length, 0);
    } finally {
      await listener.close();
    }
  });

  test("TLS: a client without the CA fails; the listener keeps serving others", async () => {
    const { listener, dial, accepted } = await server(
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
      await raw.write(utf8("GET / HTTP/1.1\r\n\r\n"));
      const buffer = new Uint8Array(1024);
      while (await raw.read(buffer).catch(() => null) !== null); // a TLS alert, then the end
      raw.close();
      await delay(20);
      assert.equal(accepted.length, 0, "no failed handshake reaches accept");

      const { client, peer } = await dial({ host: "localhost", tls: { ca: CA } });
      client.transport.write([utf8("still here")]);
      await client.whenBytes(10);
      assert.equal(fromUtf8(client.data()), "still here");
      await endGracefully(client, peer);
    } finally {
      await listener.close();
    }
  });

  test("16 MiB to a paused peer: write() returns false, bufferedAmount grows, drain later, bytes intact", async () => {
    const total = 16 * 1024 * 1024;
    const { listener, dial } = await server({ hostname: "127.0.0.1", port: 0 }, (r) => {
      r.transport.pause();
      r.onEndHook = endBack;
    });
    try {
      const { client, peer } = await dial();
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
        await delay(100);
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
      await client.whenDrained();
      assert.equal(client.transport.bufferedAmount, 0);
      assert.equal(client.drains, 1);
      await peer.whenBytes(total);
      assert.equal(peer.received, total);
      assert.equal(mismatch, -1, `first wrong byte at ${mismatch}`);
      await endGracefully(client, peer);
    } finally {
      await listener.close();
    }
  });

  test("received chunks are not overwritten by later reads", async () => {
    const { listener, dial } = await server({ hostname: "127.0.0.1", port: 0 }, (r) => {
      r.onChunk = (_, self) => self.transport.write([utf8(".")]); // ack each chunk
      r.onEndHook = endBack;
    });
    try {
      const { client, peer } = await dial();
      // Small writes (copied out of the read buffer) and big ones (handed over), one at a time
      // so each lands in a read of its own.
      const sizes = [1, 7, 100, 40_000, 3, 65_536, 33_000, 12, 20_000, 64_000, 5];
      let offset = 0;
      for (const size of sizes) {
        const acked = client.received;
        client.transport.write([pattern(offset, size)]);
        offset += size;
        await peer.whenBytes(offset);
        await client.whenBytes(acked + 1);
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
    const { listener, dial } = await server({ hostname: "127.0.0.1", port: 0 }, echo);
    try {
      const { client, peer } = await dial();
      client.transport.write([utf8("x")]);
      await client.whenBytes(1);
      client.transport.destroy();
      assert.equal(await client.whenClosed(), undefined);
      await peer.whenClosed(); // FIN: onEnd, the echo handler ends, closed
      assert.equal(peer.ends, 1);
      await delay(20);
      assert.equal(client.closes.length, 1);
      assert.equal(peer.closes.length, 1);
    } finally {
      await listener.close();
    }
  });

  for (const tls of [false, true]) {
    test(`destroy() with a write stuck against a paused peer closes at once (${tls ? "TLS" : "TCP"})`, async () => {
      const { listener, dial } = await server(
        { hostname: "127.0.0.1", port: 0, tls: tls ? { cert: CERT, key: KEY } : undefined },
        (r) => r.transport.pause(),
      );
      try {
        const { client, peer } = await dial({ host: "localhost", tls: tls ? { ca: CA } : undefined });
        for (let i = 0; i < 64; i++) client.transport.write([new Uint8Array(256 * 1024)]);
        await delay(100);
        assert.ok(client.transport.bufferedAmount > 0);
        client.transport.destroy();
        assert.equal(await withTimeout(client.whenClosed(), 2_000, "onClose after destroy"), undefined);
        peer.transport.destroy();
        await peer.whenClosed();
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
      await delay(50);
      raw.close();
      // Deno 2.9's Conn#read reports ECONNRESET as the end of the stream (null), so the reset
      // shows as onEnd, and as an error once the transport writes again.
      await withTimeout(Promise.race([peer.whenEnded(), peer.whenClosed()]), 10_000, "the reset");
      if (peer.closes.length === 0) {
        assert.equal(peer.ends, 1);
        for (let i = 0; i < 4 && peer.closes.length === 0; i++) {
          peer.transport.write([new Uint8Array(1024)]);
          await delay(20);
        }
      }
      const error = await peer.whenClosed();
      assert.ok(error instanceof Error, "reset is an error");
      assert.match(error.message, /broken pipe|reset/i);
      await delay(20);
      assert.equal(peer.closes.length, 1);
    } finally {
      await listener.close();
    }
  });

  test("the server ends first; the client closes gracefully once it ends too", async () => {
    const { listener, dial } = await server({ hostname: "127.0.0.1", port: 0 }, (r) => {
      r.transport.write([utf8("bye")]);
      r.transport.end();
    });
    try {
      const { client, peer } = await dial({}, new Recorder({ onEndHook: endBack }));
      await client.whenEnded();
      assert.equal(fromUtf8(client.data()), "bye");
      assert.equal(await client.whenClosed(), undefined);
      assert.equal(await peer.whenClosed(), undefined);
      assert.equal(peer.ends, 1);
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
    const { listener, dial } = await server({ hostname: "127.0.0.1", port: 0 }, echo);
    let closedListener: Listener | undefined = listener;
    try {
      assert.equal(listener.hostname, "127.0.0.1");
      const { client, peer } = await dial();
      await withTimeout(listener.close(), 10_000, "listener.close()");
      closedListener = undefined;
      await listener.close(); // twice is fine
      await assert.rejects(
        denoRuntime.dial({ host: "127.0.0.1", port: listener.port }, new Recorder().bind),
        /cannot connect/,
      );
      client.transport.write([utf8("after close")]);
      await client.whenBytes(11);
      assert.equal(fromUtf8(client.data()), "after close");
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
      first.onEndHook = endBack;
      await denoRuntime.dial({ host: "127.0.0.1", port: listener.port }, first.bind);
      await first.whenClosed(); // the server closed it
      const second = new Recorder();
      await denoRuntime.dial({ host: "127.0.0.1", port: listener.port }, second.bind);
      second.transport.write([utf8("ok")]);
      await second.whenBytes(2);
      await endGracefully(second, accepted[0]!);
    } finally {
      await listener.close();
    }
  });
});

describe("deno runtime: the ending rules of every transport", () => {
  endCases(runtimePair(denoRuntime));
});
