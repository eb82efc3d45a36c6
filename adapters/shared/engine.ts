/**
 * The core's speed settings that depend on the JavaScript engine, chosen in one place. The core
 * cannot tell engines apart, so it keeps safe defaults; every runtime adapter calls
 * `useEngineSettings()` when it is loaded (the Node adapter also runs on Bun, as Bun's node:net).
 */
import { Buffer } from "node:buffer";
import { setBufferPooling } from "../../core/bytes.ts";
import { setAsciiDecoder, setLenientDecodeLimit } from "../../core/connection.ts";
import { setPayloadCopyLimit } from "../../core/frame.ts";
import { setMaskWordSize } from "../../core/mask.ts";

type Latin1Slice = (this: Uint8Array, start: number, end: number) => string;

const isBun = (globalThis as { Bun?: unknown }).Bun !== undefined;
const isDeno = (globalThis as { Deno?: unknown }).Deno !== undefined;

/** Applies the settings for the engine this runs on: JavaScriptCore (Bun) or V8 (Node, Deno). */
export function useEngineSettings(): void {
  // Node's Buffer (Deno and Bun have it too) decodes a range of any Uint8Array without a view of
  // it. The core unmasks short ASCII text into a scratch buffer for it: receiving 32-byte messages
  // costs 40-50% less on Node and Deno than through a view and TextDecoder; on Bun it decodes 32
  // bytes in ~36 ns, where TextDecoder takes ~62 ns.
  const latin1Slice = (Buffer.prototype as unknown as { latin1Slice?: Latin1Slice }).latin1Slice;
  if (typeof latin1Slice === "function") setAsciiDecoder((bytes, start, end) => latin1Slice.call(bytes, start, end));
  if (isBun) {
    // JavaScriptCore: a view into a received chunk costs more than a copy of a short payload, and
    // TextDecoder reads the copy faster (core/frame.ts). In-process, a 32-byte text echo cost ~300
    // ns per message through views and ~255 through copies; short ASCII text, which now takes the
    // latin1Slice path, ~210 (with staged output, core/connection.ts).
    setPayloadCopyLimit(128);
    return;
  }
  // V8 masks 64-bit words twice as fast as 32-bit ones (core/mask.ts), and allocates small buffers
  // faster from slabs (core/bytes.ts).
  setMaskWordSize(8);
  setBufferPooling(true);
  // Deno's lenient UTF-8 decoder is 3-6 times faster than its fatal one at any size.
  if (isDeno) setLenientDecodeLimit(Infinity);
}
