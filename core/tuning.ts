/**
 * Speed choices that depend on the JavaScript engine, as one immutable value a connection is
 * given in its options (`tuning`) and reads into its own fields when it is constructed. The core
 * cannot tell engines apart, so its default (`PORTABLE_TUNING`) is the choice that is safe and
 * reasonably fast everywhere; each runtime adapter passes the tuning for its engine.
 */
import { withDefaults } from "./defaults.ts";
import { WebSocketError } from "./errors.ts";

/** Turns ASCII bytes `bytes[start:end]` into a string without a view of them. */
export type AsciiDecoder = (bytes: Uint8Array, start: number, end: number) => string;

/** Where a connection gets the small buffers it writes frames into. */
export interface ByteAllocator {
  /**
   * A zero-filled buffer of `length` bytes. It may be a piece of an `ArrayBuffer` shared with
   * other buffers of this allocator: the connection's output then holds such pieces.
   */
  allocate(length: number): Uint8Array;
}

export interface Tuning {
  /**
   * Bytes per word of the masking loops on long ranges (RFC 6455 §5.3): 8 goes through a
   * BigUint64Array, fast on V8 and very slow on JavaScriptCore, which allocates a BigInt per element.
   */
  readonly maskWordSize: 4 | 8;
  /**
   * Received payload pieces up to this many bytes are handed on as copies (unmasked on the way)
   * instead of as views into the received chunk; 0: never. On JavaScriptCore a view of a chunk
   * costs more than a copy of a short payload; on V8 the view is the cheaper.
   */
  readonly payloadCopyLimit: number;
  /** Decodes a short ASCII text message from a scratch buffer (e.g. Node's `Buffer#latin1Slice`); null: TextDecoder. */
  readonly asciiDecoder: AsciiDecoder | null;
  /**
   * A text message in one piece up to this many bytes is decoded leniently and then checked for
   * U+FFFD, instead of by the fatal decoder: which is faster above 256 bytes depends on the runtime.
   */
  readonly lenientDecodeLimit: number;
  /**
   * Where frames and other small output buffers come from; null: each is a `new Uint8Array` of its
   * own. An allocator that pools (`SlabAllocator`) makes output chunks that share an ArrayBuffer:
   * whoever passes it must never transfer or detach a chunk's `buffer`.
   */
  readonly allocator: ByteAllocator | null;
}

/** The core's default: 32-bit masking words, views of received chunks, TextDecoder, no pooling. */
export const PORTABLE_TUNING: Tuning = Object.freeze({
  maskWordSize: 4,
  payloadCopyLimit: 0,
  asciiDecoder: null,
  lenientDecodeLimit: 256,
  allocator: null,
});

/** `PORTABLE_TUNING` with `choices` applied, checked and frozen. */
export function createTuning(choices: Partial<Tuning> = {}): Tuning {
  const tuning = withDefaults(PORTABLE_TUNING, choices);
  checkTuning(tuning);
  return Object.freeze(tuning);
}

/** Throws `ERR_INVALID_ARGUMENT` unless every choice in `tuning` is usable. */
export function checkTuning(tuning: Tuning): void {
  if (tuning.maskWordSize !== 4 && tuning.maskWordSize !== 8) invalid("maskWordSize must be 4 or 8", tuning.maskWordSize);
  if (!(tuning.payloadCopyLimit >= 0)) invalid("payloadCopyLimit must be a size in bytes", tuning.payloadCopyLimit);
  if (!(tuning.lenientDecodeLimit >= 0)) invalid("lenientDecodeLimit must be a size in bytes (or Infinity)", tuning.lenientDecodeLimit);
  if (tuning.asciiDecoder !== null && typeof tuning.asciiDecoder !== "function") invalid("asciiDecoder must be a function or null", tuning.asciiDecoder);
  if (tuning.allocator !== null && typeof tuning.allocator?.allocate !== "function") invalid("allocator must have allocate() or be null", tuning.allocator);
}

function invalid(what: string, value: unknown): never {
  throw new WebSocketError("ERR_INVALID_ARGUMENT", `tuning: ${what}, got ${String(value)}`);
}
