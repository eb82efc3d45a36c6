/**
 * Frame streams for the fuzzer: valid ones, near-valid ones (one rule of RFC 6455 broken on
 * purpose) and hostile ones (random fields, random bytes, byte-level mutations), written by a
 * serializer of its own that can also write what no correct peer would (wrong mask bit,
 * non-minimal or lying lengths, reserved bits and opcodes).
 */
import { concatBytes } from "../../core/bytes.ts";
import type { Random } from "./random.ts";

export interface FrameSpec {
  fin: boolean;
  /** RSV1..RSV3 as a 3-bit number (RSV1 = 4). */
  rsv: number;
  opcode: number;
  masked: boolean;
  payload: Uint8Array;
  /** The length field's form: minimal (default), or a longer one than needed (RFC 6455 §5.2). */
  lengthForm?: "minimal" | "16" | "64";
  /** A 64-bit length's high word, when it is to say something else than the payload (hostile). */
  highWord?: number;
  /** The 7-bit length field's value, when it is to lie about the payload (hostile). */
  lengthLie?: number;
}

export interface Limits {
  maxMessageSize?: number;
  maxFragments?: number;
  streamThreshold?: number;
}

/** Writes frames as they go on the wire; masking keys are drawn from `random`. */
export function serialize(frames: readonly FrameSpec[], random: Random): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const f of frames) {
    const length = f.payload.length;
    const header: number[] = [(f.fin ? 0x80 : 0) | ((f.rsv & 7) << 4) | (f.opcode & 0xf)];
    const maskBit = f.masked ? 0x80 : 0;
    const form = f.lengthForm ?? "minimal";
    if (f.lengthLie !== undefined) {
      header.push(maskBit | (f.lengthLie & 0x7f));
      if ((f.lengthLie & 0x7f) === 126) header.push(length >>> 8 & 0xff, length & 0xff);
      if ((f.lengthLie & 0x7f) === 127) header.push(...word(f.highWord ?? 0), ...word(length));
    } else if (form === "64" || f.highWord !== undefined || length > 0xffff) {
      header.push(maskBit | 127, ...word(f.highWord ?? 0), ...word(length));
    } else if (form === "16" || length > 125) {
      header.push(maskBit | 126, length >>> 8, length & 0xff);
    } else {
      header.push(maskBit | length);
    }
    const payload = f.payload.slice();
    if (f.masked) {
      const key = random.bytes(4);
      header.push(...key);
      for (let i = 0; i < payload.length; i++) payload[i] ^= key[i & 3];
    }
    parts.push(Uint8Array.from(header), payload);
  }
  return concatBytes(parts);
}

function word(n: number): number[] {
  return [(n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];
}

const encoder = new TextEncoder();
const CHARS = ["a", "Z", " ", "~", "\0", "\ufeff", "\u00e9", "\u07ff", "\u0800", "\u20ac", "\ud7ff", "\ue000", "\uffff", "\u{10000}", "\u{1f600}", "\u{10ffff}"];

/** Valid UTF-8 of about `size` bytes, multi-byte characters included. */
export function randomText(random: Random, size: number): Uint8Array {
  let text = "";
  let bytes = 0;
  while (bytes < size) {
    const ch = random.chance(0.7) ? String.fromCharCode(0x20 + random.int(95)) : random.pick(CHARS);
    text += ch;
    bytes += ch.length === 1 ? (ch.charCodeAt(0) < 0x80 ? 1 : ch.charCodeAt(0) < 0x800 ? 2 : 3) : 4;
  }
  return encoder.encode(text);
}

/** Byte sequences that are not UTF-8 (RFC 3629): stray, overlong, surrogate, beyond U+10FFFF, cut short. */
export const INVALID_UTF8: readonly (readonly number[])[] = [
  [0xff], [0x80], [0xc0, 0x80], [0xc1, 0xbf], [0xe0, 0x80, 0x80], [0xed, 0xa0, 0x80], [0xed, 0xbf, 0xbf],
  [0xf0, 0x80, 0x80, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xf5, 0x80, 0x80, 0x80], [0xe2, 0x82], [0xf0, 0x9f, 0x98],
  [0xce], [0xe2, 0x28, 0xa1],
];

function size(random: Random, limits: Limits): number {
  const max = limits.maxMessageSize;
  const r = random.next();
  if (r < 0.15) return 0;
  if (r < 0.6) return random.range(1, 40);
  if (r < 0.75) return random.pick([124, 125, 126, 127, 128]);
  if (max !== undefined && max < 70_000 && r < 0.9) return Math.max(0, max + random.range(-2, 1));
  if (r < 0.985) return random.range(129, 1500);
  return random.pick([65535, 65536]);
}

/** Cuts `length` into `parts` ranges (empty ones allowed). */
function cut(random: Random, length: number, parts: number): number[] {
  const points = [0];
  for (let i = 1; i < parts; i++) points.push(random.int(length + 1));
  points.push(length);
  return points.sort((a, b) => a - b);
}

export function controlFrame(random: Random, masked: boolean): FrameSpec {
  const opcode = random.chance(0.6) ? 0x9 : 0xa;
  const length = random.chance(0.3) ? 0 : random.chance(0.9) ? random.range(1, 20) : 125;
  return { fin: true, rsv: 0, opcode, masked, payload: random.bytes(length) };
}

export function closeFrame(random: Random, masked: boolean): FrameSpec {
  if (random.chance(0.2)) return { fin: true, rsv: 0, opcode: 0x8, masked, payload: new Uint8Array(0) };
  const code = random.pick([1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4999]);
  const reason = random.chance(0.5) ? new Uint8Array(0) : randomText(random, random.int(60));
  const payload = new Uint8Array(2 + Math.min(reason.length, 123));
  payload[0] = code >>> 8;
  payload[1] = code & 0xff;
  payload.set(reason.subarray(0, 123), 2);
  // A reason cut at 123 bytes may end mid-character: keep it valid by trimming to a boundary.
  let end = payload.length;
  while (end > 2 && (payload[end - 1] & 0xc0) === 0x80) end--;
  if (end > 2 && payload[end - 1] >= 0xc0) end--;
  return { fin: true, rsv: 0, opcode: 0x8, masked, payload: reason.length > 121 ? payload.slice(0, end) : payload };
}

/** One data message, maybe in fragments with control frames between them. */
export function message(random: Random, masked: boolean, limits: Limits, out: FrameSpec[]): void {
  const text = random.chance(0.55);
  const n = size(random, limits);
  const payload = text ? randomText(random, n) : random.bytes(n);
  const parts = random.chance(0.55) ? 1 : random.chance(0.9) ? random.range(2, 6) : random.range(7, 40);
  const points = cut(random, payload.length, parts);
  for (let i = 0; i < parts; i++) {
    out.push({
      fin: i === parts - 1,
      rsv: 0,
      opcode: i === 0 ? (text ? 0x1 : 0x2) : 0x0,
      masked,
      payload: payload.subarray(points[i], points[i + 1]), // may split a character between frames
    });
    if (i < parts - 1 && random.chance(0.3)) out.push(controlFrame(random, masked));
  }
}

/** A valid stream: messages and control frames, maybe a close frame and bytes after it. */
export function validFrames(random: Random, masked: boolean, limits: Limits): FrameSpec[] {
  const frames: FrameSpec[] = [];
  const count = random.range(1, 12);
  for (let i = 0; i < count; i++) {
    if (random.chance(0.2)) frames.push(controlFrame(random, masked));
    else message(random, masked, limits, frames);
  }
  if (random.chance(0.35)) {
    frames.push(closeFrame(random, masked));
    if (random.chance(0.5)) message(random, masked, limits, frames); // ignored: nothing after a close is read
  }
  return frames;
}

/** The rules a near-valid stream breaks, one each (RFC 6455 sections in the names). */
export const BREAKS = [
  "rsv-bit", // §5.2: RSV without an extension
  "rsv-on-control", // §5.2
  "reserved-opcode", // §5.2: 3-7, 0xB-0xF
  "unfragmented-control", // §5.5: control frame without FIN
  "long-control", // §5.5: control payload over 125
  "close-1-byte", // §5.5.1
  "bad-close-code", // §7.4
  "bad-close-reason", // §5.5.1: reason is UTF-8
  "bad-utf8-text", // §8.1
  "truncated-utf8-text", // §8.1: a character cut at the message's end
  "lone-continuation", // §5.4
  "interleaved-message", // §5.4
  "wrong-mask", // §5.1 (masked towards a client, unmasked towards a server)
  "64-bit-msb", // §5.2: the most significant bit of a 64-bit length is 0
  "huge-length", // beyond 2^53
  "non-minimal-length", // §5.2 says MUST be minimal; accepted by both implementations compared
  "too-big", // limit: maxMessageSize
  "too-many-fragments", // limit: maxFragments
  "truncated", // the stream ends mid-frame
] as const;
export type Break = (typeof BREAKS)[number];

/** A valid stream with one rule broken at a random place. */
export function nearValidFrames(random: Random, masked: boolean, limits: Limits, rule: Break): FrameSpec[] {
  const frames = validFrames(random, masked, limits);
  // Cut off any close frame (and what follows it) so the broken frame is read.
  const close = frames.findIndex((f) => f.opcode === 0x8);
  if (close >= 0) frames.length = close;
  const at = random.int(frames.length + 1);
  const insert = (...more: FrameSpec[]) => frames.splice(at, 0, ...more);
  const dataAt = frames.findIndex((f, i) => i >= at && (f.opcode === 0x1 || f.opcode === 0x2));
  const textAt = frames.findIndex((f, i) => i >= at && f.opcode === 0x1);
  switch (rule) {
    case "rsv-bit":
      insert({ fin: true, rsv: random.range(1, 7), opcode: random.pick([0x1, 0x2]), masked, payload: random.bytes(random.int(10)) });
      break;
    case "rsv-on-control":
      insert({ ...controlFrame(random, masked), rsv: random.range(1, 7) });
      break;
    case "reserved-opcode":
      insert({ fin: random.chance(0.8), rsv: 0, opcode: random.pick([3, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf]), masked, payload: random.bytes(random.int(10)) });
      break;
    case "unfragmented-control":
      insert({ ...controlFrame(random, masked), fin: false });
      break;
    case "long-control": {
      const f = controlFrame(random, masked);
      insert({ ...f, opcode: random.pick([0x8, 0x9, 0xa]), payload: random.bytes(random.range(126, 300)) });
      break;
    }
    case "close-1-byte":
      insert({ fin: true, rsv: 0, opcode: 0x8, masked, payload: random.bytes(1) });
      break;
    case "bad-close-code": {
      const code = random.pick([0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535]);
      insert({ fin: true, rsv: 0, opcode: 0x8, masked, payload: Uint8Array.of(code >>> 8, code & 0xff, 0x61) });
      break;
    }
    case "bad-close-reason": {
      const bad = random.pick(INVALID_UTF8);
      insert({ fin: true, rsv: 0, opcode: 0x8, masked, payload: Uint8Array.of(0x03, 0xe8, 0x61, ...bad, 0x62) });
      break;
    }
    case "bad-utf8-text":
    case "truncated-utf8-text": {
      const bad = rule === "bad-utf8-text" ? random.pick(INVALID_UTF8) : random.pick([[0xe2, 0x82], [0xf0, 0x9f, 0x98], [0xce], [0xf4]]);
      if (textAt >= 0 && rule === "bad-utf8-text" && frames[textAt].payload.length > 0) {
        // Inside an existing text message: in one of its fragments.
        const p = frames[textAt].payload;
        const pos = random.int(p.length + 1);
        frames[textAt] = { ...frames[textAt], payload: concatBytes([p.subarray(0, pos), Uint8Array.from(bad), p.subarray(pos)]) };
      } else {
        const before = randomText(random, random.int(20));
        const after = rule === "bad-utf8-text" ? randomText(random, random.int(20)) : new Uint8Array(0);
        const payload = concatBytes([before, Uint8Array.from(bad), after]);
        const split = random.int(payload.length + 1);
        if (random.chance(0.5)) insert({ fin: true, rsv: 0, opcode: 0x1, masked, payload });
        else {
          insert(
            { fin: false, rsv: 0, opcode: 0x1, masked, payload: payload.subarray(0, split) },
            { fin: true, rsv: 0, opcode: 0x0, masked, payload: payload.subarray(split) },
          );
        }
      }
      break;
    }
    case "lone-continuation":
      insert({ fin: random.chance(0.5), rsv: 0, opcode: 0x0, masked, payload: random.bytes(random.int(10)) });
      break;
    case "interleaved-message":
      insert(
        { fin: false, rsv: 0, opcode: random.pick([0x1, 0x2]), masked, payload: randomText(random, random.int(10)) },
        { fin: random.chance(0.5), rsv: 0, opcode: random.pick([0x1, 0x2]), masked, payload: randomText(random, random.int(10)) },
      );
      break;
    case "wrong-mask":
      if (frames.length === 0 || random.chance(0.5)) insert({ ...controlFrame(random, !masked) });
      else frames[Math.min(at, frames.length - 1)] = { ...frames[Math.min(at, frames.length - 1)], masked: !masked };
      break;
    case "64-bit-msb":
      insert({ fin: true, rsv: 0, opcode: random.pick([0x1, 0x2]), masked, payload: random.bytes(random.int(8)), highWord: 0x80000000 | random.int(0x80000000) });
      break;
    case "huge-length":
      insert({ fin: true, rsv: 0, opcode: random.pick([0x1, 0x2]), masked, payload: random.bytes(random.int(8)), highWord: random.range(0x200000, 0x7fffffff) });
      break;
    case "non-minimal-length":
      // A data frame's length in a longer form than needed, then a short control frame in one.
      if (dataAt >= 0) frames[dataAt] = { ...frames[dataAt], lengthForm: frames[dataAt].payload.length > 125 || random.chance(0.5) ? "64" : "16" };
      insert({ ...controlFrame(random, masked), lengthForm: random.pick(["16", "64"] as const) });
      break;
    case "too-big": {
      const max = limits.maxMessageSize ?? 64 * 1024 * 1024;
      if (max > 70_000) {
        insert({ fin: true, rsv: 0, opcode: 0x2, masked, payload: new Uint8Array(0), highWord: 0x10 }); // 2^36 bytes declared
      } else {
        const n = max + 1;
        const parts = random.range(1, 4);
        const points = cut(random, n, parts);
        const payload = random.bytes(n);
        const more: FrameSpec[] = [];
        for (let i = 0; i < parts; i++) more.push({ fin: i === parts - 1, rsv: 0, opcode: i === 0 ? 0x2 : 0x0, masked, payload: payload.subarray(points[i], points[i + 1]) });
        insert(...more);
      }
      break;
    }
    case "too-many-fragments": {
      const max = limits.maxFragments ?? 100_000;
      const n = Math.min(max, 200) + 1;
      const more: FrameSpec[] = [];
      for (let i = 0; i < n; i++) more.push({ fin: i === n - 1, rsv: 0, opcode: i === 0 ? 0x2 : 0x0, masked, payload: random.bytes(random.int(3)) });
      insert(...more);
      break;
    }
    case "truncated":
      break; // cut by the caller
  }
  return frames;
}

/** Frames with every field drawn at random: any opcode, RSV, FIN, mask bit, length form. */
export function randomFrames(random: Random, masked: boolean): FrameSpec[] {
  const frames: FrameSpec[] = [];
  const count = random.range(1, 10);
  for (let i = 0; i < count; i++) {
    const opcode = random.chance(0.7) ? random.pick([0x0, 0x1, 0x2, 0x8, 0x9, 0xa]) : random.int(16);
    const payload = opcode === 0x1 && random.chance(0.5) ? randomText(random, random.int(30)) : random.bytes(random.chance(0.9) ? random.int(30) : random.int(300));
    frames.push({
      fin: random.chance(0.7),
      rsv: random.chance(0.85) ? 0 : random.range(1, 7),
      opcode,
      masked: random.chance(0.95) ? masked : !masked,
      payload,
      lengthForm: random.chance(0.9) ? "minimal" : random.pick(["16", "64"] as const),
    });
  }
  return frames;
}

/** Byte-level damage to a serialized stream: flips, overwrites, insertions, deletions, repeats. */
export function mutateBytes(random: Random, bytes: Uint8Array): Uint8Array {
  let out = Array.from(bytes);
  const count = random.range(1, 4);
  for (let i = 0; i < count; i++) {
    const at = random.int(out.length + 1);
    switch (random.int(6)) {
      case 0:
        if (at < out.length) out[at] ^= 1 << random.int(8);
        break;
      case 1:
        if (at < out.length) out[at] = random.pick([0x00, 0x7e, 0x7f, 0x80, 0xff, random.int(256)]);
        break;
      case 2:
        out.splice(at, 0, ...random.bytes(random.range(1, 8)));
        break;
      case 3:
        out.splice(at, random.range(1, 8));
        break;
      case 4: {
        const from = random.int(out.length + 1);
        out.splice(at, 0, ...out.slice(from, from + random.range(1, 32)));
        break;
      }
      default:
        out = out.slice(0, at); // truncation
    }
  }
  return Uint8Array.from(out);
}
