/**
 * SHA-1 (FIPS 180-4, RFC 3174) in pure TypeScript.
 *
 * Only used for the opening handshake's Sec-WebSocket-Accept (RFC 6455 §4.2.2), where
 * SHA-1 is a fixed part of the protocol, not a security primitive. Inputs are tiny
 * (a 60-byte string), so clarity wins over speed, but the code is still linear and
 * allocation-light for large inputs.
 */

const BLOCK_BYTES = 64;

/** Returns the 20-byte SHA-1 digest of `data`. */
export function sha1(data: Uint8Array): Uint8Array {
  const state = new Uint32Array([0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0]);
  const schedule = new Uint32Array(80);

  const fullBlocks = Math.floor(data.length / BLOCK_BYTES);
  for (let block = 0; block < fullBlocks; block++) {
    compress(state, schedule, data, block * BLOCK_BYTES);
  }
  for (const tail of paddedTail(data, fullBlocks * BLOCK_BYTES)) {
    compress(state, schedule, tail, 0);
  }

  const digest = new Uint8Array(20);
  const view = new DataView(digest.buffer);
  for (let i = 0; i < 5; i++) view.setUint32(i * 4, state[i]!);
  return digest;
}

/**
 * The last one or two blocks: the leftover bytes, a 0x80 marker, zero fill and the
 * message length in bits as a 64-bit big-endian integer (RFC 3174 §4).
 */
function paddedTail(data: Uint8Array, offset: number): Uint8Array[] {
  const leftover = data.length - offset;
  const blocks = leftover + 1 + 8 <= BLOCK_BYTES ? 1 : 2;
  const tail = new Uint8Array(blocks * BLOCK_BYTES);
  tail.set(data.subarray(offset));
  tail[leftover] = 0x80;

  const view = new DataView(tail.buffer);
  const bitLengthHigh = Math.floor(data.length / 0x20000000); // length * 8 / 2^32
  const bitLengthLow = (data.length * 8) >>> 0;
  view.setUint32(tail.length - 8, bitLengthHigh);
  view.setUint32(tail.length - 4, bitLengthLow);

  const result = [tail.subarray(0, BLOCK_BYTES)];
  if (blocks === 2) result.push(tail.subarray(BLOCK_BYTES));
  return result;
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
