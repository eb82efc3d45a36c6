/**
 * Where anyws's core and ws's Receiver give different verdicts for the same bytes and RFC 6455
 * permits both. Each entry names the rule and its section and recognises exactly the cases it
 * covers, with the help of `firstBreak`, a walk over the frame headers that lists every rule the
 * first offending frame breaks. Any other difference fails the fuzzer.
 */
import { constants, inflateRawSync } from "node:zlib";
import { concatBytes } from "../../core/bytes.ts";
import { hex } from "../support/bytes.ts";
import type { CoreOutcome, Normalized, Role } from "./core-runner.ts";
import type { WsOutcome } from "./ws-runner.ts";
import type { Limits } from "./streams.ts";

export interface Compared {
  role: Role;
  bytes: Uint8Array;
  limits: Limits;
  /** permessage-deflate was negotiated: RSV1 marks a compressed message. */
  deflate?: boolean;
  core: CoreOutcome;
  ws: WsOutcome;
  /** Both sides' events up to their verdicts, in ws's terms (error: code only). */
  ours: Normalized[];
  theirs: Normalized[];
}

export interface KnownDifference {
  id: string;
  /** The RFC text that allows both behaviours. */
  rfc: string;
  /** What differs, and why ours is kept. */
  why: string;
  /** Only with permessage-deflate negotiated. */
  deflateOnly?: boolean;
  /** True when this entry explains the difference between the two sides. */
  matches(c: Compared): boolean;
}

/** Header-level rules a frame can break (RFC 6455 §5), as `firstBreak` names them. */
export type Rule =
  | "rsv" // §5.2: RSV bits without an extension
  | "reserved-opcode" // §5.2
  | "control-fin" // §5.5: control frames are not fragmented
  | "control-length" // §5.5: at most 125 bytes
  | "control-long-form" // §5.2: a control frame's length (<= 125) written in the 16- or 64-bit form
  | "close-1-byte" // §5.5.1
  | "mask" // §5.1
  | "length-msb" // §5.2: the most significant bit of a 64-bit length is 0
  | "length-huge" // over 2^53 - 1: more than either implementation can count
  | "continuation" // §5.4: a continuation frame without a message
  | "interleaved" // §5.4: a new data frame inside a fragmented message
  | "too-many-fragments" // maxFragments
  | "too-big" // maxMessageSize, on the declared lengths
  | "utf8" // §8.1: a text message's bytes so far cannot be UTF-8
  | "close-code" // §7.4: a close code that may not be sent
  | "close-reason"; // §5.5.1: a close reason that is not UTF-8

/** The first frame of `bytes` that breaks a header-level rule: its index and every rule it breaks. */
export function firstBreak(
  role: Role,
  bytes: Uint8Array,
  limits: Limits,
  deflate = false,
): { frame: number; rules: Rule[] } | null {
  let at = 0;
  let messageOpcode = 0;
  let fragments = 0;
  let size = 0;
  let text: TextDecoder | null = null; // the text message in progress
  for (let frame = 0; at + 2 <= bytes.length; frame++) {
    const b0 = bytes[at];
    const b1 = bytes[at + 1];
    const fin = (b0 & 0x80) !== 0;
    const opcode = b0 & 0x0f;
    const masked = (b1 & 0x80) !== 0;
    const short = b1 & 0x7f;
    const headerLength = (short < 126 ? 2 : short === 126 ? 4 : 10) + (masked ? 4 : 0);
    if (at + headerLength > bytes.length) return null;
    let length = short;
    let high = 0;
    if (short === 126) length = (bytes[at + 2] << 8) | bytes[at + 3];
    if (short === 127) {
      high = ((bytes[at + 2] << 24) | (bytes[at + 3] << 16) | (bytes[at + 4] << 8) | bytes[at + 5]) >>> 0;
      length = high * 2 ** 32 + (((bytes[at + 6] << 24) | (bytes[at + 7] << 16) | (bytes[at + 8] << 8) | bytes[at + 9]) >>> 0);
    }
    const rules: Rule[] = [];
    const control = (opcode & 0x8) !== 0;
    // RFC 7692 §6: with permessage-deflate, RSV1 on the first frame of a data message.
    if ((b0 & (deflate ? 0x30 : 0x70)) !== 0 || (deflate && (b0 & 0x40) !== 0 && (control || opcode === 0))) rules.push("rsv");
    if ((opcode > 2 && opcode < 8) || opcode > 10) rules.push("reserved-opcode");
    if (control && !fin) rules.push("control-fin");
    if (control && length > 125) rules.push("control-length");
    if (control && length <= 125 && short > 125) rules.push("control-long-form");
    if (opcode === 0x8 && length === 1) rules.push("close-1-byte");
    if (opcode === 0x8 && length >= 2 && length <= 125 && at + headerLength + length <= bytes.length) {
      const payload = bytes.slice(at + headerLength, at + headerLength + length);
      if (masked) for (let i = 0; i < payload.length; i++) payload[i] ^= bytes[at + headerLength - 4 + (i & 3)];
      const code = (payload[0] << 8) | payload[1];
      if (!((code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999))) rules.push("close-code");
      else if (!utf8Continues(new TextDecoder("utf-8", { fatal: true }), payload, 2, payload.length - 2, false, true)) rules.push("close-reason");
    }
    if (masked !== (role === "server")) rules.push("mask");
    if (high & 0x80000000) rules.push("length-msb");
    else if (high > 0x1fffff) rules.push("length-huge");
    if (!control && opcode < 3) {
      if (opcode === 0 && messageOpcode === 0) rules.push("continuation");
      if (opcode !== 0 && messageOpcode !== 0) rules.push("interleaved");
      const sameMessage = opcode === 0;
      const count = (sameMessage ? fragments : 0) + 1;
      const total = (sameMessage ? size : 0) + length;
      if (count > (limits.maxFragments ?? 100_000)) rules.push("too-many-fragments");
      if (total > (limits.maxMessageSize ?? 64 * 1024 * 1024)) rules.push("too-big");
      if (rules.length === 0) {
        // A compressed message is only checked once inflated, by both: not here.
        if (opcode === 0x1) text = (b0 & 0x40) === 0 ? new TextDecoder("utf-8", { fatal: true }) : null;
        if (opcode !== 0 && opcode !== 0x1) text = null;
        if (text !== null && !utf8Continues(text, bytes, at + headerLength, length, masked, fin)) return { frame, rules: ["utf8"] };
        messageOpcode = fin ? 0 : opcode || messageOpcode;
        fragments = fin ? 0 : count;
        size = fin ? 0 : total;
      }
    }
    if (rules.length !== 0) return { frame, rules };
    if (opcode === 0x8) return null; // nothing after a close frame is read (§5.5.1)
    at += headerLength + length;
  }
  return null;
}

/** Feeds a frame's payload (what of it is in `bytes`), unmasked, to `decoder`; false once it cannot be UTF-8. */
function utf8Continues(decoder: TextDecoder, bytes: Uint8Array, start: number, length: number, masked: boolean, fin: boolean): boolean {
  const end = Math.min(bytes.length, start + length);
  const payload = bytes.slice(start, end);
  if (masked) for (let i = 0; i < payload.length; i++) payload[i] ^= bytes[start - 4 + (i & 3)];
  try {
    decoder.decode(payload, { stream: !(fin && end === start + length) });
    return true;
  } catch {
    return false;
  }
}

const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);
/** RFC 7692 §7.2.2: appended to a compressed message before inflating. */
const TAIL = Uint8Array.of(0x00, 0x00, 0xff, 0xff);
const codeOf = (events: readonly Normalized[]): number | null => {
  const last = events[events.length - 1];
  return last?.type === "error" ? (last.code as number) : null;
};
const before = (events: readonly Normalized[]): Normalized[] => events.filter((e) => e.type !== "error" && e.type !== "close");
const isControl = (e: Normalized): boolean => e.type === "ping" || e.type === "pong";
/** How many events, from the first, the two lists have in common. */
function sharedPrefix(ours: readonly Normalized[], theirs: readonly Normalized[]): number {
  let i = 0;
  while (i < ours.length && i < theirs.length && same(ours[i], theirs[i])) i++;
  return i;
}
/** The first index from `from` on whose event is not a ping or a pong: anyws may deliver control frames between a message's fragments before it fails. */
function pastControls(events: readonly Normalized[], from: number): number {
  let j = from;
  while (events[j] !== undefined && isControl(events[j])) j++;
  return j;
}

/** Both failed at the same point (the same events before) on a frame breaking exactly these kinds of rules. */
function sameFrameFailure(c: Compared, test: (rules: Rule[], ours: number | null, theirs: number | null) => boolean): boolean {
  if (!same(before(c.ours), before(c.theirs))) return false;
  const found = firstBreak(c.role, c.bytes, c.limits, c.deflate);
  return found !== null && test(found.rules, codeOf(c.ours), codeOf(c.theirs));
}

/** The codes each implementation gives a rule: anyws's, then ws's. */
const CODES: Record<Rule, [number, number]> = {
  "rsv": [1002, 1002],
  "reserved-opcode": [1002, 1002],
  "control-fin": [1002, 1002],
  "control-length": [1002, 1002],
  "control-long-form": [0, 1002],
  "close-1-byte": [1002, 1002],
  "mask": [1002, 1002],
  "length-msb": [1002, 1009],
  "length-huge": [1009, 1009],
  "continuation": [1002, 1002],
  "interleaved": [1002, 1002],
  "too-many-fragments": [1009, 1008],
  "too-big": [1009, 1009],
  "utf8": [1007, 1007],
  "close-code": [1002, 1002],
  "close-reason": [1007, 1007],
};

export const KNOWN_DIFFERENCES: readonly KnownDifference[] = [
  {
    id: "64-bit length with the most significant bit set",
    rfc: "RFC 6455 §5.2: \"the most significant bit MUST be 0\"; §7.4.1: 1002 is a protocol error",
    why: "anyws fails with 1002 (a malformed header); ws reads it as a length over 2^53 and fails with 1009. Both fail the connection.",
    matches: (c) => sameFrameFailure(c, (rules, ours, theirs) => rules.includes("length-msb") && ours === 1002 && theirs === 1009),
  },
  {
    id: "too many fragments: 1009, not 1008",
    rfc: "RFC 6455 §7.4.1: 1009 is for \"a message that is too big for it to process\"; 1008 is the generic code when no other fits",
    why: "anyws counts fragments on the header and fails with 1009 (message too big), ws counts them once the frame's payload is in and fails with 1008; where the stream ends inside that frame, only anyws has decided.",
    matches: (c) =>
      sameFrameFailure(c, (rules, ours, theirs) => same(rules, ["too-many-fragments"]) && ours === 1009 && (theirs === 1008 || c.ws.verdict.kind === "open")),
  },
  {
    id: "one frame breaking two rules",
    rfc: "RFC 6455 §7.1.7 and §7.4.1 give each broken rule its code and no order among rules",
    why: "ws checks the opcode sequence before the length, anyws checks the length (frame parser) before the opcode sequence (connection): a frame breaking both gets 1009 from one and 1002 from the other.",
    matches: (c) =>
      sameFrameFailure(c, (rules, ours, theirs) =>
        rules.length >= 2 && ours !== theirs && rules.some((r) => CODES[r][0] === ours) && rules.some((r) => CODES[r][1] === theirs)
      ),
  },
  {
    id: "control frame length in a long form",
    rfc: "RFC 6455 §5.2: the minimal number of bytes MUST be used to encode the length (a rule for the sender); §5.5: a control frame's payload length is at most 125",
    why: "ws fails a control frame whose length field is 126 or 127 even when the length written there is at most 125; anyws reads the length, as both do for data frames, and judges the payload length. anyws is the more lenient reader of a rule the RFC puts on the sender.",
    matches: (c) => {
      const theirs = before(c.theirs);
      return codeOf(c.theirs) === 1002 && same(firstBreak(c.role, c.bytes, c.limits, c.deflate)?.rules, ["control-long-form"]) &&
        same(before(c.ours).slice(0, theirs.length), theirs);
    },
  },
  {
    id: "a compressed message judged once whole",
    deflateOnly: true,
    rfc: "RFC 7692 §6.2: the receiver decompresses the payload of a whole message; §8.2.2 (and RFC 6455 §7.1.7): data that does not inflate fails the connection; RFC 6455 §5.4: control frames may come between fragments",
    why: "ws inflates each frame as it arrives and fails on the first whose data does not inflate (1007) or inflates past maxPayload (1009); anyws inflates a message once its last frame is in, so it may first deliver control frames that came between the fragments, see a close frame or a later frame's error (with that frame's code), or still be waiting for the last frame.",
    matches: (c) => {
      const code = codeOf(c.theirs);
      const inflating = (code === 1007 && c.ws.errorCode?.startsWith("Z_")) || (code === 1009 && c.ws.errorCode === "WS_ERR_UNSUPPORTED_MESSAGE_LENGTH");
      if (!c.deflate || !inflating) return false;
      // anyws's own verdict: its inflating (1007, 1009), a later frame's broken rule, or none yet.
      const our = codeOf(c.ours);
      const rules = firstBreak(c.role, c.bytes, c.limits, true)?.rules ?? [];
      if (our !== null && our !== 1007 && our !== 1009 && !rules.some((r) => CODES[r][0] === our)) return false;
      const ours = before(c.ours);
      const theirs = before(c.theirs);
      return same(ours.slice(0, theirs.length), theirs) && ours.slice(theirs.length).every(isControl);
    },
  },
  {
    id: "a DEFLATE stream that ends exactly at the appended tail",
    deflateOnly: true,
    rfc: "RFC 7692 §7.2.3.4: a message may end with a BFINAL=1 block, which ends the DEFLATE stream; §7.2.2: the receiver appends 00 00 ff ff and inflates",
    why: "After a message whose stream ends (BFINAL), both start the next message on a new stream when zlib leaves input unused; when the stream ends exactly at the end of the appended tail (an empty BFINAL stored block whose LEN and NLEN are the tail), ws's inflater takes none of the next message: ws delivers that message empty or fails with 1007, while anyws starts it on a new stream, as after any other end (a message that refers to the old window fails with 1007). The events before that message are the same; after it, ws's depend on the state its inflater was left in.",
    matches: (c) => {
      if (!c.deflate) return false;
      const { ours, theirs } = c;
      const i = sharedPrefix(ours, theirs);
      const lost = theirs[i];
      // ws fails on the message's first frame; anyws may deliver control frames between its fragments first.
      const j = pastControls(ours, i);
      const ourEvent = ours[j];
      const tooBig = ourEvent?.type === "error" && ourEvent.code === 1009 && j === ours.length - 1;
      if (ourEvent?.type !== "text" && ourEvent?.type !== "binary" && !tooBig) return false;
      // 1007: zlib's error, or what ws's inflater made of the message is not UTF-8.
      const failed = lost?.type === "error" && lost.code === 1007;
      // What ws does after it lost that message depends on its inflater's state: not compared.
      const other = (lost?.type === "text" || lost?.type === "binary") && (tooBig || ours[i]?.type === lost.type);
      if (!failed && !other) return false;
      // The compressed message before it ends its DEFLATE stream (inflating it with Z_FINISH
      // finds the end), and what anyws delivered is this message inflated on a new stream.
      const delivered = theirs.slice(0, i).filter((e) => e.type === "text" || e.type === "binary").length;
      const messages = dataMessages(c.role, c.bytes);
      const message = messages[delivered];
      const previous = messages.slice(0, delivered).filter((m) => m.compressed).pop();
      if (!message?.compressed || message.payload.length === 0 || previous === undefined) return false;
      let inflated: Uint8Array;
      try {
        inflateRawSync(concatBytes([previous.payload, TAIL]));
        inflated = inflateRawSync(concatBytes([message.payload, TAIL]), { finishFlush: constants.Z_SYNC_FLUSH });
      } catch {
        return false;
      }
      if (tooBig) return inflated.length > (c.limits.maxMessageSize ?? 64 * 1024 * 1024);
      const data = ourEvent.type === "binary" ? hex(inflated) : new TextDecoder("utf-8", { ignoreBOM: true }).decode(inflated);
      return inflated.length !== 0 && ourEvent.data === data;
    },
  },
  {
    id: "bytes after the end of a DEFLATE stream in the same message",
    deflateOnly: true,
    rfc: "RFC 7692 §7.2.2: the payload with 00 00 ff ff appended is inflated as DEFLATE data; bytes after the end of the stream are not part of it (RFC 6455 §7.4.1: 1007)",
    why: "anyws fails the connection with 1007 when a message goes on after its DEFLATE stream ended (other than the appended tail); ws delivers what inflated when zlib stops at the end and drops the rest (it fails with 1007 only when the rest reaches zlib). The events before that message are the same; after it, ws's depend on the state its inflater was left in.",
    matches: (c) => {
      if (!c.deflate) return false;
      const { ours, theirs } = c;
      const i = sharedPrefix(ours, theirs);
      const j = pastControls(ours, i);
      const error = c.core.events.find((e) => e.type === "error");
      return ours[j]?.type === "error" && ours[j].code === 1007 && j === ours.length - 1 &&
        typeof error?.reason === "string" && error.reason.endsWith("data after the end of the DEFLATE stream") &&
        (theirs[i]?.type === "text" || theirs[i]?.type === "binary" || theirs[i] === undefined || (theirs[i]?.type === "error" && theirs[i].code === 1007));
    },
  },
  {
    id: "invalid UTF-8 found before the end of the message",
    rfc: "RFC 6455 §8.1: an endpoint that finds the bytes are not valid UTF-8 MUST fail the connection; §5.4 lets control frames arrive between fragments",
    why: "anyws checks a text message as it arrives and fails on the first byte that cannot be UTF-8 (what Autobahn 6.4 calls failing fast); ws checks a message when its last frame is in, so it may first see control frames between the fragments, a close frame, or another frame's error, or still be waiting.",
    matches: (c) => {
      if (codeOf(c.ours) !== 1007 || !same(firstBreak(c.role, c.bytes, c.limits, c.deflate)?.rules, ["utf8"])) return false;
      const ours = before(c.ours);
      const theirs = before(c.theirs);
      if (!same(theirs.slice(0, ours.length), ours)) return false;
      return theirs.slice(ours.length).every(isControl);
    },
  },
];

/** The data messages in `bytes` (well-formed frames towards `role`), unmasked, up to a close frame or a malformed frame. */
function dataMessages(role: Role, bytes: Uint8Array): { compressed: boolean; payload: Uint8Array }[] {
  const messages: { compressed: boolean; payload: Uint8Array }[] = [];
  let current: { compressed: boolean; parts: number[] } | null = null;
  let at = 0;
  while (at + 2 <= bytes.length) {
    const b0 = bytes[at];
    const b1 = bytes[at + 1];
    const opcode = b0 & 0x0f;
    const masked = (b1 & 0x80) !== 0;
    const short = b1 & 0x7f;
    if (short === 127 || masked !== (role === "server")) break;
    const headerLength = (short === 126 ? 4 : 2) + (masked ? 4 : 0);
    const length = short === 126 ? (bytes[at + 2] << 8) | bytes[at + 3] : short;
    if (at + headerLength + length > bytes.length || opcode === 0x8) break;
    if (opcode < 3) {
      if (opcode !== 0) current = { compressed: (b0 & 0x40) !== 0, parts: [] };
      if (current === null) break;
      for (let i = 0; i < length; i++) current.parts.push(bytes[at + headerLength + i] ^ (masked ? bytes[at + headerLength - 4 + (i & 3)] : 0));
      if (b0 & 0x80) {
        messages.push({ compressed: current.compressed, payload: Uint8Array.from(current.parts) });
        current = null;
      }
    }
    at += headerLength + length;
  }
  return messages;
}

/** Events up to and including the first error or close. */
export function upToVerdict(events: readonly Normalized[]): Normalized[] {
  const i = events.findIndex((e) => e.type === "error" || e.type === "close");
  return i < 0 ? [...events] : events.slice(0, i + 1);
}
