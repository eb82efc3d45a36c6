/**
 * The permessage-deflate codec on `node:zlib`, which Node, Deno and Bun all ship. The core keeps
 * messages in order; this codec keeps each direction of each connection serial (the sliding
 * window carries over from one message to the next).
 *
 * Two ways to run a message through a zlib stream:
 * - At once, on the calling thread, through the stream's native handle (`writeSync`, what
 *   node:zlib's own `*Sync` functions use inside, on all three runtimes), when nothing else is
 *   pending on that stream: compressing a message of at most `syncCompressLimit` bytes (16 KiB),
 *   and inflating until the output passes `syncInflateLimit` bytes (256 KiB; the rest of the
 *   input then goes the other way, so a small zip bomb does not hold the thread). No thread hop,
 *   no promise: on Node and Bun a hop to zlib's thread pool costs more than compressing a small
 *   message. Larger messages go to the pool, which costs more CPU time but runs beside the
 *   calling thread (bench/NOTES.md, Adapters).
 * - Otherwise asynchronously, as a stream write (on Node and Bun in zlib's thread pool), with a
 *   bound on the jobs running at once across all connections (as `ws` does with its
 *   `concurrencyLimit`).
 * Deno's node:zlib does its asynchronous work on the calling thread too, so there both limits
 * default to none. Where the native handle is missing, everything takes the second way.
 *
 * It is outside adapters/shared because node:zlib is a runtime API. It is loaded on first use
 * (a dynamic import): the shared layer stays loadable where there is no node:zlib, and a
 * connection that never compresses a message never loads it nor allocates a zlib stream.
 *
 * Zip bombs: output comes in chunks of `chunkSize` bytes (16 KiB); the running size is checked
 * after each chunk, and the stream is destroyed as soon as it passes the limit, so at most one
 * chunk beyond the limit is ever held and no more input is inflated.
 */
import type * as Zlib from "node:zlib";
import { concatBytes } from "../../core/bytes.ts";
import {
  type ClientExtensionFactory,
  type Compressor,
  type CompressorOptions,
  DecompressedSizeError,
  type DeflateCodec,
  type Decompressor,
  type DecompressorOptions,
  PERMESSAGE_DEFLATE,
  type PerMessageDeflateOptions,
  perMessageDeflateClient,
  perMessageDeflateServer,
  type ServerExtensionFactory,
} from "../../core/mod.ts";

export interface ZlibCodecOptions {
  /** Compression and decompression jobs running at once, over all connections using this codec. Default 10. */
  concurrencyLimit?: number;
  /** Bytes of output per zlib step; the inflated size is checked after each. Default 16 KiB. */
  chunkSize?: number;
  /**
   * Messages up to this many bytes are compressed at once, on the calling thread; larger ones in
   * zlib's thread pool. 0: never at once. Default 16 KiB (on Deno, Infinity). A higher limit
   * costs less CPU time per message, but holds the calling thread longer and leaves the other
   * cores idle.
   */
  syncCompressLimit?: number;
  /**
   * A message is inflated at once, on the calling thread, until its output passes this many
   * bytes; the rest in zlib's thread pool. 0: never at once. Default 256 KiB (on Deno, Infinity).
   */
  syncInflateLimit?: number;
}

/** Counters, for tests and monitoring. */
export interface ZlibCodecStats {
  /** Jobs running now. */
  running: number;
  /** Jobs waiting for a free slot. */
  queued: number;
  /** Most jobs ever running at once. */
  peak: number;
  /** zlib streams allocated and not yet freed. */
  streams: number;
}

export interface ZlibCodec extends DeflateCodec {
  readonly stats: ZlibCodecStats;
}

const DEFAULT_CONCURRENCY = 10;
const DEFAULT_CHUNK_SIZE = 16 * 1024;
/** Deno's node:zlib runs its "asynchronous" jobs on the calling thread: nothing to gain from them. */
const SYNC_ALWAYS = "Deno" in globalThis;
const DEFAULT_SYNC_COMPRESS_LIMIT = SYNC_ALWAYS ? Infinity : 16 * 1024;
const DEFAULT_SYNC_INFLATE_LIMIT = SYNC_ALWAYS ? Infinity : 256 * 1024;
/** Inputs up to this size are joined with the 4-byte tail and written once (one zlib job). */
const JOIN_MAX = 64 * 1024;

// ---- node:zlib, loaded once, on first use ----------------------------------------------------

type ZlibModule = typeof Zlib;
let zlib: ZlibModule | null = null;
let loading: Promise<ZlibModule> | null = null;

function loadZlib(): Promise<ZlibModule> {
  loading ??= import("node:zlib").then((m) => (zlib = ((m as { default?: ZlibModule }).default ?? m) as ZlibModule));
  return loading;
}

// ---- The limiter ---------------------------------------------------------------------------

/** Runs at most `limit` jobs at once; the others wait in FIFO order. */
class Limiter {
  running = 0;
  peak = 0;
  private readonly limit: number;
  private waiting: (() => void)[] = [];
  private head = 0;

  constructor(limit: number) {
    this.limit = limit;
  }

  get queued(): number {
    return this.waiting.length - this.head;
  }

  run<T>(job: () => Promise<T>): Promise<T> {
    if (this.running < this.limit) {
      this.running++;
      return this.start(job);
    }
    // The slot is handed over by `release`: `running` stays as it is.
    return new Promise<void>((resolve) => this.waiting.push(resolve)).then(() => this.start(job));
  }

  private start<T>(job: () => Promise<T>): Promise<T> {
    if (this.running > this.peak) this.peak = this.running;
    let result: Promise<T>;
    try {
      result = job();
    } catch (error) {
      result = Promise.reject(error);
    }
    result.then(this.release, this.release);
    return result;
  }

  private readonly release = (): void => {
    if (this.head < this.waiting.length) {
      const next = this.waiting[this.head];
      this.waiting[this.head++] = undefined!;
      if (this.head > 1024 && this.head * 2 > this.waiting.length) {
        this.waiting = this.waiting.slice(this.head);
        this.head = 0;
      }
      next();
    } else {
      this.running--;
    }
  };
}

// ---- One zlib stream, one job at a time ------------------------------------------------------

type ZlibStream = Zlib.DeflateRaw | Zlib.InflateRaw;

/**
 * What the synchronous way uses of a node:zlib stream, as node:zlib's own `*Sync` functions do:
 * its native handle's `writeSync(flush, in, inOffset, inLength, out, outOffset, outLength)`,
 * which leaves [output space left, input left] in the stream's `_writeState`; a zlib error is
 * put at once under the stream's `kError` symbol (Node and Bun also destroy the stream at once,
 * Deno a tick later). Not a documented API: it is looked for on each new stream, and without all
 * of it every job is asynchronous.
 */
interface NativeZlib {
  readonly handle: {
    writeSync(flush: number, input: Uint8Array, inOffset: number, inLength: number, out: Uint8Array, outOffset: number, outLength: number): void;
  };
  readonly state: Uint32Array;
}

/** node:zlib's `kError` symbol, found on the first stream; null if it has none. */
let kError: symbol | null | undefined;

function nativeOf(stream: ZlibStream): NativeZlib | null {
  const s = stream as unknown as { _handle?: NativeZlib["handle"] | null; _writeState?: unknown };
  const handle = s._handle;
  const state = s._writeState;
  if (handle == null || typeof handle.writeSync !== "function") return null;
  if (!(state instanceof Uint32Array) || state.length < 2) return null;
  kError ??= Object.getOwnPropertySymbols(stream).find((k) => k.description === "kError") ?? null;
  if (kError === null || !(kError in stream)) return null;
  return { handle, state };
}

/**
 * Which way this runtime's node:zlib lets the codec run a job on the calling thread: "native"
 * when a fresh stream has everything `nativeOf` looks for (the one probe of node:zlib's private
 * internals), "stream" when every job has to go through the stream's asynchronous writes.
 */
export async function zlibSyncPath(): Promise<"native" | "stream"> {
  const z = await loadZlib();
  const stream = z.createDeflateRaw();
  try {
    return nativeOf(stream) === null ? "stream" : "native";
  } finally {
    stream.close();
  }
}

/** The zlib error a synchronous write left on `stream`, if any. */
function nativeError(stream: ZlibStream): unknown {
  const error = (stream as unknown as Record<symbol, unknown>)[kError!];
  if (error != null) return error;
  return stream.destroyed ? (stream.errored ?? closedError()) : null;
}

/** zlib.h's Z_SYNC_FLUSH (RFC 7692 §7.2.1: every message ends byte-aligned, with 00 00 ff ff). */
const Z_SYNC_FLUSH = 2;
const closedError = () => new Error("the permessage-deflate codec was closed");
const EMPTY_BLOCK = Uint8Array.of(0x00, 0x00, 0x00, 0xff, 0xff);
/** RFC 7692 §7.2.2: what the core appends to every compressed message before inflating it. */
const TAIL = Uint8Array.of(0x00, 0x00, 0xff, 0xff);

/**
 * What may follow the end of a message's DEFLATE stream, given the bytes left (`left`) and the
 * first of them (`next`): the tail the core appended (RFC 7692 §7.2.2), after at most the one
 * 0x00 octet of §7.2.3.4's example (the header of an empty stored block, which the tail ends).
 * Anything else is not DEFLATE data that §7.2.2 can inflate: the core fails the connection with
 * 1007 (RFC 6455 §7.4.1), as ws does.
 */
function onlyTailAfterEnd(left: number, next: number): boolean {
  return left <= TAIL.length || (left === TAIL.length + 1 && next === 0x00);
}

function afterEndError(): Error {
  return new Error("data after the end of the DEFLATE stream");
}

/** The byte at `offset` in `chunks` taken as one. */
function byteAt(chunks: readonly Uint8Array[], offset: number): number {
  for (const chunk of chunks) {
    if (offset < chunk.length) return chunk[offset];
    offset -= chunk.length;
  }
  return -1;
}

/** What a compressor and a decompressor share: the per-direction queue, the stream, the job. */
abstract class Engine<S extends ZlibStream> {
  protected stream: S | null = null;
  /** The stream's native handle, when the synchronous way is open to it. */
  private native: NativeZlib | null = null;
  private tail: Promise<unknown> = Promise.resolve();
  /** Asynchronous jobs queued or running: the synchronous way waits until there are none. */
  private pending = 0;
  private closed = false;
  private failure: unknown = null; // the error that broke the stream, for every later call
  // The running job.
  protected chunks: Uint8Array[] = [];
  protected size = 0;
  private settle: ((error?: unknown) => void) | null = null;
  protected readonly codec: CodecState;

  constructor(codec: CodecState) {
    this.codec = codec;
  }

  /**
   * Queues `job` behind this engine's earlier jobs, then behind the codec-wide limit. A job
   * given as bytes is output made without zlib, delivered in its turn.
   */
  protected enqueue(job: ((stream: S) => void) | Uint8Array): Promise<Uint8Array> {
    this.pending++;
    const result = this.tail.then(() => this.codec.limiter.run(() => this.run(job)));
    this.tail = result.then(this.done, this.done);
    return result;
  }

  private readonly done = (): void => {
    this.pending--;
  };

  private async run(job: ((stream: S) => void) | Uint8Array): Promise<Uint8Array> {
    if (this.closed) throw closedError();
    if (this.failure !== null) throw this.failure;
    if (job instanceof Uint8Array) return job.slice();
    if (zlib === null) await loadZlib();
    if (this.closed) throw closedError();
    const stream = (this.stream ??= this.open());
    return new Promise<Uint8Array>((resolve, reject) => {
      this.chunks = [];
      this.size = 0;
      this.settle = (error?: unknown) => {
        this.settle = null;
        const chunks = this.chunks;
        this.chunks = [];
        if (error !== undefined) {
          this.failure ??= error;
          this.free();
          reject(error);
          return;
        }
        this.finished(stream);
        resolve(join(chunks, this.size));
      };
      try {
        job(stream);
      } catch (error) {
        this.settle?.(error);
      }
    });
  }

  /**
   * The stream's native handle if a job may run at once: nothing queued before it, zlib loaded,
   * the engine neither closed nor broken.
   */
  protected nativeNow(): NativeZlib | null {
    if (this.pending !== 0 || this.closed || this.failure !== null || zlib === null) return null;
    if (this.stream === null) this.stream = this.open();
    return this.native;
  }

  /**
   * Runs `input` from `offset` through zlib on this thread (Z_SYNC_FLUSH), its output going to
   * `data()` one chunk at a time. Stops when all of it is used and its output is out, when the
   * stream has ended (a BFINAL block: zlib takes no more input, so some is left), or once the
   * output passes `budget` bytes while input is left. Returns how far the input was used. Throws
   * (the engine broken) on a zlib error or when `data()` failed the job.
   */
  protected writeNow(native: NativeZlib, input: Uint8Array, offset: number, budget: number): number {
    const out = (this.codec.scratch ??= new Uint8Array(this.codec.chunkSize));
    const state = native.state;
    let left = input.length - offset;
    const stream = this.stream!;
    for (;;) {
      native.handle.writeSync(Z_SYNC_FLUSH, input, offset, left, out, 0, out.length);
      const error = nativeError(stream);
      if (error !== null) this.breakNow(error);
      const outLeft = state[0];
      const inLeft = state[1];
      offset += left - inLeft;
      left = inLeft;
      if (outLeft !== out.length) {
        this.data(out.slice(0, out.length - outLeft));
        if (this.failure !== null) this.breakNow(this.failure); // over the size limit
      }
      if (outLeft !== 0) return offset; // all the output is out: done, or ended with input left
      if (left !== 0 && this.size > budget) return offset;
    }
  }

  /** The synchronous job failed: the engine is broken, for this call and every later one. */
  protected breakNow(error: unknown): never {
    this.chunks = [];
    this.failure ??= error;
    this.free();
    throw error;
  }

  /** Takes the output gathered by `writeNow`. */
  protected takeOutput(): Uint8Array {
    const out = join(this.chunks, this.size);
    this.chunks = [];
    this.size = 0;
    return out;
  }

  /** The job's last write is done: all its output has been emitted, or the stream broke. */
  protected readonly written = (error?: Error | null): void => {
    const stream = this.stream;
    // Deno reports a zlib error after this callback; the stream is already destroyed here.
    if (error || stream === null || stream.destroyed) {
      this.fail(error ?? (stream as { errored?: unknown } | null)?.errored ?? closedError());
    } else {
      this.settle?.();
    }
  };

  protected fail(error: unknown): void {
    if (this.settle !== null) this.settle(error);
    else {
      this.failure ??= error;
      this.free();
    }
  }

  /** Creates the stream, with listeners that feed the running job. */
  protected open(): S {
    const stream = this.create(zlib!);
    this.codec.stats.streams++;
    // A stream that was freed (BFINAL, size limit, close) has nothing more to say to this engine.
    stream.on("data", (chunk: Uint8Array) => this.stream === stream && this.data(chunk));
    stream.on("error", (error: Error) => this.stream === stream && this.fail(error));
    this.native = this.syncLimit() > 0 ? nativeOf(stream) : null;
    return stream;
  }

  protected data(chunk: Uint8Array): void {
    this.chunks.push(chunk);
    this.size += chunk.length;
  }

  /** Destroys the stream, if any; a later job opens a new one unless the engine failed or closed. */
  protected free(): void {
    const stream = this.stream;
    if (stream === null) return;
    this.stream = null;
    this.native = null;
    this.codec.stats.streams--;
    stream.destroy();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.settle !== null) this.settle(closedError());
    this.free();
  }

  /** The codec's limit for this direction's synchronous way. */
  protected abstract syncLimit(): number;
  protected abstract create(z: ZlibModule): S;
  /** After a successful job: reset the window if asked to, or drop an ended stream. */
  protected abstract finished(stream: S): void;
}

/** The chunks as one plain Uint8Array (not a Buffer, like every other message payload). */
function join(chunks: readonly Uint8Array[], size: number): Uint8Array {
  if (chunks.length === 1) {
    const c = chunks[0];
    return new Uint8Array(c.buffer, c.byteOffset, c.byteLength);
  }
  return concatBytes(chunks, size);
}

class ZlibCompressor extends Engine<Zlib.DeflateRaw> implements Compressor {
  private readonly options: CompressorOptions;

  constructor(codec: CodecState, options: CompressorOptions) {
    super(codec);
    this.options = options;
  }

  compress(data: Uint8Array): Uint8Array | Promise<Uint8Array> {
    // An empty message is an empty stored block. zlib would write nothing for it right after a
    // flush (and an empty write never reaches zlib); every message ends byte-aligned, so the
    // block can simply be written here.
    if (data.length === 0) return this.enqueue(EMPTY_BLOCK);
    const native = data.length <= this.codec.syncCompressLimit ? this.nativeNow() : null;
    if (native !== null) {
      this.writeNow(native, data, 0, Infinity);
      this.finished(this.stream!);
      return this.takeOutput();
    }
    // Each write is compressed and flushed in one zlib job (flush: Z_SYNC_FLUSH below).
    return this.enqueue((stream) => stream.write(data, this.written));
  }

  protected syncLimit(): number {
    return this.codec.syncCompressLimit;
  }

  protected create(z: ZlibModule): Zlib.DeflateRaw {
    const o = this.options;
    const c = z.constants;
    return z.createDeflateRaw({
      windowBits: o.windowBits,
      memLevel: o.memLevel,
      level: o.level,
      strategy: o.huffmanOnly ? c.Z_HUFFMAN_ONLY : c.Z_DEFAULT_STRATEGY,
      flush: c.Z_SYNC_FLUSH, // RFC 7692 §7.2.1: every message ends byte-aligned, with 00 00 ff ff
      chunkSize: this.codec.chunkSize,
    });
  }

  protected finished(stream: Zlib.DeflateRaw): void {
    if (this.options.resetAfterMessage) stream.reset();
  }
}

class ZlibDecompressor extends Engine<Zlib.InflateRaw> implements Decompressor {
  private readonly options: DecompressorOptions;
  private maxSize = Infinity;
  /** What the stream's `bytesWritten` (input used) is to be once the running job is done. */
  private expected = 0;
  /** The stream reached its end (a BFINAL block) in a synchronous job. */
  private ended = false;

  constructor(codec: CodecState, options: DecompressorOptions) {
    super(codec);
    this.options = options;
  }

  decompress(chunks: readonly Uint8Array[], maxSize: number): Uint8Array | Promise<Uint8Array> {
    let total = 0;
    for (const c of chunks) total += c.length;
    const native = this.nativeNow();
    if (native !== null) return this.decompressNow(native, chunks, total, maxSize);
    return this.enqueue((stream) => this.write(stream, chunks, total, maxSize, [], 0));
  }

  /** Inflates on this thread while the output stays under the codec's limit; the rest goes the asynchronous way. */
  private decompressNow(native: NativeZlib, chunks: readonly Uint8Array[], total: number, maxSize: number, fresh = false): Uint8Array | Promise<Uint8Array> {
    this.maxSize = maxSize;
    this.ended = false;
    this.chunks = [];
    this.size = 0;
    const budget = this.codec.syncInflateLimit;
    let left = total;
    for (let i = 0; i < chunks.length; i++) {
      const chunk = chunks[i];
      const used = this.writeNow(native, chunk, 0, budget);
      left -= used;
      if (used === chunk.length) continue;
      if (this.ended) {
        if (left === total && this.size === 0 && !fresh) {
          // The previous message ended the stream exactly at its end, so zlib takes none of this
          // one: it starts on a new stream (see `endedBefore`).
          this.free();
          return this.decompressNow(this.nativeNow()!, chunks, total, maxSize, true);
        }
        if (!onlyTailAfterEnd(left, chunk[used])) this.breakNow(afterEndError());
        break;
      }
      // Past the budget: the rest of this chunk and the chunks after it, asynchronously, after
      // what was inflated so far.
      const rest = [chunk.subarray(used), ...chunks.slice(i + 1)];
      const restSize = left;
      const before = this.chunks;
      const size = this.size;
      this.chunks = [];
      this.size = 0;
      return this.enqueue((stream) => this.write(stream, rest, restSize, maxSize, before, size));
    }
    if (this.ended) this.free();
    else if (this.options.resetAfterMessage) this.stream!.reset();
    return this.takeOutput();
  }

  /**
   * RFC 7692 §7.2.3.4 lets a sender end a message with a BFINAL=1 block, which ends the DEFLATE
   * stream; the next message then starts on a new stream, with an empty window (this codec's
   * choice, as the `Decompressor` contract says, rather than failing: a message that refers to
   * the previous window, which §7.2.2 would require with context takeover, still fails, as data
   * that does not inflate, 1007). zlib notices the end only when it leaves input unused: when
   * the stream ended exactly at the end of the appended tail, on the next message, which it
   * does not take at all.
   */
  private endedBefore(stream: Zlib.InflateRaw, start: number, before: Uint8Array[], total: number): boolean {
    return before.length === 0 && total !== 0 && this.size === 0 && this.stream === stream && !stream.destroyed && stream.bytesWritten === start;
  }

  /** The asynchronous job: writes `chunks` after output `before` (of `size` bytes) already inflated. */
  private write(stream: Zlib.InflateRaw, chunks: readonly Uint8Array[], total: number, maxSize: number, before: Uint8Array[], size: number, fresh = false): void {
    this.maxSize = maxSize;
    this.chunks = before;
    this.size = size;
    const start = stream.bytesWritten;
    this.expected = start + total;
    const written = (error?: Error | null) => {
      if (!error && !fresh && this.endedBefore(stream, start, before, total)) {
        this.free();
        this.write((this.stream = this.open()), chunks, total, maxSize, [], 0, true);
      } else if (!error && this.stream === stream && !stream.destroyed && !onlyTailAfterEnd(this.expected - stream.bytesWritten, byteAt(chunks, stream.bytesWritten - start))) {
        this.fail(afterEndError());
      } else {
        this.written(error);
      }
    };
    if (total <= JOIN_MAX && chunks.length > 1) {
      stream.write(join(chunks, total), written); // one zlib job instead of two
      return;
    }
    for (let i = 0; i < chunks.length - 1; i++) stream.write(chunks[i]);
    stream.write(chunks[chunks.length - 1], written);
  }

  protected override writeNow(native: NativeZlib, input: Uint8Array, offset: number, budget: number): number {
    const used = super.writeNow(native, input, offset, budget);
    // All the output is out yet input is left, and not for the budget: zlib reached the end of
    // the DEFLATE stream and takes no more.
    if (used !== input.length && native.state[0] !== 0) this.ended = true;
    return used;
  }

  protected override data(chunk: Uint8Array): void {
    super.data(chunk);
    // Checked on every chunk: fail (and stop inflating) before holding more than one chunk too many.
    if (this.size > this.maxSize) this.fail(new DecompressedSizeError(this.maxSize, this.size));
  }

  protected syncLimit(): number {
    return this.codec.syncInflateLimit;
  }

  protected create(z: ZlibModule): Zlib.InflateRaw {
    return z.createInflateRaw({
      windowBits: this.options.windowBits,
      flush: z.constants.Z_SYNC_FLUSH,
      chunkSize: this.codec.chunkSize,
    });
  }

  protected finished(): void {
    const stream = this.stream; // a new one if the job started over (`endedBefore`)
    if (stream === null) return;
    if (stream.bytesWritten !== this.expected) {
      // RFC 7692 §7.2.3.4: the message ended with a BFINAL=1 block. zlib ignores what follows the
      // end of a DEFLATE stream (here the appended tail), and would ignore every later message:
      // the next one starts on a new stream, with an empty window.
      this.free();
    } else if (this.options.resetAfterMessage) {
      stream.reset();
    }
  }
}

// ---- The codec -----------------------------------------------------------------------------

interface CodecState {
  readonly limiter: Limiter;
  readonly chunkSize: number;
  readonly syncCompressLimit: number;
  readonly syncInflateLimit: number;
  /** Output space of the synchronous way (one job at a time on this thread): `chunkSize` bytes, made on first use. */
  scratch: Uint8Array | null;
  readonly stats: { streams: number };
}

/** A node:zlib codec with its own concurrency limit, shared by every connection given it. */
export function createZlibCodec(options: ZlibCodecOptions = {}): ZlibCodec {
  const limit = options.concurrencyLimit ?? DEFAULT_CONCURRENCY;
  const chunkSize = options.chunkSize ?? DEFAULT_CHUNK_SIZE;
  const syncCompressLimit = options.syncCompressLimit ?? DEFAULT_SYNC_COMPRESS_LIMIT;
  const syncInflateLimit = options.syncInflateLimit ?? DEFAULT_SYNC_INFLATE_LIMIT;
  if (!(Number.isInteger(limit) && limit >= 1)) throw new RangeError("concurrencyLimit must be an integer, 1 or more");
  if (!(Number.isInteger(chunkSize) && chunkSize >= 64)) throw new RangeError("chunkSize must be an integer, 64 or more");
  if (!(syncCompressLimit >= 0)) throw new RangeError("syncCompressLimit must be a number of bytes, 0 or more");
  if (!(syncInflateLimit >= 0)) throw new RangeError("syncInflateLimit must be a number of bytes, 0 or more");
  const limiter = new Limiter(limit);
  const counters = { streams: 0 };
  const state: CodecState = { limiter, chunkSize, syncCompressLimit, syncInflateLimit, scratch: null, stats: counters };
  return {
    createCompressor: (o) => new ZlibCompressor(state, o),
    createDecompressor: (o) => new ZlibDecompressor(state, o),
    get stats(): ZlibCodecStats {
      return { running: limiter.running, queued: limiter.queued, peak: limiter.peak, streams: counters.streams };
    },
  };
}

/** The codec every connection uses unless told otherwise: at most 10 zlib jobs at once, process-wide. */
export const zlibCodec: ZlibCodec = createZlibCodec();
