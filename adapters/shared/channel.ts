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
 * - Writes are queued and given to the writable one at a time, in order, as they are: the
 *   session merges a tick's small frames before they get here (adapters/shared/session.ts). A
 *   frame cut from a slab (a tuning's `SlabAllocator`, core/bytes.ts) is copied when it goes to
 *   a channel that may keep it.
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
   * the bytes, as `Deno.Conn#write` does): a piece of a slab may then be written as it is. Never
   * for a pipe whose other end receives the very chunk written.
   */
  readonly writeReleasesChunk?: boolean;
}

export const DEFAULT_HIGH_WATER_MARK = 64 * 1024;

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
  readonly #copyReads: boolean;
  readonly #keepsNoChunk: boolean;

  // writing
  #queue: (Uint8Array | undefined)[] = [];
  #head = 0; // index of the first unwritten chunk in #queue
  #buffered = 0; // bytes in #queue plus the write in flight
  #writing = false;
  #needDrain = false;

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
    this.#copyReads = options.copyReads ?? false;
    this.#keepsNoChunk = channel.writeReleasesChunk === true;
  }

  /** Binds the handler and starts reading. */
  start(bind: (t: Transport) => TransportHandler): void {
    this.#handler = bind(this);
    if (!this.#closed) this.#readLoop = this.#read();
  }

  get bufferedAmount(): number {
    return this.#buffered;
  }

  get highWaterMark(): number {
    return this.#highWaterMark;
  }

  get releasesChunks(): boolean {
    return this.#keepsNoChunk;
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

  /** The next chunk to write. */
  #take(): Uint8Array | null {
    const q = this.#queue;
    if (this.#head === q.length) {
      if (q.length) this.#queue = [];
      this.#head = 0;
      return null;
    }
    const first = q[this.#head]!;
    q[this.#head++] = undefined;
    if (this.#head === q.length) {
      this.#queue = [];
      this.#head = 0;
    } else if (this.#head >= 1024 && this.#head * 2 >= q.length) {
      this.#queue = q.slice(this.#head);
      this.#head = 0;
    }
    // A channel that may keep the chunk (an in-process pipe hands it to the other end's
    // application) gets no piece of a shared slab: a transfer there would reach other pieces.
    return this.#keepsNoChunk ? first : unpooled(first);
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
    written.then(
      () => {
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
