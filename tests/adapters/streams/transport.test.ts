/**
 * The Web Streams transport (adapters/streams/runtime.ts), on Node, Deno and Bun: two transports
 * back to back over two `TransformStream`s, and hand-built streams where a test needs to count
 * pulls, slow a writer down or make it fail.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { streamTransport, type StreamTransportOptions } from "../../../adapters/streams/runtime.ts";
import type { Transport, TransportHandler } from "../../../adapters/shared/transport.ts";

type Streams = { readable: ReadableStream<Uint8Array>; writable: WritableStream<Uint8Array> };

/** Two stream pairs, each end's writable feeding the other end's readable. */
function pipePair(): [Streams, Streams] {
  const ab = new TransformStream<Uint8Array, Uint8Array>();
  const ba = new TransformStream<Uint8Array, Uint8Array>();
  return [
    { readable: ba.readable, writable: ab.writable },
    { readable: ab.readable, writable: ba.writable },
  ];
}

/** A readable that has already ended. */
const ended = () => new ReadableStream<Uint8Array>({ start: (c) => c.close() });

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
  /** Called from onData after recording (echo, pause, ...). */
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
    assert.equal(this.closes.length, 0, "onDrain after onClose");
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

/** Deterministic bytes: byte i of the stream is a function of i. */
const patternByte = (i: number) => (i * 31 + (i >>> 8) * 7 + 11) & 0xff;
function pattern(from: number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = patternByte(from + i);
  return out;
}

/** Two connected transports. */
function connect(options: StreamTransportOptions = {}) {
  const [sa, sb] = pipePair();
  const a = new Recorder();
  const b = new Recorder();
  streamTransport(sa, a.bind, options);
  streamTransport(sb, b.bind, options);
  return { a, b };
}

/** Both sides end gracefully and close without an error, once. */
async function endBoth(a: Recorder, b: Recorder): Promise<void> {
  b.onEndHook = (self) => self.transport.end();
  if (b.ends) b.transport.end();
  a.transport.end();
  assert.equal(await a.closed(), undefined);
  assert.equal(await b.closed(), undefined);
  assert.equal(a.closes.length, 1);
  assert.equal(b.closes.length, 1);
}

const enc = new TextEncoder();
const dec = new TextDecoder();

describe("streams transport", () => {
  test("echo, then a graceful close on both sides", async () => {
    const { a, b } = connect();
    b.onChunk = (chunk, self) => self.transport.write([chunk]);
    assert.equal(a.transport.write([enc.encode("hel"), enc.encode("lo")]), true);
    await a.bytes(5);
    assert.equal(dec.decode(a.data()), "hello");
    assert.equal(a.transport.remoteAddress, "");
    assert.equal(a.transport.remotePort, 0);
    await endBoth(a, b);
    assert.equal(a.ends, 1);
    assert.equal(b.ends, 1);
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
    await b.bytes(offset);
    assert.deepEqual(b.data(), concat(sent));
    assert.equal(a.transport.bufferedAmount, 0);
    await endBoth(a, b);
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
        await a.drained();
        assert.equal(a.transport.bufferedAmount, 0);
      }
    }
    await b.bytes(total);
    assert.equal(b.received, total);
    assert.equal(mismatch, -1, `first wrong byte at ${mismatch}`);
    assert.ok(falses > 0, "write() never returned false");
    assert.equal(a.drains, falses);
    b.chunks = [];
    await endBoth(a, b);
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
    await r.bytes(5 * 1024);
    await sleep(30);
    const pullsWhilePaused = pulls;
    // At most the read that was pending and the stream's own one-chunk queue.
    assert.ok(pullsWhilePaused <= 5 + 2, `${pullsWhilePaused} pulls for 5 chunks`);
    await sleep(50);
    assert.equal(pulls, pullsWhilePaused, "the readable was pulled while paused");
    assert.equal(r.chunks.length, 5, "onData while paused");

    r.onChunk = (_, self) => {
      if (self.chunks.length === 20) self.transport.pause();
    };
    r.transport.resume();
    await r.bytes(20 * 1024);
    await sleep(30);
    assert.equal(r.chunks.length, 20);
    assert.ok(pulls > pullsWhilePaused && pulls <= 20 + 2);
    // Chunks came in the order the source made them, none lost across the pauses.
    assert.deepEqual(r.chunks.map((c) => c[0]), Array.from({ length: 20 }, (_, i) => (i + 1) & 0xff));
    r.transport.destroy();
    assert.equal(await r.closed(), undefined);
  });

  test("a chunk or the end that arrives while paused waits for resume()", async () => {
    let controller!: ReadableStreamDefaultController<Uint8Array>;
    const readable = new ReadableStream<Uint8Array>({ start: (c) => void (controller = c) });
    const r = new Recorder();
    streamTransport({ readable, writable: new WritableStream() }, r.bind);
    await sleep(5); // the reader loop is now waiting in read()
    r.transport.pause();
    controller.enqueue(enc.encode("held"));
    controller.close();
    await sleep(30);
    assert.equal(r.received, 0);
    assert.equal(r.ends, 0);
    r.transport.resume();
    await r.ended();
    assert.equal(dec.decode(r.data()), "held");
    r.transport.end();
    assert.equal(await r.closed(), undefined);
  });

  test("a slow writable: bufferedAmount counts unresolved bytes, onDrain once it is empty", async () => {
    const written: Uint8Array[] = [];
    let writes = 0;
    const writable = new WritableStream<Uint8Array>({
      async write(chunk) {
        writes++;
        await sleep(2);
        written.push(chunk.slice());
      },
    });
    const r = new Recorder();
    streamTransport({ readable: ended(), writable }, r.bind);
    const big = pattern(0, 100_000);
    assert.equal(r.transport.write([big.subarray(0, 60_000)]), true); // 60000 <= 64 KiB
    assert.equal(r.transport.write([big.subarray(60_000)]), false);
    assert.equal(r.transport.bufferedAmount, 100_000);
    // Small chunks queued behind a slow write are merged into one write.
    const small: Uint8Array[] = [];
    for (let i = 0; i < 100; i++) small.push(pattern(100_000 + i * 10, 10));
    assert.equal(r.transport.write(small), false);
    assert.equal(r.transport.bufferedAmount, 101_000);
    await r.drained();
    assert.equal(r.transport.bufferedAmount, 0);
    assert.equal(r.drains, 1);
    assert.deepEqual(concat(written), pattern(0, 101_000));
    assert.equal(writes, 3, "60000 + 40000 + 100 small chunks merged into one");
    assert.equal(r.transport.write([new Uint8Array(10)]), true);
    r.transport.end(); // waits for the slow writes, unlike destroy()
    assert.equal(await r.closed(), undefined);
    assert.equal(writes, 4);
  });

  test("highWaterMark is configurable", async () => {
    const r = new Recorder();
    streamTransport(
      { readable: ended(), writable: new WritableStream({ write: () => sleep(1) }) },
      r.bind,
      { highWaterMark: 1024 },
    );
    assert.equal(r.transport.write([new Uint8Array(1024)]), true);
    assert.equal(r.transport.write([new Uint8Array(1)]), false);
    await r.drained();
    r.transport.end();
    assert.equal(await r.closed(), undefined);
  });

  test("end() flushes everything buffered before the other side's onEnd", async () => {
    const { a, b } = connect();
    const total = 1024 * 1024;
    for (let sent = 0; sent < total; sent += 8192) a.transport.write([pattern(sent, 8192)]);
    a.transport.end();
    assert.throws(() => a.transport.write([new Uint8Array(1)]), /after end/);
    a.transport.end(); // idempotent
    await b.ended();
    assert.equal(b.received, total);
    assert.deepEqual(b.data(), pattern(0, total));
    b.chunks = [];
    await endBoth(a, b);
  });

  test("end() closes after endTimeout when the peer never ends", async () => {
    const { a, b } = connect({ endTimeout: 50 });
    a.transport.end();
    await b.ended();
    const t0 = performance.now();
    assert.equal(await a.closed(), undefined);
    assert.ok(performance.now() - t0 < 5_000);
    // a cancelled its readable: b's writable is gone, b learns it at its next write or end.
    b.transport.end();
    await b.closed();
    assert.equal(a.closes.length, 1);
    assert.equal(b.closes.length, 1);
  });

  test("destroy(): onClose() once, asynchronously; the other side gets an error", async () => {
    const { a, b } = connect();
    a.transport.write([enc.encode("dropped?")]);
    await b.bytes(8);
    a.transport.destroy();
    assert.equal(a.closes.length, 0, "onClose is not called from inside destroy()");
    assert.equal(a.transport.bufferedAmount, 0);
    assert.throws(() => a.transport.write([new Uint8Array(1)]), /after destroy/);
    a.transport.destroy();
    a.transport.end();
    assert.equal(await a.closed(), undefined);
    const error = await b.closed();
    assert.ok(error instanceof Error, "the peer's onClose carries an error");
    await sleep(20);
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
    await sleep(10);
    assert.ok(a.transport.bufferedAmount > 0);
    b.transport.destroy();
    a.transport.destroy();
    await a.closed();
    await b.closed();
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
    streamTransport({ readable: new ReadableStream(), writable }, r.bind, { coalesceBytes: 0 });
    r.transport.write([new Uint8Array(10), new Uint8Array(10), new Uint8Array(10)]);
    const error = await r.closed();
    assert.equal(error?.message, "boom");
    assert.equal(r.transport.write([new Uint8Array(1)]), true); // closed by the error: dropped
    r.transport.end();
    r.transport.destroy();
    await sleep(20);
    assert.equal(r.closes.length, 1);
  });

  test("a reader error: onClose(error) exactly once, even for a non-Error reason", async () => {
    let controller!: ReadableStreamDefaultController<Uint8Array>;
    const readable = new ReadableStream<Uint8Array>({ start: (c) => void (controller = c) });
    const r = new Recorder();
    streamTransport({ readable, writable: new WritableStream() }, r.bind);
    controller.enqueue(enc.encode("x"));
    await r.bytes(1);
    controller.error("reset by peer");
    const error = await r.closed();
    assert.ok(error instanceof Error);
    assert.match(error.message, /reset by peer/);
    await sleep(20);
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
    await r.ended();
    r.transport.end();
    assert.equal((await r.closed())?.message, "close failed");
    assert.equal(r.closes.length, 1);
  });

  test("bind runs first and may write; an exception in onData closes with that error", async () => {
    const [sa, sb] = pipePair();
    const b = new Recorder();
    streamTransport(sb, b.bind);
    const a = new Recorder();
    streamTransport(sa, (t) => {
      assert.equal(a.chunks.length, 0);
      t.write([enc.encode("hi from bind")]);
      return a.bind(t);
    });
    await b.bytes(12);
    assert.equal(dec.decode(b.data()), "hi from bind");
    a.onChunk = () => {
      throw new Error("handler bug");
    };
    b.transport.write([enc.encode("!")]);
    assert.equal((await a.closed())?.message, "handler bug");
    assert.ok((await b.closed()) instanceof Error);
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
    await r.ended();
    assert.deepEqual(r.chunks.map((c) => c[0]), [1, 2, 3]);
    assert.equal(r.transport.remoteAddress, "192.0.2.1");
    assert.equal(r.transport.remotePort, 4242);
    r.transport.end();
    assert.equal(await r.closed(), undefined);
  });
});
