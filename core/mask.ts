/**
 * RFC 6455 §5.3 masking: octet i of the payload is XORed with octet (i mod 4) of the key.
 * The same operation masks and unmasks.
 */

const keyBytes = new Uint8Array(4);
const keyWord = new Int32Array(keyBytes.buffer);

/**
 * Ranges shorter than this are masked byte by byte (4 at a time, key bytes in locals): creating
 * the word view costs more than it saves below it. Longer ones go a 32-bit word at a time, 8
 * words per iteration, which measured faster than 4 on V8 and JavaScriptCore (bench/NOTES.md).
 */
const WORD_MASK_MIN = 128;
/** Ranges at least this long go 8 bytes at a time when the word size is 8 (`Tuning.maskWordSize`). */
const WIDE_MASK_MIN = 1024;

/**
 * XORs `data` in place with `key`, as if `data` started `phase` bytes into the payload
 * (so a payload that arrives in pieces can be unmasked piece by piece). `wordSize`: bytes per
 * word of the loop over long ranges; 8 is fast on V8 only (`Tuning.maskWordSize`).
 */
export function applyMask(data: Uint8Array, key: Uint8Array, phase = 0, wordSize: 4 | 8 = 4): void {
  maskRange(data, 0, data.length, key, phase, wordSize);
}

/**
 * XORs `data[start:end]` in place with `key`, the range starting `phase` bytes into the payload.
 * With `wordSize` 8, long ranges go through a BigUint64Array: V8 compiles that to plain 64-bit
 * XORs, where JavaScriptCore allocates a BigInt per element.
 */
export function maskRange(data: Uint8Array, start: number, end: number, key: Uint8Array, phase = 0, wordSize: 4 | 8 = 4): void {
  let i = start;
  const shift = phase - start; // data[i] takes key[(shift + i) & 3]
  if (wordSize === 8 && end - i >= WIDE_MASK_MIN) {
    // Bytes up to the first 8-byte-aligned address, then whole 64-bit words; the tail below.
    const head = i + (-(data.byteOffset + i) & 7);
    for (; i < head; i++) data[i] ^= key[(shift + i) & 3];
    const k = wideKey(wordKey(key, shift + i));
    const words = (end - i) >>> 3;
    const w = new BigUint64Array(data.buffer, data.byteOffset + i, words);
    let j = 0;
    for (const unrolled = words & ~7; j < unrolled; j += 8) {
      w[j] ^= k;
      w[j + 1] ^= k;
      w[j + 2] ^= k;
      w[j + 3] ^= k;
      w[j + 4] ^= k;
      w[j + 5] ^= k;
      w[j + 6] ^= k;
      w[j + 7] ^= k;
    }
    for (; j < words; j++) w[j] ^= k;
    i += words << 3;
  } else if (end - i >= WORD_MASK_MIN) {
    // Bytes up to the first 4-byte-aligned address, then whole words, then the tail.
    const head = i + (-(data.byteOffset + i) & 3);
    for (; i < head; i++) data[i] ^= key[(shift + i) & 3];
    const k = wordKey(key, shift + i);
    const words = (end - i) >>> 2;
    const w = new Int32Array(data.buffer, data.byteOffset + i, words);
    let j = 0;
    for (const unrolled = words & ~7; j < unrolled; j += 8) {
      w[j] ^= k;
      w[j + 1] ^= k;
      w[j + 2] ^= k;
      w[j + 3] ^= k;
      w[j + 4] ^= k;
      w[j + 5] ^= k;
      w[j + 6] ^= k;
      w[j + 7] ^= k;
    }
    for (; j < words; j++) w[j] ^= k;
    i += words << 2;
  }
  const k0 = key[(shift + i) & 3];
  const k1 = key[(shift + i + 1) & 3];
  const k2 = key[(shift + i + 2) & 3];
  const k3 = key[(shift + i + 3) & 3];
  for (const quads = end - ((end - i) & 3); i < quads; i += 4) {
    data[i] ^= k0;
    data[i + 1] ^= k1;
    data[i + 2] ^= k2;
    data[i + 3] ^= k3;
  }
  for (; i < end; i++) data[i] ^= key[(shift + i) & 3];
}

/**
 * A new array holding `data[start:end]` XORed with `key`, the range starting `phase` bytes into
 * the payload; with no key, a plain copy. A loop over the bytes, for short ranges: it makes no
 * view of `data` and leaves it unchanged.
 */
export function copyRange(data: Uint8Array, start: number, end: number, key: Uint8Array | null, phase: number): Uint8Array {
  const copy = new Uint8Array(end - start);
  xorBytes(data, start, copy, 0, end - start, key, phase);
  return copy;
}

/**
 * Writes `source` masked with `key` into `target` at `offset`, copying and masking in one pass
 * (for a payload the caller still owns). `source` is not changed. `wordSize` as for `maskRange`.
 */
export function maskInto(source: Uint8Array, key: Uint8Array, target: Uint8Array, offset: number, wordSize: 4 | 8 = 4): void {
  const length = source.length;
  if (length >= WORD_MASK_MIN && ((source.byteOffset - (target.byteOffset + offset)) & 3) !== 0) {
    // Not alike aligned, so no word view fits both: copy natively, then mask in place.
    target.set(source, offset);
    maskRange(target, offset, offset + length, key, 0, wordSize);
    return;
  }
  let i = 0;
  if (wordSize === 8 && length >= WIDE_MASK_MIN && ((source.byteOffset - (target.byteOffset + offset)) & 7) === 0) {
    const head = -source.byteOffset & 7;
    for (; i < head; i++) target[offset + i] = source[i] ^ key[i & 3];
    const k = wideKey(wordKey(key, i));
    const words = (length - i) >>> 3;
    const s = new BigUint64Array(source.buffer, source.byteOffset + i, words);
    const t = new BigUint64Array(target.buffer, target.byteOffset + offset + i, words);
    let j = 0;
    for (const unrolled = words & ~7; j < unrolled; j += 8) {
      t[j] = s[j] ^ k;
      t[j + 1] = s[j + 1] ^ k;
      t[j + 2] = s[j + 2] ^ k;
      t[j + 3] = s[j + 3] ^ k;
      t[j + 4] = s[j + 4] ^ k;
      t[j + 5] = s[j + 5] ^ k;
      t[j + 6] = s[j + 6] ^ k;
      t[j + 7] = s[j + 7] ^ k;
    }
    for (; j < words; j++) t[j] = s[j] ^ k;
    i += words << 3;
  } else if (length >= WORD_MASK_MIN) {
    const head = -source.byteOffset & 3;
    for (; i < head; i++) target[offset + i] = source[i] ^ key[i & 3];
    const k = wordKey(key, i);
    const words = (length - i) >>> 2;
    const s = new Int32Array(source.buffer, source.byteOffset + i, words);
    const t = new Int32Array(target.buffer, target.byteOffset + offset + i, words);
    let j = 0;
    for (const unrolled = words & ~7; j < unrolled; j += 8) {
      t[j] = s[j] ^ k;
      t[j + 1] = s[j + 1] ^ k;
      t[j + 2] = s[j + 2] ^ k;
      t[j + 3] = s[j + 3] ^ k;
      t[j + 4] = s[j + 4] ^ k;
      t[j + 5] = s[j + 5] ^ k;
      t[j + 6] = s[j + 6] ^ k;
      t[j + 7] = s[j + 7] ^ k;
    }
    for (; j < words; j++) t[j] = s[j] ^ k;
    i += words << 2;
  }
  xorBytes(source, i, target, offset + i, length - i, key, i);
}

/**
 * `target[t + j] = source[s + j] ^ key[(phase + j) & 3]` for `j < length`, four bytes per
 * iteration with the key bytes in locals; with no key, a copy. Returns the OR of the bytes
 * written, so that a caller can tell ASCII (below 0x80) on the way.
 */
export function xorBytes(
  source: Uint8Array,
  s: number,
  target: Uint8Array,
  t: number,
  length: number,
  key: Uint8Array | null,
  phase: number,
): number {
  const k0 = key === null ? 0 : key[phase & 3];
  const k1 = key === null ? 0 : key[(phase + 1) & 3];
  const k2 = key === null ? 0 : key[(phase + 2) & 3];
  const k3 = key === null ? 0 : key[(phase + 3) & 3];
  let bits = 0;
  let j = 0;
  for (const quads = length & ~3; j < quads; j += 4) {
    const b0 = source[s + j] ^ k0;
    const b1 = source[s + j + 1] ^ k1;
    const b2 = source[s + j + 2] ^ k2;
    const b3 = source[s + j + 3] ^ k3;
    target[t + j] = b0;
    target[t + j + 1] = b1;
    target[t + j + 2] = b2;
    target[t + j + 3] = b3;
    bits |= b0 | b1 | b2 | b3;
  }
  // 0-3 bytes left, the first of them at key byte k0.
  if (j < length) bits |= target[t + j] = source[s + j] ^ k0;
  if (j + 1 < length) bits |= target[t + j + 1] = source[s + j + 1] ^ k1;
  if (j + 2 < length) bits |= target[t + j + 2] = source[s + j + 2] ^ k2;
  return bits;
}

/** A 32-bit key word twice, as one 64-bit word. */
function wideKey(word: number): bigint {
  const half = BigInt(word >>> 0);
  return (half << 32n) | half;
}

/** The key as one 32-bit word (platform byte order), starting at key byte `at & 3`. */
function wordKey(key: Uint8Array, at: number): number {
  keyBytes[0] = key[at & 3];
  keyBytes[1] = key[(at + 1) & 3];
  keyBytes[2] = key[(at + 2) & 3];
  keyBytes[3] = key[(at + 3) & 3];
  return keyWord[0] | 0;
}
