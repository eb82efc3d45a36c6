/** Inputs for the permessage-deflate tests: text that compresses well, and a zip bomb. */
import assert from "node:assert/strict";
import { createZlibCodec } from "../../adapters/zlib/codec.ts";
import { concatBytes } from "../../core/bytes.ts";

/** JSON-like text that compresses well: ~`size` bytes. */
export function jsonLike(size: number, seed = 1): string {
  let out = "[";
  for (let i = 0; out.length < size; i++) {
    out += JSON.stringify({ id: i * seed, user: `user${(i * 7919 + seed) % 1000}`, active: i % 3 === 0, score: (i * 37) % 101 }) + ",";
  }
  return out.slice(0, size - 1) + "]";
}

/**
 * A real zip bomb: `mib` MiB of zeros as one message's compressed payload, ~1 KiB per MiB, without
 * the 00 00 ff ff that the sender removes (RFC 7692 §7.2.1). Compressed in 1 MiB segments with
 * sync flushes: from the second one on, the window is all zeros and every segment comes out
 * identical, so the bomb is the first segment and that one repeated.
 */
export async function zipBomb(mib: number): Promise<Uint8Array> {
  const c = createZlibCodec().createCompressor({ windowBits: 15, memLevel: 9, level: 9, huffmanOnly: false, resetAfterMessage: false });
  const zeros = new Uint8Array(1 << 20);
  const [first, second, third] = [await c.compress(zeros), await c.compress(zeros), await c.compress(zeros)];
  c.close();
  assert.deepEqual(third, second, "the repeated segment is stable");
  const bomb = concatBytes([first, ...Array.from({ length: mib - 1 }, () => second)]);
  return bomb.subarray(0, bomb.length - 4);
}
