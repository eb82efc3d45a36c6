/** Byte helpers for tests: text, hex, patterns, byte-exact comparison. Runtime-neutral. */
import assert from "node:assert/strict";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export const utf8 = (text: string): Uint8Array => encoder.encode(text);
export const fromUtf8 = (bytes: Uint8Array): string => decoder.decode(bytes);

/** Lower-case hex, two digits a byte, joined by `separator`. */
export function hex(bytes: ArrayLike<number>, separator = ""): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join(separator);
}

/**
 * Byte `i` of a test stream: the bytes of 32-bit big-endian word `i >> 2` hold that word's own
 * index, so any loss, duplication or reordering shows, however far the bytes travelled.
 */
export const patternByte = (i: number): number => ((i >>> 2) >>> (8 * (3 - (i & 3)))) & 0xff;

/** Bytes `from` to `from + length` of the test stream (see `patternByte`). */
export function pattern(from: number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  const view = new DataView(out.buffer);
  let i = 0;
  for (; i < length && (from + i) % 4 !== 0; i++) out[i] = patternByte(from + i);
  for (; i + 4 <= length; i += 4) view.setUint32(i, (from + i) / 4); // whole words at once
  for (; i < length; i++) out[i] = patternByte(from + i);
  return out;
}

/** Byte-exact comparison that reports the first difference instead of dumping a megabyte. */
export function assertBytes(actual: Uint8Array, expected: Uint8Array, what: string): void {
  assert.ok(actual instanceof Uint8Array, `${what}: not bytes`);
  if (actual.length !== expected.length) {
    assert.fail(`${what}: ${actual.length} bytes, expected ${expected.length}`);
  }
  for (let i = 0; i < expected.length; i++) {
    if (actual[i] !== expected[i]) assert.fail(`${what}: byte ${i} is ${actual[i]}, expected ${expected[i]}`);
  }
}
