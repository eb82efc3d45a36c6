/**
 * The Web Streams transport (adapters/streams/runtime.ts), on Node, Deno and Bun: two transports
 * back to back over two `TransformStream`s, and hand-built streams where a test needs to count
 * pulls, slow a writer down or make it fail.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { type ByteChannel, createTransport } from "../../../adapters/shared/channel.ts";
import { streamTransport, type StreamTransportOptions } from "../../../adapters/streams/runtime.ts";
import { concatBytes } from "../../../core/bytes.ts";
import { fromUtf8, pattern, patternByte, utf8 } from "../../support/bytes.ts";
import { delay } from "../../support/time.ts";
import { echoChunk, endGracefully, Recorder } from "../../support/transport-recorder.ts";
import { pipePair } from "../../support/streams.ts";
import { endCases } from "../../support/transport-contract.ts";

/** A readable that has already ended. */
const ended = () => new ReadableStream<Uint8Array>({ start: (c) => c.close() });

/** Two connected transports. */
function connect(options: StreamTransportOptions = {}) {
  const [sa, sb] = pipePair();
  const a = new Recorder();
  const b = new Recorder();
  streamTransport(sa, a.bind, options);
  streamTransport(sb, b.bind, options);
  return { a, b };
}

describe("streams transport", () => {
  test("echo, then a graceful close on both sides", async () => {
    const { a, b } = connect();
    b.onChunk = echoChunk;
    assert.equal(a.transport.write([utf8("hel"), utf8("lo")]), true);
    await a.whenBytes(5);
    assert.equal(fromUtf8(a.data()), "hello");
    assert.equal(a.transport.remoteAddress, "");
    assert.equal(a.transport.remotePort, 0);
    await endGracefully(a, b); // each saw one end
  });

  test("chunks arrive in order and byte-exact", async () => {
    const { a, b } = connect();
    const sent: Uint8Array[] = [];
    let offset = 0;
    for (let i = 0; i < 2000; i++) {
      const size = (i * 7919) % 3001; // includes 0-byte chunks, which are skipped
      const batch = [pattern(offset, size), pattern(offset + size, i % 3)];
      offset += size + (i % 3);
      sent.push(...batch);
      a.transport.write(batch);
    }
    await b.whenBytes(offset);
    assert.deepEqual(b.data(), concatBytes(sent));
    assert.equal(a.transport.bufferedAmount, 0);
    await endGracefully(a, b);
  });

  test("16 MiB with backpressure: write() returns false, onDrain follows, bytes intact", async () => {
    const { a, b } = connect();
    const total = 16 * 1024 * 1024;
    const chunk = 64 * 1024;
    let checked = 0;
    let mismatch = -1;
    b.onChunk = (c) => {
      for (let i = 0; i < c.length; i++) {
        if (c[i] !== patternByte(checked + i) && mismatch < 0) mismatch = checked + i;
      }
      checked += c.length;
    };
    let falses = 0;
    for (let sent = 0; sent < total; sent += chunk) {
      if (!a.transport.write([pattern(sent, chunk)])) {
        falses++;
        assert.ok(a.transport.bufferedAmount > 64 * 1024);
        await a.whenDrained();
        assert.equal(a.transport.bufferedAmount, 0);
      }
    }
    await b.whenBytes(total);
    assert.equal(b.received, total);
    assert.equal(mismatch, -1, `first wrong byte at ${mismatch}`);
    assert.ok(falses > 0, "write() never returned false");
    assert.equal(a.drains, falses);
    b.chunks = [];
    await endGracefully(a, b);
  });

  test("pause() stops pulling from the readable; resume() starts again", async () => {
    let pulls = 0;
    const readable = new ReadableStream<Uint8Array>({
      pull(controller) {
        pulls++;
        controller.enqueue(new Uint8Array(1024).fill(pulls & 0xff));
      },
    });
    const writable = new WritableStream<Uint8Array>();
    const r = new Recorder();
    r.onChunk = (_, self) => {
      if (self.chunks.length === 5) self.transport.pause();
    };
    streamTransport({ readable, writable }, r.bind);
    await r.whenBytes(5 * 1024);
    await delay(30);
    const pullsWhilePaused = pulls;
    // At most the read that was pending and the stream's own one-chunk queue.
    assert.ok(pullsWhilePaused <= 5 + 2, `${pullsWhilePaused} pulls for 5 chunks`);
    await delay(50);
    assert.equal(pulls, pullsWhilePaused, "the readable was pulled while paused");
    assert.equal(r.chunks.length, 5, "onData while paused");

    r.onChunk = (_, self) => {
      if (self.chunks.length === 20) self.transport.pause();
    };
    r.transport.resume();
    await r.whenBytes(20 * 1024);
    await delay(30);
    assert.equal(r.chunks.length, 20);
    assert.ok(pulls > pullsWhilePaused && pulls <= 20 + 2);
    // Chunks came in the order the source made them, none lost across the pauses.
    assert.deepEqual(r.chunks.map((c) => c[0]), Array.from({ length: 20 }, (_, i) => (i + 1) & 0xff));
    r.transport.destroy();
    assert.equal(await r.whenClosed(), undefined);
  });

  test("a chunk or the end that arrives while paused waits for resume()", async () => {
    let controller!: ReadableStreamDefaultController<Uint8Array>;
    const readable = new ReadableStream<Uint8Array>({ start: (c) => void (controller = c) });
    const r = new Recorder();
    streamTransport({ readable, writable: new WritableStream() }, r.bind);
    await delay(5); // the reader loop is now waiting in read()
    r.transport.pause();
    controller.enqueue(utf8("held"));
    controller.close();
    await delay(30);
    assert.equal(r.received, 0);
    assert.equal(r.ends, 0);
    r.transport.resume();
    await r.whenEnded();
    assert.equal(fromUtf8(r.data()), "held");
    r.transport.end();
    assert.equal(await r.whenClosed(), undefined);
  });

  test("a slow writable: bufferedAmount counts unresolved bytes, onDrain once it is empty", async () => {
    const written: Uint8Array[] = [];
    let writes = 0;
    const writable = new WritableStream<Uint8Array>({
      async write(chunk) {
        writes++;
        await delay(2);
        written.push(chunk.slice());
      },
    });
    const r = new Recorder();
    streamTransport({ readable: ended(), writable }, r.bind);
    const big = pattern(0, 100_000);
    assert.equal(r.transport.write([big.subarray(0, 60_000)]), true); // 60000 <= 64 KiB
    assert.equal(r.transport.write([big.subarray(60_000)]), false);
    assert.equal(r.transport.bufferedAmount, 100_000);
    // Small chunks queued behind a slow write are written as they are (merging is the session's job).
    const small: Uint8Array[] = [];
    for (let i = 0; i < 100; i++) small.push(pattern(100_000 + i * 10, 10));
    assert.equal(r.transport.write(small), false);
    assert.equal(r.transport.bufferedAmount, 101_000);
    await r.whenDrained();
    assert.equal(r.transport.bufferedAmount, 0);
    assert.equal(r.drains, 1);
    assert.deepEqual(concatBytes(written), pattern(0, 101_000));
    assert.equal(writes, 102, "60000, 40000, then each small chunk");
    assert.equal(r.transport.write([new Uint8Array(10)]), true);
    r.transport.end(); // waits for the slow writes, unlike destroy()
    assert.equal(await r.whenClosed(), undefined);
    assert.equal(writes, 103);
  });

  test("highWaterMark is configurable", async () => {
    const r = new Recorder();
    streamTransport(
      { readable: ended(), writable: new WritableStream({ write: () => delay(1) }) },
      r.bind,
      { highWaterMark: 1024 },
    );
    assert.equal(r.transport.write([new Uint8Array(1024)]), true);
    assert.equal(r.transport.write([new Uint8Array(1)]), false);
    await r.whenDrained();
    r.transport.end();
    assert.equal(await r.whenClosed(), undefined);
  });

  test("end() flushes everything buffered before the other side's onEnd", async () => {
    const { a, b } = connect();
    const total = 1024 * 1024;
    for (let sent = 0; sent < total; sent += 8192) a.transport.write([pattern(sent, 8192)]);
    a.transport.end();
    assert.equal(a.transport.write([new Uint8Array(1)]), false, "dropped after end()");
    a.transport.end(); // idempotent
    await b.whenEnded();
    assert.equal(b.received, total);
    assert.deepEqual(b.data(), pattern(0, total));
    b.chunks = [];
    await endGracefully(a, b);
  });

  test("destroy(): onClose() once, asynchronously; the other side gets an error", async () => {
    const { a, b } = connect();
    a.transport.write([utf8("dropped?")]);
    await b.whenBytes(8);
    a.transport.destroy();
    assert.equal(a.closes.length, 0, "onClose is not called from inside destroy()");
    assert.equal(a.transport.bufferedAmount, 0);
    assert.equal(a.transport.write([new Uint8Array(1)]), false, "dropped after destroy()");
    a.transport.destroy();
    a.transport.end();
    assert.equal(await a.whenClosed(), undefined);
    const error = await b.whenClosed();
    assert.ok(error instanceof Error, "the peer's onClose carries an error");
    await delay(20);
    assert.equal(a.closes.length, 1);
    assert.equal(b.closes.length, 1);
    assert.equal(b.ends, 0);
  });

  test("destroy() while paused and while a write is stuck still closes", async () => {
    const { a, b } = connect();
    b.transport.pause();
    // b stops reading: the first chunk goes to the read b had pending, the others stay stuck.
    const mib = () => new Uint8Array(1024 * 1024);
    a.transport.write([mib(), mib(), mib()]);
    await delay(10);
    assert.ok(a.transport.bufferedAmount > 0);
    b.transport.destroy();
    a.transport.destroy();
    await a.whenClosed();
    await b.whenClosed();
    assert.equal(a.closes.length, 1);
    assert.equal(b.closes.length, 1);
  });

  test("a writer error: onClose(error) exactly once, later writes are dropped", async () => {
    let writes = 0;
    const writable = new WritableStream<Uint8Array>({
      write() {
        if (++writes === 2) throw new Error("boom");
      },
    });
    const r = new Recorder();
    streamTransport({ readable: new ReadableStream(), writable }, r.bind);
    r.transport.write([new Uint8Array(10), new Uint8Array(10), new Uint8Array(10)]);
    const error = await r.whenClosed();
    assert.equal(error?.message, "boom");
    assert.equal(r.transport.write([new Uint8Array(1)]), false); // closed by the error: dropped
    r.transport.end();
    r.transport.destroy();
    await delay(20);
    assert.equal(r.closes.length, 1);
  });

  test("a reader error: onClose(error) exactly once, even for a non-Error reason", async () => {
    let controller!: ReadableStreamDefaultController<Uint8Array>;
    const readable = new ReadableStream<Uint8Array>({ start: (c) => void (controller = c) });
    const r = new Recorder();
    streamTransport({ readable, writable: new WritableStream() }, r.bind);
    controller.enqueue(utf8("x"));
    await r.whenBytes(1);
    controller.error("reset by peer");
    const error = await r.whenClosed();
    assert.ok(error instanceof Error);
    assert.match(error.message, /reset by peer/);
    await delay(20);
    assert.equal(r.closes.length, 1);
    assert.equal(r.ends, 0);
  });

  test("a writable that fails to close reports the error", async () => {
    const writable = new WritableStream<Uint8Array>({
      close() {
        throw new Error("close failed");
      },
    });
    const readable = new ReadableStream<Uint8Array>({ start: (c) => c.close() });
    const r = new Recorder();
    streamTransport({ readable, writable }, r.bind);
    await r.whenEnded();
    r.transport.end();
    assert.equal((await r.whenClosed())?.message, "close failed");
    assert.equal(r.closes.length, 1);
  });

  test("bind runs first and may write; an exception in onData closes with that error", async () => {
    const [sa, sb] = pipePair();
    const b = new Recorder();
    streamTransport(sb, b.bind);
    const a = new Recorder();
    streamTransport(sa, (t) => {
      assert.equal(a.chunks.length, 0);
      t.write([utf8("hi from bind")]);
      return a.bind(t);
    });
    await b.whenBytes(12);
    assert.equal(fromUtf8(b.data()), "hi from bind");
    a.onChunk = () => {
      throw new Error("handler bug");
    };
    b.transport.write([utf8("!")]);
    assert.equal((await a.whenClosed())?.message, "handler bug");
    assert.ok((await b.whenClosed()) instanceof Error);
  });

  test("copyReads protects against a source that reuses its buffer", async () => {
    const shared = new Uint8Array(4);
    let n = 0;
    const readable = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (n === 3) return controller.close();
        shared.fill(++n);
        controller.enqueue(shared);
      },
    }, { highWaterMark: 0 });
    const r = new Recorder();
    streamTransport({ readable, writable: new WritableStream() }, r.bind, {
      copyReads: true,
      remoteAddress: "192.0.2.1",
      remotePort: 4242,
    });
    await r.whenEnded();
    assert.deepEqual(r.chunks.map((c) => c[0]), [1, 2, 3]);
    assert.equal(r.transport.remoteAddress, "192.0.2.1");
    assert.equal(r.transport.remotePort, 4242);
    r.transport.end();
    assert.equal(await r.whenClosed(), undefined);
  });
});

describe("streams transport: the ending rules of every transport", () => {
  endCases(async (_t, bind, peer) => {
    const [one, two] = pipePair();
    streamTransport(one, bind);
    streamTransport(two, peer.bind);
  });
});
