/** Reading back what a connection wrote, independently of the core's own frame parser. */
import assert from "node:assert/strict";

export type Frame = { opcode: number; fin: boolean; rsv: number; payload: Uint8Array };

/**
 * Whole frames as written (by `masked` = a client: every frame must be masked, and none
 * otherwise), their payloads unmasked.
 */
export function parseFrames(bytes: Uint8Array, masked: boolean): Frame[] {
  const frames: Frame[] = [];
  let p = 0;
  while (p < bytes.length) {
    const b0 = bytes[p], b1 = bytes[p + 1];
    assert.equal((b1 & 0x80) !== 0, masked, "mask bit");
    let length = b1 & 0x7f;
    p += 2;
    if (length === 126) {
      length = (bytes[p] << 8) | bytes[p + 1];
      p += 2;
    } else if (length === 127) {
      length = Number(new DataView(bytes.buffer, bytes.byteOffset + p, 8).getBigUint64(0));
      p += 8;
    }
    let key: Uint8Array | null = null;
    if (masked) {
      key = bytes.slice(p, p + 4);
      p += 4;
    }
    const payload = bytes.slice(p, p + length);
    if (key) for (let i = 0; i < payload.length; i++) payload[i] ^= key[i & 3];
    p += length;
    frames.push({ opcode: b0 & 0x0f, fin: (b0 & 0x80) !== 0, rsv: b0 & 0x70, payload });
  }
  return frames;
}
