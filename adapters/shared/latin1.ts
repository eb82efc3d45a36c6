/**
 * The core's ASCII decoder (`setAsciiDecoder`) for the runtimes that have Node's Buffer: its
 * `latin1Slice` turns a range of any Uint8Array into a string without a view of it. The Node and
 * Deno adapters use it: 32-byte messages cost 40-50% less to receive there. Bun has it too, but
 * there a 32-byte echo cost about as much that way as through a view and TextDecoder (~320 ns
 * in-process), and more than through a copy of the payload (~250 ns, `setPayloadCopyLimit`,
 * which the Bun adapter uses).
 */
import { Buffer } from "node:buffer";
import { setAsciiDecoder } from "../../core/connection.ts";

type Latin1Slice = (this: Uint8Array, start: number, end: number) => string;

/** Sets the core's ASCII decoder to `Buffer.prototype.latin1Slice`, if the runtime has it. */
export function useLatin1Slice(): void {
  const slice = (Buffer.prototype as unknown as { latin1Slice?: Latin1Slice }).latin1Slice;
  if (typeof slice !== "function") return;
  setAsciiDecoder((bytes, start, end) => slice.call(bytes, start, end));
}
