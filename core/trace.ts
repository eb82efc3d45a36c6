/**
 * The trace hook: an optional callback (`ConnectionOptions.trace`) that sees each frame read or
 * written and each ready-state change, so that protocol problems can be seen in production. The
 * core only builds the records; what to do with them (print, count, sample) is the owner's.
 */
import type { Connection } from "./connection.ts";
import { CloseCode } from "./errors.ts";
import { type ReadyState } from "./events.ts";
import { type FrameHandler, MAX_CONTROL_PAYLOAD, Opcode, RSV1, RSV2, RSV3, isControlOpcode } from "./frame.ts";
import { lenientDecoder } from "./utf8.ts";

/** Payload bytes shown in a frame record's `preview`; the rest is elided. */
export const TRACE_PREVIEW_BYTES = 32;

export type TraceRecord =
  | {
    type: "frame";
    /** "in": read from the peer; "out": written to the output. */
    direction: "in" | "out";
    opcode: number;
    /** The opcode's name (RFC 6455 §5.2): "text", "binary", "continuation", "close", "ping", "pong". */
    kind: string;
    fin: boolean;
    /** RSV bits as in the first header byte (0x40 = RSV1). */
    rsv: number;
    /** Payload length, in bytes. */
    length: number;
    /** The payload's first bytes: text (JSON-quoted) for the frames of a text message, hex otherwise; "…" when cut. */
    preview: string;
    /** A close frame's code (1005: none), its name (RFC 6455 §7.4.1) and reason. */
    close?: { code: number; name: string; reason: string };
  }
  | { type: "state"; from: ReadyState; to: ReadyState; name: "CONNECTING" | "OPEN" | "CLOSING" | "CLOSED" };

/** Called with each record and the connection it is about (one hook may serve many connections). */
export type TraceHook = (record: TraceRecord, connection: Connection) => void;

/** What the parts of a connection call: the hook with the connection bound. */
export type TraceSink = (record: TraceRecord) => void;

const OPCODE_NAMES: Record<number, string> = {
  [Opcode.CONTINUATION]: "continuation",
  [Opcode.TEXT]: "text",
  [Opcode.BINARY]: "binary",
  [Opcode.CLOSE]: "close",
  [Opcode.PING]: "ping",
  [Opcode.PONG]: "pong",
};

const STATE_NAMES = ["CONNECTING", "OPEN", "CLOSING", "CLOSED"] as const;

const CLOSE_CODE_NAMES = new Map<number, string>(Object.entries(CloseCode).map(([name, code]) => [code, name]));

/** The name of a close code (RFC 6455 §7.4.1): a registered one, or its range (§7.4.2). */
export function closeCodeName(code: number): string {
  const name = CLOSE_CODE_NAMES.get(code);
  if (name !== undefined) return name;
  if (code >= 3000 && code <= 3999) return "REGISTERED"; // §7.4.2: libraries, frameworks, applications
  if (code >= 4000 && code <= 4999) return "PRIVATE";
  return "UNKNOWN";
}

/**
 * A frame record; `payload` may be a prefix of the payload: at least its first TRACE_PREVIEW_BYTES,
 * and all of a close frame's.
 */
export function frameRecord(
  direction: "in" | "out",
  opcode: number,
  fin: boolean,
  rsv: number,
  length: number,
  payload: Uint8Array,
  text = opcode === Opcode.TEXT,
): TraceRecord {
  const shown = payload.subarray(0, Math.min(payload.length, TRACE_PREVIEW_BYTES));
  const cut = length > shown.length ? "…" : "";
  const record: TraceRecord = {
    type: "frame",
    direction,
    opcode,
    kind: OPCODE_NAMES[opcode] ?? `reserved-${opcode}`,
    fin,
    rsv,
    length,
    preview: shown.length === 0 ? cut : text ? JSON.stringify(lenientDecoder.decode(shown)) + cut : hex(shown) + cut,
  };
  // RFC 6455 §5.5.1: a 2-byte code, then a UTF-8 reason; the whole payload is at most 125 bytes.
  if (opcode === Opcode.CLOSE) {
    const code = payload.length >= 2 ? (payload[0] << 8) | payload[1] : CloseCode.NO_STATUS;
    const reason = payload.length > 2 ? lenientDecoder.decode(payload.subarray(2)) : "";
    record.close = { code, name: closeCodeName(code), reason };
  }
  return record;
}

export function stateRecord(from: ReadyState, to: ReadyState): TraceRecord {
  return { type: "state", from, to, name: STATE_NAMES[to] };
}

/** One line for a log: "< text fin len=5 "hello"", "> close fin len=2 1000 NORMAL", "state OPEN". */
export function formatTraceRecord(record: TraceRecord): string {
  if (record.type === "state") return `state ${record.name}`;
  const flags = (record.fin ? " fin" : "") + (record.rsv & RSV1 ? " rsv1" : "") + (record.rsv & RSV2 ? " rsv2" : "") + (record.rsv & RSV3 ? " rsv3" : "");
  const arrow = record.direction === "in" ? "<" : ">";
  const what = record.close
    ? ` ${record.close.code} ${record.close.name}${record.close.reason ? ` ${JSON.stringify(record.close.reason)}` : ""}`
    : record.length !== 0 ? ` ${record.preview}` : "";
  return `${arrow} ${record.kind}${flags} len=${record.length}${what}`;
}

/**
 * Stands between the frame parser and the message assembler while a trace hook is set: records
 * each frame read, with the first bytes of its payload, before what it causes. A frame's record
 * waits for its payload, unless another record comes first (our close frame after a frame refused
 * on its header, a frame sent between two reads of its payload): it then goes out at once, with
 * the part of the preview read so far. It offers no `takeWholePayload`, so every payload takes
 * the general path, which gives the same events.
 */
export class FrameTracer implements FrameHandler {
  /** The message assembler; set once it is made. */
  inner: FrameHandler | null = null;
  private readonly sink: TraceSink;
  private opcode = 0;
  private fin = false;
  private rsv = 0;
  private length = 0;
  /** The current message read is text: its continuation frames are shown as text. */
  private text = false;
  /** The same for the messages written. */
  private textOut = false;
  /** The current frame's record is still to be made. */
  private pending = false;
  /** The first payload bytes of the frame being read, copied (a piece may be a view of a reused chunk). */
  preview: Uint8Array = new Uint8Array(MAX_CONTROL_PAYLOAD);
  private previewLength = 0;

  constructor(sink: TraceSink) {
    this.sink = sink;
  }

  /** What every part of the connection records through: a frame read is recorded before what follows it. */
  readonly record: TraceSink = (record) => {
    if (this.pending) this.flush();
    this.sink(record);
  };

  onFrameStart(opcode: number, fin: boolean, rsv: number, length: number): boolean {
    this.opcode = opcode;
    this.fin = fin;
    this.rsv = rsv;
    this.length = length;
    this.previewLength = 0;
    this.pending = true;
    if (opcode === Opcode.TEXT || opcode === Opcode.BINARY) this.text = opcode === Opcode.TEXT;
    return this.inner!.onFrameStart(opcode, fin, rsv, length);
  }

  onFramePayload(data: Uint8Array, frameEnd: boolean): boolean {
    // A control frame's whole payload (at most 125 bytes), for the close code and reason.
    const room = (isControlOpcode(this.opcode) ? MAX_CONTROL_PAYLOAD : TRACE_PREVIEW_BYTES) - this.previewLength;
    if (this.pending && room > 0 && data.length !== 0) {
      const part = data.subarray(0, room);
      this.preview.set(part, this.previewLength);
      this.previewLength += part.length;
    }
    if (frameEnd && this.pending) this.flush();
    return this.inner!.onFramePayload(data, frameEnd);
  }

  onFrameError(closeCode: number, reason: string): void {
    this.inner!.onFrameError(closeCode, reason);
  }

  /** A frame written; `payload` may be a prefix of it (see `frameRecord`). */
  frameOut(opcode: number, fin: boolean, rsv: number, length: number, payload: Uint8Array): void {
    if (opcode === Opcode.TEXT || opcode === Opcode.BINARY) this.textOut = opcode === Opcode.TEXT;
    const text = opcode === Opcode.TEXT || (opcode === Opcode.CONTINUATION && this.textOut);
    this.record(frameRecord("out", opcode, fin, rsv, length, payload, text));
  }

  private flush(): void {
    this.pending = false;
    const text = this.opcode === Opcode.TEXT || (this.opcode === Opcode.CONTINUATION && this.text);
    this.sink(frameRecord("in", this.opcode, this.fin, this.rsv, this.length, this.preview.subarray(0, this.previewLength), text));
  }
}

function hex(bytes: Uint8Array): string {
  let out = "";
  for (let i = 0; i < bytes.length; i++) out += (bytes[i] < 16 ? "0" : "") + bytes[i].toString(16);
  return out;
}
