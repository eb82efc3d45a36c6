/**
 * The permessage-deflate codec on `node:zlib`, which Node, Deno and Bun all ship. None of them
 * offers a synchronous streaming flush, so every job is asynchronous; the core keeps messages in
 * order, and this codec keeps each direction of each connection serial (the sliding window
 * carries over from one message to the next) and bounds the jobs running at once across all
 * connections (as `ws` does with its `concurrencyLimit`).
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

const closedError = () => new Error("the permessage-deflate codec was closed");
const EMPTY_BLOCK = Uint8Array.of(0x00, 0x00, 0x00, 0xff, 0xff);

/** What a compressor and a decompressor share: the per-direction queue, the stream, the job. */
abstract class Engine<S extends ZlibStream> {
  protected stream: S | null = null;
  private tail: Promise<unknown> = Promise.resolve();
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
    const result = this.tail.then(() => this.codec.limiter.run(() => this.run(job)));
    this.tail = result.then(noop, noop);
    return result;
  }

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
  private open(): S {
    const stream = this.create(zlib!);
    this.codec.stats.streams++;
    // A stream that was freed (BFINAL, size limit, close) has nothing more to say to this engine.
    stream.on("data", (chunk: Uint8Array) => this.stream === stream && this.data(chunk));
    stream.on("error", (error: Error) => this.stream === stream && this.fail(error));
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
    this.codec.stats.streams--;
    stream.destroy();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.settle !== null) this.settle(closedError());
    this.free();
  }

  protected abstract create(z: ZlibModule): S;
  /** After a successful job: reset the window if asked to, or drop an ended stream. */
  protected abstract finished(stream: S): void;
}

function noop(): void {}

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

  compress(data: Uint8Array): Promise<Uint8Array> {
    // An empty message is an empty stored block. zlib would write nothing for it right after a
    // flush (and an empty write never reaches zlib); every message ends byte-aligned, so the
    // block can simply be written here.
    if (data.length === 0) return this.enqueue(EMPTY_BLOCK);
    // Each write is compressed and flushed in one zlib job (flush: Z_SYNC_FLUSH below).
    return this.enqueue((stream) => stream.write(data, this.written));
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
  private input = 0; // bytes written to the current stream

  constructor(codec: CodecState, options: DecompressorOptions) {
    super(codec);
    this.options = options;
  }

  decompress(chunks: readonly Uint8Array[], maxSize: number): Promise<Uint8Array> {
    return this.enqueue((stream) => {
      this.maxSize = maxSize;
      let total = 0;
      for (const c of chunks) total += c.length;
      this.input += total;
      if (total <= JOIN_MAX && chunks.length > 1) {
        stream.write(join(chunks, total), this.written); // one zlib job instead of two
        return;
      }
      for (let i = 0; i < chunks.length - 1; i++) stream.write(chunks[i]);
      stream.write(chunks[chunks.length - 1], this.written);
    });
  }

  protected override data(chunk: Uint8Array): void {
    super.data(chunk);
    // Checked on every chunk: fail (and stop inflating) before holding more than one chunk too many.
    if (this.size > this.maxSize) this.fail(new DecompressedSizeError(this.maxSize, this.size));
  }

  protected create(z: ZlibModule): Zlib.InflateRaw {
    this.input = 0;
    return z.createInflateRaw({
      windowBits: this.options.windowBits,
      flush: z.constants.Z_SYNC_FLUSH,
      chunkSize: this.codec.chunkSize,
    });
  }

  protected finished(stream: Zlib.InflateRaw): void {
    if (stream.bytesWritten !== this.input) {
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
  readonly stats: { streams: number };
}

/** A node:zlib codec with its own concurrency limit, shared by every connection given it. */
export function createZlibCodec(options: ZlibCodecOptions = {}): ZlibCodec {
  const limit = options.concurrencyLimit ?? DEFAULT_CONCURRENCY;
  const chunkSize = options.chunkSize ?? DEFAULT_CHUNK_SIZE;
  if (!(Number.isInteger(limit) && limit >= 1)) throw new RangeError("concurrencyLimit must be an integer, 1 or more");
  if (!(Number.isInteger(chunkSize) && chunkSize >= 64)) throw new RangeError("chunkSize must be an integer, 64 or more");
  const limiter = new Limiter(limit);
  const counters = { streams: 0 };
  const state: CodecState = { limiter, chunkSize, stats: counters };
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

// ---- The `perMessageDeflate` option of the server and the client ------------------------------

/** `perMessageDeflate: true` or options; false or absent: off. Adds nothing if `extensions` has it already. */
export function serverExtensions(
  extensions: ServerExtensionFactory[] | undefined,
  perMessageDeflate: boolean | PerMessageDeflateOptions | undefined,
): ServerExtensionFactory[] | undefined {
  if (!perMessageDeflate || extensions?.some((e) => e.name === PERMESSAGE_DEFLATE)) return extensions;
  const options = perMessageDeflate === true ? {} : perMessageDeflate;
  return [...(extensions ?? []), perMessageDeflateServer({ codec: zlibCodec, ...options })];
}

/** `perMessageDeflate` true (the default) or options; false: off. Adds nothing if `extensions` has it already. */
export function clientExtensions(
  extensions: ClientExtensionFactory[] | undefined,
  perMessageDeflate: boolean | PerMessageDeflateOptions | undefined,
): ClientExtensionFactory[] | undefined {
  if (perMessageDeflate === false || extensions?.some((e) => e.name === PERMESSAGE_DEFLATE)) return extensions;
  const options = perMessageDeflate === true || perMessageDeflate === undefined ? {} : perMessageDeflate;
  return [...(extensions ?? []), perMessageDeflateClient({ codec: zlibCodec, ...options })];
}
