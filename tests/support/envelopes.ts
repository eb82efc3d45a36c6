/**
 * What backplane driver tests send: envelopes of every awkward size from 0 B to 1 MiB, one with
 * every byte value, each different from the others, and a digest to compare them across
 * processes. A driver moves bytes only, so any bytes do.
 */
import { createHash } from "node:crypto";

const SIZES = [0, 1, 2, 3, 125, 126, 127, 128, 255, 256, 4095, 4096, 65535, 65536, 65537, 300_000, 1024 * 1024];

/** Envelope `index` of the test set: its size from SIZES, bytes that depend on the index. */
function envelope(index: number, size: number): Uint8Array {
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i++) bytes[i] = (i * 7 + index * 31 + (i >>> 8)) & 0xff;
  return bytes;
}

/** The test set, in sending order: every byte value 0..255 once (twice, in both orders), then every size. */
export function testEnvelopes(): Uint8Array[] {
  const all = Uint8Array.from({ length: 256 }, (_, i) => i);
  const reversed = Uint8Array.from({ length: 256 }, (_, i) => 255 - i);
  return [all, reversed, ...SIZES.map((size, i) => envelope(i + 2, size))];
}

/** Length and SHA-256 of an envelope, as one line of text. */
export function digest(bytes: Uint8Array): string {
  return `${bytes.length} ${createHash("sha256").update(bytes).digest("hex")}`;
}
