/** Runs a group of tests under one of the core's process-wide performance settings, then restores it. */
import { after, before } from "node:test";
import { setBufferPooling } from "../../core/bytes.ts";
import { type AsciiDecoder, setAsciiDecoder, setLenientDecodeLimit } from "../../core/connection.ts";
import { setPayloadCopyLimit } from "../../core/frame.ts";
import { decodeLatin1 } from "../../core/http.ts";
import { setMaskWordSize } from "../../core/mask.ts";

/** Runs `body`'s tests with the masking loops set to `size`-byte words (core/mask.ts). */
export function withMaskWordSize(size: 4 | 8, body: () => void): void {
  let previous: 4 | 8 = 4;
  before(() => (previous = setMaskWordSize(size)));
  after(() => setMaskWordSize(previous));
  body();
}

/** Runs `body`'s tests with small buffers cut from shared slabs, or not (core/bytes.ts). */
export function withBufferPooling(on: boolean, body: () => void): void {
  let previous = false;
  before(() => (previous = setBufferPooling(on)));
  after(() => setBufferPooling(previous));
  body();
}

/** A decoder for `setAsciiDecoder` in pure JS (the adapters pass Node's `Buffer#latin1Slice`). */
export const testAsciiDecoder: AsciiDecoder = decodeLatin1;

/** Runs `body`'s tests with `testAsciiDecoder` installed (core/connection.ts), or none. */
export function withAsciiDecoder(on: boolean, body: () => void): void {
  let previous: AsciiDecoder | null = null;
  before(() => (previous = setAsciiDecoder(on ? testAsciiDecoder : null)));
  after(() => setAsciiDecoder(previous));
  body();
}

/** Runs `body`'s tests with payload pieces up to `limit` bytes copied out of the chunk (core/frame.ts). */
export function withPayloadCopyLimit(limit: number, body: () => void): void {
  let previous = 0;
  before(() => (previous = setPayloadCopyLimit(limit)));
  after(() => setPayloadCopyLimit(previous));
  body();
}

/** The core's engine settings as they are now (each read by setting it and putting it back). */
export function coreSettings() {
  const maskWordSize = setMaskWordSize(4);
  setMaskWordSize(maskWordSize);
  const bufferPooling = setBufferPooling(false);
  setBufferPooling(bufferPooling);
  const lenientDecodeLimit = setLenientDecodeLimit(256);
  setLenientDecodeLimit(lenientDecodeLimit);
  const payloadCopyLimit = setPayloadCopyLimit(0);
  setPayloadCopyLimit(payloadCopyLimit);
  const asciiDecoder = setAsciiDecoder(null);
  setAsciiDecoder(asciiDecoder);
  // A decoder is judged by what it does: "hello" from the middle of a larger buffer.
  const decodesRange = asciiDecoder?.(new TextEncoder().encode("..hello.."), 2, 7) === "hello";
  return { maskWordSize, bufferPooling, lenientDecodeLimit, payloadCopyLimit, asciiDecoder: asciiDecoder === null ? "none" : decodesRange ? "decodes ranges" : "broken" };
}
