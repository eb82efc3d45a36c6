/**
 * The core's speed choices for the JavaScript engine this runs on: JavaScriptCore (Bun) or V8
 * (Node, Deno). A pure function of the runtime, computed once; the shared server and client pass
 * it to every connection they create, so every adapter (streams included) runs with it.
 */
import { Buffer } from "node:buffer";
import { SlabAllocator } from "../../core/bytes.ts";
import { createTuning, type Tuning } from "../../core/tuning.ts";

type Latin1Slice = (this: Uint8Array, start: number, end: number) => string;

/** Which engine family a tuning is for. */
export type Engine = "v8" | "deno" | "jsc";

let cached: Tuning | undefined;

/** The tuning for the engine this runs on; the same frozen object on every call. */
export function engineTuning(): Tuning {
  return (cached ??= tuningFor(currentEngine()));
}

export function currentEngine(): Engine {
  if ((globalThis as { Bun?: unknown }).Bun !== undefined) return "jsc";
  if ((globalThis as { Deno?: unknown }).Deno !== undefined) return "deno";
  return "v8";
}

/** The tuning for `engine`, made anew (each call gets an allocator of its own). */
export function tuningFor(engine: Engine): Tuning {
  // Node's Buffer (Deno and Bun have it too) decodes a range of any Uint8Array without a view of
  // it: the core unmasks short ASCII text into a scratch buffer for it, cheaper than a view and
  // TextDecoder on every engine.
  const latin1Slice = (Buffer.prototype as unknown as { latin1Slice?: Latin1Slice }).latin1Slice;
  const asciiDecoder = typeof latin1Slice === "function"
    ? (bytes: Uint8Array, start: number, end: number) => latin1Slice.call(bytes, start, end)
    : null;
  if (engine === "jsc") {
    // JavaScriptCore: a view into a received chunk costs more than a copy of a short payload, and
    // TextDecoder reads the copy faster; 64-bit masking words and slab views are slow there.
    return createTuning({ asciiDecoder, payloadCopyLimit: 128 });
  }
  // V8 masks 64-bit words faster than 32-bit ones, and allocates small buffers faster from slabs.
  // Deno's lenient UTF-8 decoder is faster than its fatal one at any size.
  return createTuning({
    asciiDecoder,
    maskWordSize: 8,
    allocator: new SlabAllocator(),
    lenientDecodeLimit: engine === "deno" ? Infinity : undefined,
  });
}
