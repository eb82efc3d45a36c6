/**
 * Base64 with the standard alphabet and padding (RFC 4648 §4), used for
 * Sec-WebSocket-Key and Sec-WebSocket-Accept (RFC 6455 §4.1, §4.2.2).
 */


const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const PAD = 0x3d; // "="

/** Character code → 6-bit value, or -1 for characters outside the alphabet. */
const DECODE_TABLE = (() => {
  const table = new Int8Array(128).fill(-1);
  for (let i = 0; i < ALPHABET.length; i++) table[ALPHABET.charCodeAt(i)] = i;
  return table;
})();

export function base64Encode(bytes: Uint8Array): string {
  let out = "";
  const whole = bytes.length - (bytes.length % 3);
  for (let i = 0; i < whole; i += 3) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!;
    out += ALPHABET[n >>> 18]! + ALPHABET[(n >>> 12) & 63]! + ALPHABET[(n >>> 6) & 63]! +
      ALPHABET[n & 63]!;
  }
  const left = bytes.length - whole;
  if (left === 1) {
    const n = bytes[whole]! << 16;
    out += ALPHABET[n >>> 18]! + ALPHABET[(n >>> 12) & 63]! + "==";
  } else if (left === 2) {
    const n = (bytes[whole]! << 16) | (bytes[whole + 1]! << 8);
    out += ALPHABET[n >>> 18]! + ALPHABET[(n >>> 12) & 63]! + ALPHABET[(n >>> 6) & 63]! + "=";
  }
  return out;
}

/**
 * Strict decoder: standard alphabet only, no whitespace, length a multiple of 4,
 * at most two "=" and only at the end, and the unused bits before the padding must
 * be zero (RFC 4648 §3.5 lets decoders reject non-canonical encodings; we do, so that
 * every accepted string is the one `base64Encode` would produce).
 * Returns null for anything invalid.
 */
export function base64Decode(text: string): Uint8Array | null {
  if (text.length % 4 !== 0) return null;
  const padding = countPadding(text);
  const out = new Uint8Array((text.length / 4) * 3 - padding);

  let o = 0;
  for (let i = 0; i < text.length; i += 4) {
    const isLastQuantum = i + 4 === text.length;
    const pad = isLastQuantum ? padding : 0;
    const a = sextet(text, i);
    const b = sextet(text, i + 1);
    const c = pad >= 2 ? 0 : sextet(text, i + 2);
    const d = pad >= 1 ? 0 : sextet(text, i + 3);
    if ((a | b | c | d) < 0) return null;

    const n = (a << 18) | (b << 12) | (c << 6) | d;
    out[o++] = n >>> 16;
    if (pad < 2) out[o++] = (n >>> 8) & 0xff;
    if (pad < 1) out[o++] = n & 0xff;

    // Non-canonical: bits that the padding says are unused must be zero.
    if (pad === 2 && (b & 0x0f) !== 0) return null;
    if (pad === 1 && (c & 0x03) !== 0) return null;
  }
  return out;
}

function countPadding(text: string): number {
  const n = text.length;
  if (n === 0 || text.charCodeAt(n - 1) !== PAD) return 0;
  return text.charCodeAt(n - 2) === PAD ? 2 : 1;
}

/** 6-bit value of the character at `index`, or -1 (this also rejects a stray "="). */
function sextet(text: string, index: number): number {
  const code = text.charCodeAt(index);
  return code < 128 ? DECODE_TABLE[code]! : -1;
}
