/**
 * RFC 6455 §5.2 base framing: an incremental, zero-copy frame parser and the frame serializer.
 *
 * The parser applies the rules that concern one frame alone (masking direction, reserved
 * opcodes and bits, control frame size and FIN, 64-bit length). Rules that span frames
 * (fragmentation, message size, UTF-8) belong to the connection.
 */
import { allocateBytes } from "./bytes.ts";
import { type ByteAllocator, PORTABLE_TUNING, type Tuning } from "./tuning.ts";
import { copyRange, maskInto, maskRange } from "./mask.ts";

/** Opcodes (RFC 6455 §5.2, §11.8). */
export const Opcode = {
  CONTINUATION: 0x0,
  TEXT: 0x1,
  BINARY: 0x2,
  CLOSE: 0x8,
  PING: 0x9,
  PONG: 0xa,
} as const;

/** RSV bits as they sit in the first header byte. */
export const RSV1 = 0x40;
export const RSV2 = 0x20;
export const RSV3 = 0x10;

/** RFC 6455 §5.5: control frames carry at most 125 payload bytes. */
export const MAX_CONTROL_PAYLOAD = 125;

export function isControlOpcode(opcode: number): boolean {
  return (opcode & 0x8) !== 0;
}

/** Receives what the parser finds. A callback returning false stops the parser for good. */
export interface FrameHandler {
  /** A frame header, checked against the per-frame rules. */
  onFrameStart(opcode: number, fin: boolean, rsv: number, length: number): boolean;
  /** Unmasked payload bytes of the current frame, in order; `frameEnd` marks its last piece
   * (an empty payload gives one empty piece). Pieces are views into the received chunk, or
   * copies of it up to `Tuning.payloadCopyLimit` bytes (a copy keeps no reference to the chunk). */
  onFramePayload(data: Uint8Array, frameEnd: boolean): boolean;
  /**
   * Optional fast path: the current frame's whole payload is `chunk[start:end]`, still masked
   * with `key` (null: not masked). Return true once it is taken from there (no view or copy is
   * made, and `onFramePayload` is not called for it; a handler that stops the parser on it also
   * returns true), or false, leaving `chunk` as it was, to have it delivered through
   * `onFramePayload` as usual.
   */
  takeWholePayload?(chunk: Uint8Array, start: number, end: number, key: Uint8Array | null): boolean;
  /** The peer broke a per-frame rule; the parser has stopped. */
  onFrameError(closeCode: number, reason: string): void;
}

const HEADER = 0;
const PAYLOAD = 1;
const STOPPED = 2;

/** The largest 64-bit length we accept: 2^53 - 1, the largest exact integer (RFC 6455 §5.2). */
const MAX_SAFE_HIGH_WORD = 0x1fffff;

export class FrameParser {
  /** RSV bits a negotiated extension owns on the first frame of a data message (RFC 6455 §5.2). */
  allowedRsv = 0;

  private state = HEADER;
  // Both allocated on first use: an idle connection (most of a server's) holds neither.
  private header: Uint8Array | null = null; // a header split across chunks is gathered here
  private headerLength = 0;
  private maskKey: Uint8Array | null = null;
  private masked = false;
  private remaining = 0; // payload bytes of the current frame not yet seen
  private length = 0; // the current frame's payload length
  private phase = 0; // position in the mask key cycle

  private readonly handler: FrameHandler;
  private readonly expectMasked: boolean;
  private readonly tuning: Tuning;

  /**
   * `expectMasked`: a server receives masked frames only, a client unmasked only (RFC 6455 §5.1).
   * From `tuning`: payload pieces up to `payloadCopyLimit` bytes are handed on as copies; the
   * word size of the unmasking loops. A whole payload is offered to `takeWholePayload` first.
   */
  constructor(handler: FrameHandler, expectMasked: boolean, tuning: Tuning = PORTABLE_TUNING) {
    this.handler = handler;
    this.expectMasked = expectMasked;
    this.tuning = tuning;
  }

  get stopped(): boolean {
    return this.state === STOPPED;
  }

  /** Stops parsing; later chunks are ignored. */
  stop(): void {
    this.state = STOPPED;
  }

  /** Parses `chunk`, which the parser may unmask in place and keep views into. */
  push(chunk: Uint8Array): void {
    const end = chunk.length;
    let pos = 0;
    while (pos < end || (this.state === PAYLOAD && this.remaining === 0)) {
      if (this.state === HEADER) {
        pos = this.readHeader(chunk, pos);
      } else if (this.state === PAYLOAD) {
        const start = pos;
        const take = Math.min(this.remaining, end - pos);
        const whole = take === this.length;
        pos += take;
        this.remaining -= take;
        const frameEnd = this.remaining === 0;
        if (frameEnd) this.state = HEADER;
        if (whole && this.handler.takeWholePayload?.(chunk, start, pos, this.masked ? this.maskKey : null)) continue;
        const copyLimit = this.tuning.payloadCopyLimit;
        if (take <= copyLimit && copyLimit !== 0) {
          const copy = copyRange(chunk, start, pos, this.masked ? this.maskKey : null, this.phase);
          this.phase = (this.phase + take) & 3;
          if (!this.handler.onFramePayload(copy, frameEnd)) this.state = STOPPED;
          continue;
        }
        if (this.masked && take > 0) {
          maskRange(chunk, start, pos, this.maskKey!, this.phase, this.tuning.maskWordSize);
          this.phase = (this.phase + take) & 3;
        }
        if (!this.handler.onFramePayload(chunk.subarray(start, pos), frameEnd)) this.state = STOPPED;
      } else {
        return;
      }
    }
  }

  /** Consumes header bytes from `chunk` at `pos`; returns the new position. */
  private readHeader(chunk: Uint8Array, pos: number): number {
    let bytes: Uint8Array;
    let at: number;
    const available = chunk.length - pos;
    if (this.headerLength === 0 && available >= 2 && available >= headerSize(chunk[pos + 1])) {
      bytes = chunk; // fast path: the whole header is in this chunk
      at = pos;
      pos += headerSize(chunk[pos + 1]);
    } else {
      // Gather the header byte by byte until its size is known and reached.
      const header = (this.header ??= new Uint8Array(14));
      while (pos < chunk.length) {
        header[this.headerLength++] = chunk[pos++];
        if (this.headerLength >= 2 && this.headerLength === headerSize(header[1])) break;
      }
      if (this.headerLength < 2 || this.headerLength < headerSize(header[1])) return pos;
      bytes = header;
      at = 0;
      this.headerLength = 0;
    }
    this.parseHeader(bytes, at);
    return pos;
  }

  private parseHeader(b: Uint8Array, at: number): void {
    const b0 = b[at];
    const b1 = b[at + 1];
    const fin = (b0 & 0x80) !== 0;
    const rsv = b0 & 0x70;
    const opcode = b0 & 0x0f;
    const masked = (b1 & 0x80) !== 0;
    let length = b1 & 0x7f;
    let p = at + 2;
    if (length === 126) {
      length = (b[p] << 8) | b[p + 1];
      p += 2;
    } else if (length === 127) {
      const high = ((b[p] << 24) | (b[p + 1] << 16) | (b[p + 2] << 8) | b[p + 3]) >>> 0;
      const low = ((b[p + 4] << 24) | (b[p + 5] << 16) | (b[p + 6] << 8) | b[p + 7]) >>> 0;
      p += 8;
      // RFC 6455 §5.2: the most significant bit of a 64-bit length MUST be 0.
      if (high & 0x80000000) return this.fail(1002, "64-bit payload length with the most significant bit set");
      if (high > MAX_SAFE_HIGH_WORD) return this.fail(1009, "payload length above 2^53");
      length = high * 0x100000000 + low;
    }
    if (masked !== this.expectMasked) {
      return this.fail(1002, this.expectMasked ? "client frame is not masked" : "server frame is masked");
    }
    if ((opcode > 0x2 && opcode < 0x8) || opcode > 0xa) return this.fail(1002, `reserved opcode ${opcode}`);
    if (isControlOpcode(opcode)) {
      // RFC 6455 §5.5: control frames are never fragmented and carry at most 125 bytes.
      if (!fin) return this.fail(1002, "fragmented control frame");
      if (length > MAX_CONTROL_PAYLOAD) return this.fail(1002, "control frame payload over 125 bytes");
    }
    // RFC 6455 §5.2: RSV bits are 0 unless a negotiated extension defines them; the extensions
    // here are per-message (RFC 7692 §6), so only the first frame of a data message may carry them.
    if (rsv !== 0 && (opcode === Opcode.CONTINUATION || isControlOpcode(opcode) || (rsv & ~this.allowedRsv) !== 0)) {
      return this.fail(1002, "reserved bits set without a negotiated extension that defines them");
    }
    if (masked) {
      const key = (this.maskKey ??= new Uint8Array(4));
      key[0] = b[p];
      key[1] = b[p + 1];
      key[2] = b[p + 2];
      key[3] = b[p + 3];
    }
    this.masked = masked;
    this.phase = 0;
    this.remaining = this.length = length;
    this.state = PAYLOAD;
    if (!this.handler.onFrameStart(opcode, fin, rsv, length)) this.state = STOPPED;
  }

  private fail(code: number, reason: string): void {
    this.state = STOPPED;
    this.handler.onFrameError(code, reason);
  }
}

/** Header size in bytes, known from its second byte (RFC 6455 §5.2). */
function headerSize(b1: number): number {
  const length = b1 & 0x7f;
  return (length < 126 ? 2 : length === 126 ? 4 : 10) + ((b1 & 0x80) !== 0 ? 4 : 0);
}

/** Size of the header for a payload of `length` bytes. */
export function frameHeaderSize(length: number, masked: boolean): number {
  return (length < 126 ? 2 : length < 0x10000 ? 4 : 10) + (masked ? 4 : 0);
}

/**
 * Writes a frame header into `target` at `offset` and returns the header's size.
 * `maskKey` is written when given (client frames, RFC 6455 §5.3); the payload is not touched.
 */
export function writeFrameHeader(
  target: Uint8Array,
  offset: number,
  opcode: number,
  fin: boolean,
  rsv: number,
  length: number,
  maskKey: Uint8Array | null,
): number {
  let p = offset;
  target[p++] = (fin ? 0x80 : 0) | rsv | opcode;
  const maskBit = maskKey ? 0x80 : 0;
  if (length < 126) {
    target[p++] = maskBit | length;
  } else if (length < 0x10000) {
    target[p++] = maskBit | 126;
    target[p++] = length >>> 8;
    target[p++] = length & 0xff;
  } else {
    target[p++] = maskBit | 127;
    const high = Math.floor(length / 0x100000000);
    target[p++] = high >>> 24;
    target[p++] = (high >>> 16) & 0xff;
    target[p++] = (high >>> 8) & 0xff;
    target[p++] = high & 0xff;
    target[p++] = length >>> 24;
    target[p++] = (length >>> 16) & 0xff;
    target[p++] = (length >>> 8) & 0xff;
    target[p++] = length & 0xff;
  }
  if (maskKey) {
    target[p++] = maskKey[0];
    target[p++] = maskKey[1];
    target[p++] = maskKey[2];
    target[p++] = maskKey[3];
  }
  return p - offset;
}

/** Payloads up to this size are copied behind their header, to write one chunk instead of two. */
export const MERGE_PAYLOAD_MAX = 1024;

/**
 * Serializes one frame as chunks to write in order. With `maskKey` (client role) the payload is
 * masked in a copy, unless `payloadIsOwned` says the caller handed over a buffer we may modify.
 * Without a mask, a large payload is returned as its own chunk, uncopied. Small chunks come from
 * `allocator` when one is given (a pooling one makes pieces of a shared slab: never transfer their
 * buffer); `maskWordSize` as for `maskRange`.
 */
export function encodeFrame(
  opcode: number,
  payload: Uint8Array,
  fin: boolean,
  rsv: number,
  maskKey: Uint8Array | null,
  payloadIsOwned = false,
  allocator: ByteAllocator | null = null,
  maskWordSize: 4 | 8 = 4,
): Uint8Array[] {
  const length = payload.length;
  const headerLength = frameHeaderSize(length, maskKey !== null);
  if (length <= MERGE_PAYLOAD_MAX) {
    const frame = allocateBytes(headerLength + length, allocator);
    writeSmallFrame(frame, 0, opcode, payload, fin, rsv, maskKey);
    return [frame];
  }
  const header = allocateBytes(headerLength, allocator);
  writeFrameHeader(header, 0, opcode, fin, rsv, length, maskKey);
  if (!maskKey) return [header, payload];
  if (payloadIsOwned) {
    maskRange(payload, 0, length, maskKey, 0, maskWordSize);
    return [header, payload];
  }
  // Copy and mask in one pass. (Not `payload.slice()`: for a Node Buffer that is a view, and
  // masking it would change the caller's bytes.)
  const body = new Uint8Array(length);
  maskInto(payload, maskKey, body, 0, maskWordSize);
  return [header, body];
}

/**
 * Writes a frame of at most MERGE_PAYLOAD_MAX payload bytes, header and payload (masked with
 * `maskKey` when given), into `frame` at `offset`; returns where the frame ends.
 */
export function writeSmallFrame(
  frame: Uint8Array,
  offset: number,
  opcode: number,
  payload: Uint8Array,
  fin: boolean,
  rsv: number,
  maskKey: Uint8Array | null,
): number {
  const at = offset + writeFrameHeader(frame, offset, opcode, fin, rsv, payload.length, maskKey);
  // No subarray here: a view of a small (on-heap) typed array costs more than masking it.
  if (maskKey) maskInto(payload, maskKey, frame, at);
  else frame.set(payload, at);
  return at + payload.length;
}

/**
 * Writes a whole, unfragmented text frame for `text` into `frame` at `offset`, if `text` is
 * ASCII, and returns where the frame ends; else -1, with the bytes after `offset` scrambled.
 * Encoded (one byte per character) and masked in one pass, straight from the string, which for
 * short messages costs a fraction of `TextEncoder` plus `encodeFrame`. `frame` must have room for
 * `frameHeaderSize(text.length, maskKey !== null) + text.length` bytes after `offset`.
 */
export function writeAsciiTextFrame(frame: Uint8Array, offset: number, text: string, maskKey: Uint8Array | null): number {
  const length = text.length;
  const at = offset + frameHeaderSize(length, maskKey !== null);
  const k0 = maskKey ? maskKey[0] : 0;
  const k1 = maskKey ? maskKey[1] : 0;
  const k2 = maskKey ? maskKey[2] : 0;
  const k3 = maskKey ? maskKey[3] : 0;
  let i = 0;
  for (const quads = length & ~3; i < quads; i += 4) {
    const c0 = text.charCodeAt(i);
    const c1 = text.charCodeAt(i + 1);
    const c2 = text.charCodeAt(i + 2);
    const c3 = text.charCodeAt(i + 3);
    if ((c0 | c1 | c2 | c3) > 0x7f) return -1;
    frame[at + i] = c0 ^ k0;
    frame[at + i + 1] = c1 ^ k1;
    frame[at + i + 2] = c2 ^ k2;
    frame[at + i + 3] = c3 ^ k3;
  }
  for (; i < length; i++) {
    const c = text.charCodeAt(i);
    if (c > 0x7f) return -1;
    frame[at + i] = c ^ (maskKey ? maskKey[i & 3] : 0);
  }
  writeFrameHeader(frame, offset, Opcode.TEXT, true, 0, length, maskKey);
  return at + length;
}
