/**
 * A `Transport` over any `ByteChannel` (one pending read, one pending write at a time): the
 * byte-moving machinery every pull-based adapter shares. adapters/streams plugs a Web Streams
 * pair into it, adapters/deno `Deno.Conn#read`/`write`; only the way bytes get in and out
 * differs between the two.
 *
 * It holds the reader loop with pause/resume, the ordered write queue with `bufferedAmount`,
 * the high-water mark and `onDrain`, the half-close of `end()` and the "exactly one `onClose`"
 * rule.
 *
 * Decisions (all overridable through `TransportOptions`):
 * - Received chunks are handed to `onData` without copying. Web Streams hand a chunk over to
 *   whoever reads it, and the sources this adapter is meant for (sockets, pipes, fetch bodies,
 *   `TransformStream`s) allocate a new buffer per chunk. A source that reuses its buffers must
 *   be wrapped with `copyReads: true`.
 * - Writes are queued and given to the writable one at a time, in order. Runs of small chunks
 *   (a frame header and a small payload, many small messages queued during one slow write) are
 *   merged into one buffer of at most `coalesceBytes` (16 KiB), so a socket sees one write
 *   instead of many; a chunk larger than that is passed through as is, without a copy. A small
 *   frame cut from a slab (a tuning's `SlabAllocator`, core/bytes.ts) is copied when it goes alone
 *   to a channel that may keep it.
 *   Through an in-process pipe (a `TransformStream`), a large chunk the caller wrote is the very
 *   memory the other end receives: the caller must not modify chunks after `write()`.
 * - `highWaterMark` is 64 KiB: `write()` returns false while more than that is buffered. That is
 *   one 64 KiB chunk plus whatever follows it, Linux's default pipe buffer and Deno's read size;
 *   smaller marks (Node's sockets use 16 KiB) cost throughput, and the shared layer has its own
 *   buffering above this one.
 * - `end()` writes what is buffered, closes the writable (a half-close) and waits for the
 *   peer's end; how long is the caller's decision (the session's `endTimeout`, then `destroy()`).
 * - `onClose` is called asynchronously (never from inside `end()`/`destroy()`), after the reader
 *   loop has stopped. After `destroy()` no other event is delivered.
 */
import { unpooled } from "../../core/bytes.ts";
import type { Transport, TransportHandler } from "./transport.ts";

/** Tuning of a channel transport. */
export interface TransportOptions {
  /** `write()` returns false while more than this many bytes are buffered. Default 65536. */
  highWaterMark?: number;
  /** Consecutive queued chunks are merged into one write while the result stays at most this big. Default 16384; 0 disables. */
  coalesceBytes?: number;
  /** Copy each received chunk before `onData` (for sources that reuse their buffers). Default false. */
  copyReads?: boolean;
  /** The peer's address (IPv6 without brackets); "" if none. */
  remoteAddress?: string;
  /** The peer's port; 0 if none. */
  remotePort?: number;
}

/**
 * One bidirectional byte stream, as `createTransport` drives it. Only one `read()` and one
 * `write()` are ever pending at a time.
 */
export interface ByteChannel {
  /** The next chunk, or null at the end of the stream. */
  read(): Promise<Uint8Array | null>;
  /** Writes all of `chunk`; resolves once the destination has taken it. */
  write(chunk: Uint8Array): Promise<void>;
  /** Ends the writing side (after the last write resolved): close the writable, TCP FIN. */
  closeWrite(): Promise<void>;
  /**
   * Releases everything, at once: drops unwritten data, stops reading. Called exactly once,
   * with the reason when the transport fails or is destroyed. A pending `read()` must settle
   * soon after. May return a promise that `onClose` waits for (keep it short and bounded).
   */
  close(reason?: Error): void | Promise<unknown>;
  /**
   * True if `write()` is done with a chunk's memory once its promise settles (it sent or copied
   * the bytes, as `Deno.Conn#write` does): the buffers of merged writes are then reused. Never
   * for a pipe whose other end receives the very chunk written.
   */
  readonly writeReleasesChunk?: boolean;
}

export const DEFAULT_HIGH_WATER_MARK = 64 * 1024;
export const DEFAULT_COALESCE_BYTES = 16 * 1024;

/**
 * Merge buffers of `writeReleasesChunk` channels, kept for the next merged write, because a
 * fresh zeroed buffer per write costs more than the copy into it (bench/NOTES.md, Adapters).
 * One is in use per write in flight; at most this many exist, in use or waiting here.
 */
const MERGE_POOL_MAX = 16;
/**
 * Merges smaller than this get a buffer of their own, of their size, because a small buffer is
 * cheap to allocate and a pool buffer of `coalesceBytes` per small write is not (bench/NOTES.md).
 */
const MERGE_POOL_MIN = 16 * 1024;
const mergePool: Uint8Array[] = [];
let mergeBuffersInUse = 0;

/** An `Error` for anything a stream rejected with (streams may error with any value, even undefined). */
export function toError(reason: unknown, fallback = "stream error"): Error {
  if (reason instanceof Error) return reason;
  const text = reason === undefined ? fallback : `${fallback}: ${String(reason)}`;
  return new Error(text, { cause: reason });
}

export const noop = (): void => {};

class ChannelTransport implements Transport {
  readonly remoteAddress: string;
  readonly remotePort: number;

  #channel: ByteChannel;
  #handler!: TransportHandler;
  readonly #highWaterMark: number;
  readonly #coalesce: number;
  readonly #copyReads: boolean;
  readonly #reuseMerges: boolean;

  // writing
  #queue: (Uint8Array | undefined)[] = [];
  #head = 0; // index of the first unwritten chunk in #queue
  #buffered = 0; // bytes in #queue plus the write in flight
  #writing = false;
  #needDrain = false;
  #mergeBuffer: Uint8Array | null = null; // the pooled buffer under the write in flight

  // reading
  #paused = false;
  #resume: (() => void) | null = null;
  #readDone = false; // the readable ended (or the read loop stopped)
  #readLoop: Promise<void> = Promise.resolve();

  // closing
  #ended = false; // end() called
  #destroyed = false; // destroy() called
  #writeClosing = false; // closeWrite() started
  #writeClosed = false; // closeWrite() resolved
  #closed = false; // finishing or finished: no event but onClose from here on

  constructor(channel: ByteChannel, options: TransportOptions) {
    this.#channel = channel;
    this.remoteAddress = options.remoteAddress ?? "";
    this.remotePort = options.remotePort ?? 0;
    this.#highWaterMark = options.highWaterMark ?? DEFAULT_HIGH_WATER_MARK;
    this.#coalesce = options.coalesceBytes ?? DEFAULT_COALESCE_BYTES;
    this.#copyReads = options.copyReads ?? false;
    this.#reuseMerges = channel.writeReleasesChunk === true;
  }

  /** Binds the handler and starts reading. */
  start(bind: (t: Transport) => TransportHandler): void {
    this.#handler = bind(this);
    if (!this.#closed) this.#readLoop = this.#read();
  }

  get bufferedAmount(): number {
    return this.#buffered;
  }

  write(chunks: readonly Uint8Array[]): boolean {
    if (this.#ended || this.#closed) return false; // after end(), destroy() or the close: dropped (the contract)
    for (const chunk of chunks) {
      if (chunk.length === 0) continue;
      this.#queue.push(chunk);
      this.#buffered += chunk.length;
    }
    this.#pump();
    if (this.#buffered > this.#highWaterMark) {
      this.#needDrain = true;
      return false;
    }
    return true;
  }

  end(): void {
    if (this.#ended || this.#destroyed || this.#closed) return;
    this.#ended = true;
    this.#pump();
  }

  destroy(): void {
    if (this.#destroyed || this.#closed) return;
    this.#destroyed = true;
    this.#finish(undefined, new Error("anyws: transport destroyed"));
  }

  pause(): void {
    this.#paused = true;
  }

  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    const wake = this.#resume;
    this.#resume = null;
    wake?.();
  }

  // ---------------------------------------------------------------------------------------
  // Reading

  /** Resolves on resume() or once the transport is closed. */
  #waitForResume(): Promise<void> {
    if (!this.#paused || this.#closed) return Promise.resolve();
    return new Promise((resolve) => {
      this.#resume = resolve;
    });
  }

  async #read(): Promise<void> {
    try {
      for (;;) {
        if (this.#paused) await this.#waitForResume();
        if (this.#closed) return;
        let chunk = await this.#channel.read();
        if (this.#closed) return;
        // Paused while the read was pending: keep what arrived until resume().
        if (this.#paused) await this.#waitForResume();
        if (this.#closed) return;
        if (chunk === null) {
          this.#readDone = true;
          this.#handler.onEnd();
          this.#maybeFinish();
          return;
        }
        if (chunk.length === 0) continue;
        if (this.#copyReads) chunk = chunk.slice();
        this.#handler.onData(chunk);
      }
    } catch (error) {
      this.#readDone = true;
      if (!this.#closed) this.#finish(toError(error, "read failed"));
    }
  }

  // ---------------------------------------------------------------------------------------
  // Writing

  /** The next thing to write: one chunk, or a run of small chunks merged into one. */
  #take(): Uint8Array | null {
    const q = this.#queue;
    if (this.#head === q.length) {
      if (q.length) this.#queue = [];
      this.#head = 0;
      return null;
    }
    const first = q[this.#head]!;
    let end = this.#head + 1;
    let total = first.length;
    while (end < q.length && total + q[end]!.length <= this.#coalesce) total += q[end++]!.length;
    let out: Uint8Array;
    if (end === this.#head + 1) {
      // A channel that may keep the chunk (an in-process pipe hands it to the other end's
      // application) gets no piece of a shared slab: a transfer there would reach other pieces.
      out = this.#reuseMerges ? first : unpooled(first);
      q[this.#head] = undefined;
    } else {
      out = this.#reuseMerges && total >= MERGE_POOL_MIN ? this.#pooledBuffer(total) : new Uint8Array(total);
      let offset = 0;
      for (let i = this.#head; i < end; i++) {
        out.set(q[i]!, offset);
        offset += q[i]!.length;
        q[i] = undefined;
      }
    }
    this.#head = end;
    if (this.#head === q.length) {
      this.#queue = [];
      this.#head = 0;
    } else if (this.#head >= 1024 && this.#head * 2 >= q.length) {
      this.#queue = q.slice(this.#head);
      this.#head = 0;
    }
    return out;
  }

  /** `size` bytes of a pooled merge buffer, held until the write settles. */
  #pooledBuffer(size: number): Uint8Array {
    let buffer = mergePool.pop();
    if (buffer === undefined || buffer.length < size) {
      // More writes in flight than the pool holds: this one gets a buffer of its own.
      if (mergeBuffersInUse >= MERGE_POOL_MAX) return new Uint8Array(size);
      buffer = new Uint8Array(Math.max(size, this.#coalesce));
    }
    mergeBuffersInUse++;
    this.#mergeBuffer = buffer;
    return buffer.subarray(0, size);
  }

  #pump(): void {
    if (this.#writing || this.#closed) return;
    const chunk = this.#take();
    if (chunk === null) {
      if (this.#ended && !this.#writeClosing) this.#closeWrite();
      return;
    }
    this.#writing = true;
    let written: Promise<void>;
    try {
      written = this.#channel.write(chunk);
    } catch (error) {
      written = Promise.reject(error);
    }
    const merged = this.#mergeBuffer;
    this.#mergeBuffer = null;
    const release = () => {
      if (merged === null) return;
      mergeBuffersInUse--;
      if (mergePool.length < MERGE_POOL_MAX) mergePool.push(merged);
    };
    written.then(
      () => {
        release();
        this.#writing = false;
        if (this.#closed) return;
        this.#buffered -= chunk.length;
        if (this.#buffered === 0 && this.#needDrain) {
          this.#needDrain = false;
          try {
            this.#handler.onDrain();
          } catch (error) {
            this.#finish(toError(error));
            return;
          }
        }
        this.#pump();
      },
      (error) => {
        release();
        this.#writing = false;
        if (!this.#closed) this.#finish(toError(error, "write failed"));
      },
    );
  }

  #closeWrite(): void {
    this.#writeClosing = true;
    let closed: Promise<void>;
    try {
      closed = this.#channel.closeWrite();
    } catch (error) {
      closed = Promise.reject(error);
    }
    closed.then(
      () => {
        this.#writeClosed = true;
        if (!this.#closed) this.#maybeFinish();
      },
      (error) => {
        if (!this.#closed) this.#finish(toError(error, "closing the stream failed"));
      },
    );
  }

  // ---------------------------------------------------------------------------------------
  // Closing

  /** Both directions done gracefully: close. */
  #maybeFinish(): boolean {
    if (this.#closed || !this.#readDone || !this.#writeClosed) return false;
    this.#finish();
    return true;
  }

  /**
   * The one way to close. `error` goes to onClose; `reason` (destroy) is only given to the
   * channel, so the other end of an in-process pipe sees why.
   */
  #finish(error?: Error, reason: Error | undefined = error): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#queue = [];
    this.#head = 0;
    this.#buffered = 0;
    this.#needDrain = false;
    const graceful = reason === undefined && this.#readDone && this.#writeClosed;
    let released: void | Promise<unknown> = undefined;
    try {
      released = this.#channel.close(graceful ? undefined : reason ?? new Error("anyws: transport closed"));
    } catch {
      // already released
    }
    // Wake a paused reader loop so it sees #closed and stops.
    const wake = this.#resume;
    this.#resume = null;
    wake?.();
    Promise.all([this.#readLoop, released]).catch(noop).then(() => this.#handler.onClose(error));
  }
}

/**
 * A transport over a `ByteChannel`: the shared machinery of the stream-based adapters.
 * `bind` is called before any event; if it throws, the channel is closed and the error thrown.
 */
export function createTransport(
  channel: ByteChannel,
  bind: (t: Transport) => TransportHandler,
  options: TransportOptions = {},
): Transport {
  const transport = new ChannelTransport(channel, options);
  try {
    transport.start(bind);
  } catch (error) {
    try {
      void Promise.resolve(channel.close(toError(error))).catch(noop);
    } catch {
      // nothing more to release
    }
    throw error;
  }
  return transport;
}
