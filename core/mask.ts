/**
 * RFC 6455 §5.3 masking: octet i of the payload is XORed with octet (i mod 4) of the key.
 * The same operation masks and unmasks.
 */

const keyBytes = new Uint8Array(4);
const keyWord = new Uint32Array(keyBytes.buffer);

/** Payloads shorter than this are masked byte by byte; longer ones a 32-bit word at a time. */
const WORD_MASK_MIN = 32;

/**
 * XORs `data` in place with `key`, as if `data` started `phase` bytes into the payload
 * (so a payload that arrives in pieces can be unmasked piece by piece).
 */
export function applyMask(data: Uint8Array, key: Uint8Array, phase = 0): void {
  const length = data.length;
  let i = 0;
  if (length >= WORD_MASK_MIN) {
    // Bytes up to the first 4-byte-aligned address, then whole words, then the tail.
    const head = -data.byteOffset & 3;
    for (; i < head; i++) data[i] ^= key[(phase + i) & 3];
    const start = phase + i;
    keyBytes[0] = key[start & 3];
    keyBytes[1] = key[(start + 1) & 3];
    keyBytes[2] = key[(start + 2) & 3];
    keyBytes[3] = key[(start + 3) & 3];
    const k = keyWord[0];
    const words = (length - i) >>> 2;
    const w = new Uint32Array(data.buffer, data.byteOffset + i, words);
    let j = 0;
    for (const unrolled = words & ~3; j < unrolled; j += 4) {
      w[j] ^= k;
      w[j + 1] ^= k;
      w[j + 2] ^= k;
      w[j + 3] ^= k;
    }
    for (; j < words; j++) w[j] ^= k;
    i += words << 2;
  }
  for (; i < length; i++) data[i] ^= key[(phase + i) & 3];
}
