/**
 * SHA-1 (FIPS 180-4, RFC 3174) in pure TypeScript.
 *
 * Only used for the opening handshake's Sec-WebSocket-Accept (RFC 6455 §4.2.2), where
 * SHA-1 is a fixed part of the protocol, not a security primitive. Inputs are tiny
 * (a 60-byte string), so clarity wins over speed, but the code is still linear and
 * allocation-light for large inputs.
 */


const BLOCK_BYTES = 64;

// Working memory, reused by every call (sha1 is synchronous).
const state = new Uint32Array(5);
const schedule = new Uint32Array(80);
const tailBlocks = new Uint8Array(2 * BLOCK_BYTES);

/** Returns the 20-byte SHA-1 digest of `data`. */
export function sha1(data: Uint8Array): Uint8Array {
  state[0] = 0x67452301;
  state[1] = 0xefcdab89;
  state[2] = 0x98badcfe;
  state[3] = 0x10325476;
  state[4] = 0xc3d2e1f0;

  const fullBlocks = Math.floor(data.length / BLOCK_BYTES);
  for (let block = 0; block < fullBlocks; block++) {
    compress(state, schedule, data, block * BLOCK_BYTES);
  }
  const tailLength = padTail(data, fullBlocks * BLOCK_BYTES);
  for (let offset = 0; offset < tailLength; offset += BLOCK_BYTES) {
    compress(state, schedule, tailBlocks, offset);
  }

  const digest = new Uint8Array(20);
  for (let i = 0; i < 5; i++) {
    const word = state[i]!;
    digest[i * 4] = word >>> 24;
    digest[i * 4 + 1] = (word >>> 16) & 0xff;
    digest[i * 4 + 2] = (word >>> 8) & 0xff;
    digest[i * 4 + 3] = word & 0xff;
  }
  return digest;
}

/**
 * Writes the last one or two blocks into `tailBlocks` and returns their length: the leftover
 * bytes, a 0x80 marker, zero fill and the message length in bits as a 64-bit big-endian integer
 * (RFC 3174 §4).
 */
function padTail(data: Uint8Array, offset: number): number {
  const leftover = data.length - offset;
  const length = leftover + 1 + 8 <= BLOCK_BYTES ? BLOCK_BYTES : 2 * BLOCK_BYTES;
  const tail = tailBlocks;
  tail.fill(0);
  tail.set(data.subarray(offset));
  tail[leftover] = 0x80;
  const bitLengthHigh = Math.floor(data.length / 0x20000000); // length * 8 / 2^32
  const bitLengthLow = (data.length * 8) >>> 0;
  for (let i = 0; i < 4; i++) {
    tail[length - 8 + i] = (bitLengthHigh >>> (24 - 8 * i)) & 0xff;
    tail[length - 4 + i] = (bitLengthLow >>> (24 - 8 * i)) & 0xff;
  }
  return length;
}

/** Processes one 64-byte block starting at `offset` (RFC 3174 §6.1, method 1). */
function compress(state: Uint32Array, w: Uint32Array, bytes: Uint8Array, offset: number): void {
  for (let t = 0; t < 16; t++) {
    const i = offset + t * 4;
    w[t] = ((bytes[i]! << 24) | (bytes[i + 1]! << 16) | (bytes[i + 2]! << 8) | bytes[i + 3]!) >>> 0;
  }
  for (let t = 16; t < 80; t++) {
    w[t] = rotl(w[t - 3]! ^ w[t - 8]! ^ w[t - 14]! ^ w[t - 16]!, 1);
  }

  let a = state[0]!;
  let b = state[1]!;
  let c = state[2]!;
  let d = state[3]!;
  let e = state[4]!;

  for (let t = 0; t < 80; t++) {
    let f: number;
    let k: number;
    if (t < 20) {
      f = (b & c) | (~b & d);
      k = 0x5a827999;
    } else if (t < 40) {
      f = b ^ c ^ d;
      k = 0x6ed9eba1;
    } else if (t < 60) {
      f = (b & c) | (b & d) | (c & d);
      k = 0x8f1bbcdc;
    } else {
      f = b ^ c ^ d;
      k = 0xca62c1d6;
    }
    const temp = (rotl(a, 5) + f + e + k + w[t]!) >>> 0;
    e = d;
    d = c;
    c = rotl(b, 30);
    b = a;
    a = temp;
  }

  state[0] = state[0]! + a;
  state[1] = state[1]! + b;
  state[2] = state[2]! + c;
  state[3] = state[3]! + d;
  state[4] = state[4]! + e;
}

function rotl(x: number, n: number): number {
  return ((x << n) | (x >>> (32 - n))) >>> 0;
}
