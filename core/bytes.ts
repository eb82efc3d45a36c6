/** Byte helpers shared by the core. */
import type { ByteAllocator } from "./tuning.ts";

export const textEncoder = new TextEncoder();

/**
 * The empty buffer, shared inside the core: nothing is ever written to it. It never goes to an
 * application (a transfer would detach it for every connection): what is delivered is made anew.
 */
export const EMPTY_BYTES: Uint8Array = new Uint8Array(0);

/**
 * Small buffers a connection creates (frames) can be cut from slabs, as Node's
 * `Buffer.allocUnsafe` does from its pool: on V8 every `new Uint8Array(n)` above 64 bytes (all of
 * them on Deno) allocates its own backing store, where a view of a slab is cheap; JavaScriptCore
 * allocates small arrays faster than it creates views (bench/NOTES.md). So pooling is an
 * allocator in a connection's tuning (core/tuning.ts), which the adapters for V8 runtimes pass.
 */
const SLAB_SIZE = 16384;
/** Larger buffers are allocated on their own (and the tail a slab wastes stays under this). */
const POOLED_MAX = 2048;

/** A slab's ArrayBuffer, a class of its own so that a piece of one can be told from other buffers. */
class Slab extends ArrayBuffer {}

/**
 * Cuts small buffers from slabs of its own. Every buffer it returns up to 2 KiB may share its
 * `ArrayBuffer` with others it returned: read it through its own `byteOffset` and `byteLength`,
 * and never transfer or detach its `buffer`.
 */
export class SlabAllocator implements ByteAllocator {
  private slab: ArrayBuffer | null = null;
  private offset = SLAB_SIZE;

  allocate(length: number): Uint8Array {
    if (length > POOLED_MAX) return new Uint8Array(length);
    let offset = this.offset;
    if (offset + length > SLAB_SIZE) {
      this.slab = new Slab(SLAB_SIZE);
      offset = 0;
    }
    // 8-byte aligned, like a buffer of its own: masking takes word views at the same offsets.
    this.offset = (offset + length + 7) & ~7;
    try {
      return new Uint8Array(this.slab!, offset, length);
    } catch {
      // The slab was detached (someone transferred a piece's buffer despite the rule): start a new one.
      this.slab = new Slab(SLAB_SIZE);
      this.offset = (length + 7) & ~7;
      return new Uint8Array(this.slab, 0, length);
    }
  }
}

/** A zero-filled buffer of `length` bytes, from `allocator` if there is one, else of its own. */
export function allocateBytes(length: number, allocator: ByteAllocator | null): Uint8Array {
  return allocator === null ? new Uint8Array(length) : allocator.allocate(length);
}

/** The bytes are a piece of a `SlabAllocator`'s slab. */
export function isSlabPiece(bytes: Uint8Array): boolean {
  return bytes.buffer instanceof Slab;
}

/**
 * `bytes` if they have an ArrayBuffer of their own or of their caller's, or a copy if they are a
 * piece of a slab: for bytes that leave the library's hands for good (a user's stream, a cached
 * prepared message), where a transfer of the buffer or a long life would reach other pieces.
 */
export function unpooled(bytes: Uint8Array): Uint8Array {
  return bytes.buffer instanceof Slab ? bytes.slice() : bytes;
}

/** Strings up to this many UTF-16 units are encoded through `encodeScratch` (3 bytes per unit at most). */
const SHORT_STRING_MAX = 1024;
const encodeScratch = new Uint8Array(3 * SHORT_STRING_MAX);

/**
 * `text` as UTF-8 in a buffer the caller owns (from `allocator` if there is one). Short strings go
 * through `encodeInto()` and a copy, which on V8 costs a fraction of `encode()`'s fixed overhead.
 */
export function encodeUtf8(text: string, allocator: ByteAllocator | null = null): Uint8Array {
  if (text.length > SHORT_STRING_MAX) return textEncoder.encode(text);
  const { written } = textEncoder.encodeInto(text, encodeScratch);
  return copyPrefix(encodeScratch, written, allocator);
}

/** `source[0:length]` in a buffer of its own (from `allocator` if there is one). */
export function copyPrefix(source: Uint8Array, length: number, allocator: ByteAllocator | null = null): Uint8Array {
  // Without an allocator, slice() is the copy: on Bun the view that set() needs costs more.
  if (allocator === null) return source.slice(0, length);
  const bytes = allocator.allocate(length);
  bytes.set(source.subarray(0, length));
  return bytes;
}

/** Concatenates `chunks` (of `total` bytes, if known) into one buffer; a single chunk is returned as is. */
export function concatBytes(chunks: readonly Uint8Array[], total = -1): Uint8Array {
  if (chunks.length === 1) return chunks[0];
  if (total < 0) {
    total = 0;
    for (const chunk of chunks) total += chunk.length;
  }
  const out = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.length;
  }
  return out;
}

/** Pieces kept by reference before they are packed into one growing buffer. */
const MAX_LOOSE_PIECES = 32;

/**
 * Collects the pieces of a message. A few pieces are kept as views (no copy); many small ones
 * (a message sent as thousands of tiny fragments) are packed into one buffer that doubles as
 * it grows, so memory stays proportional to the bytes held and the copying stays linear.
 */
export class ByteAccumulator {
  size = 0;
  private pieces: Uint8Array[] = [];
  private packed: Uint8Array | null = null;

  push(piece: Uint8Array): void {
    if (piece.length === 0) return;
    const size = this.size + piece.length;
    if (this.packed) {
      if (size > this.packed.length) {
        const grown = new Uint8Array(Math.max(size, this.packed.length * 2));
        grown.set(this.packed.subarray(0, this.size));
        this.packed = grown;
      }
      this.packed.set(piece, this.size);
    } else if (this.pieces.length < MAX_LOOSE_PIECES) {
      this.pieces.push(piece);
    } else {
      const packed = new Uint8Array(Math.max(size * 2, 4096));
      let offset = 0;
      for (const p of this.pieces) {
        packed.set(p, offset);
        offset += p.length;
      }
      packed.set(piece, offset);
      this.packed = packed;
      this.pieces = [];
    }
    this.size = size;
  }

  /** Everything pushed, as one buffer; the accumulator is empty afterwards. */
  take(): Uint8Array {
    const out = this.packed
      ? this.packed.subarray(0, this.size)
      : this.pieces.length === 0
      ? new Uint8Array(0)
      : concatBytes(this.pieces, this.size);
    this.pieces = [];
    this.packed = null;
    this.size = 0;
    return out;
  }
}

/**
 * Runs steps in order. A step runs at once when nothing is pending, or when it is queued by the
 * step now running (it belongs at that step's place); once an asynchronous result is awaited,
 * later steps wait behind it. `onSettled` is called after each deferred step, so that the owner
 * can tell its user there is something new.
 */
export class SerialQueue {
  private tail: Promise<void> | null = null;
  private pending = 0;
  private running = false;
  private readonly onSettled: () => void;
  private readonly onCrash: (error: unknown) => void;

  constructor(onSettled: () => void, onCrash: (error: unknown) => void) {
    this.onSettled = onSettled;
    this.onCrash = onCrash;
  }

  /** A step queued now would run at once. */
  get immediate(): boolean {
    return this.pending === 0 || this.running;
  }

  /** Runs `step` after every step queued before it. */
  run(step: () => void): void {
    if (this.immediate) step();
    else this.chain(() => this.within(step));
  }

  /**
   * Passes `value` to `then` in order. A promise starts its work at once; only the
   * delivery of its result waits its turn.
   */
  await<T>(value: T | Promise<T>, then: (value: T) => void, onError: (error: unknown) => void): void {
    if (this.immediate && !isPromise(value)) {
      then(value as T);
      return;
    }
    const settled = Promise.resolve(value);
    settled.catch(() => {}); // handled in its turn below
    this.chain(() =>
      settled.then(
        (result) => this.within(() => then(result)),
        (error) => this.within(() => onError(error)),
      )
    );
  }

  private within(step: () => void): void {
    this.running = true;
    try {
      step();
    } finally {
      this.running = false;
    }
  }

  private chain(step: () => void | Promise<void>): void {
    this.pending++;
    this.tail = (this.tail ?? Promise.resolve())
      .then(step)
      .catch(this.onCrash)
      .then(() => {
        if (--this.pending === 0) this.tail = null;
        this.onSettled();
      });
  }
}

function isPromise(value: unknown): value is Promise<unknown> {
  return typeof (value as { then?: unknown } | null)?.then === "function";
}
