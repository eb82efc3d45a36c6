/**
 * One conformance case on one connection, in either role: the fuzzer's half of the WebSocket
 * protocol (lenient where the case misbehaves on purpose, strict in what it expects of the
 * peer), the timers of a case (kill after, close after, wait) and the judgement, the way the
 * Autobahn|Testsuite judges: the events received are compared with each expected outcome
 * (OK, NON-STRICT, ...), and the closing behaviour with the expected closing (who closed,
 * with which code, cleanly or not).
 *
 * Two rules are stricter than Autobahn's, because the RFC is: anything the peer sends that
 * breaks RFC 6455 (a masked server frame, RSV bits, a reserved opcode, invalid UTF-8 in a text
 * message, a bad close frame, a frame after its close frame) fails the case; and a peer that
 * was expected to fail the connection and still had not done so when the fuzzer gave up fails
 * the case (Autobahn only notes that the fuzzer dropped the connection).
 */
import type { Transport, TransportHandler } from "../../adapters/shared/transport.ts";
import {
  closePayload,
  type ByteSource,
  bytes,
  concat,
  decodeUtf8,
  equalBytes,
  type Frame,
  FrameReader,
  frameBytes,
  isUtf8,
  OP,
  Random,
  toHex,
  yieldToPeer,
} from "./wire.ts";
import { DeflateEngine, type DeflateCase, type Negotiated } from "./deflate.ts";

// ---- results --------------------------------------------------------------------------------

/** The verdicts of the summary, best first. */
export const VERDICTS = ["OK", "NON-STRICT", "INFORMATIONAL", "FAILED", "PENDING", "SKIPPED"] as const;
export type Verdict = (typeof VERDICTS)[number];

/** Autobahn's behaviour of the events, and of the closing. */
export type Behavior = "OK" | "NON-STRICT" | "INFORMATIONAL" | "FAILED";
export type CloseBehavior = "OK" | "WRONG CODE" | "UNCLEAN" | "FAILED BY CLIENT" | "FAILED" | "INFORMATIONAL";

export interface CaseResult {
  id: string;
  section: number;
  description: string;
  verdict: Verdict;
  behavior: Behavior | "-";
  behaviorClose: CloseBehavior | "-";
  /** Why, in one line: what was expected and what was observed. */
  observed: string;
  /** The events received, summarized. */
  received: string;
  remoteCloseCode: number | null;
  remoteCloseReason: string | null;
  closedByMe: boolean;
  droppedByMe: boolean;
  wasClean: boolean;
  durationMs: number;
  /** The case reports its time (section 9). */
  timed: boolean;
  notes: string[];
}

/** The result of a case that was not run. */
export function notRun(c: { id: string; section: number; description: string }, verdict: "PENDING" | "SKIPPED", why: string): CaseResult {
  return {
    id: c.id,
    section: c.section,
    description: c.description,
    verdict,
    behavior: "-",
    behaviorClose: "-",
    observed: why,
    received: "",
    remoteCloseCode: null,
    remoteCloseReason: null,
    closedByMe: false,
    droppedByMe: false,
    wasClean: false,
    durationMs: 0,
    timed: false,
    notes: [],
  };
}

// ---- events ---------------------------------------------------------------------------------

export type RxEvent =
  | { type: "message"; binary: boolean; data: Uint8Array }
  | { type: "ping"; data: Uint8Array }
  | { type: "pong"; data: Uint8Array }
  /** A wait of the case ran out while the connection was still open (Autobahn's "timeout"). */
  | { type: "timeout"; label: string };

export const ev = {
  text: (data: ByteSource): RxEvent => ({ type: "message", binary: false, data: bytes(data) }),
  binary: (data: ByteSource): RxEvent => ({ type: "message", binary: true, data: bytes(data) }),
  pong: (data: ByteSource = ""): RxEvent => ({ type: "pong", data: bytes(data) }),
  ping: (data: ByteSource = ""): RxEvent => ({ type: "ping", data: bytes(data) }),
  timeout: (label: string): RxEvent => ({ type: "timeout", label }),
};

function sameEvent(a: RxEvent, b: RxEvent): boolean {
  if (a.type !== b.type) return false;
  if (a.type === "timeout") return a.label === (b as typeof a).label;
  if (a.type === "message" && a.binary !== (b as typeof a).binary) return false;
  return equalBytes(a.data, (b as { data: Uint8Array }).data);
}

function sameEvents(a: readonly RxEvent[], b: readonly RxEvent[]): boolean {
  return a.length === b.length && a.every((e, i) => sameEvent(e, b[i]));
}

export function describeEvent(e: RxEvent): string {
  if (e.type === "timeout") return `timeout ${e.label}`;
  const kind = e.type === "message" ? (e.binary ? "binary" : "text") : e.type;
  const data = e.data;
  if (data.length === 0) return `${kind}()`;
  if (data.length <= 24) {
    const text = e.type === "message" && e.binary ? null : decodeUtf8(data);
    return text !== null && /^[\x20-\x7e]*$/.test(text) ? `${kind}("${text}")` : `${kind}(0x${toHex(data)})`;
  }
  return `${kind}(${data.length} B)`;
}

export function describeEvents(events: readonly RxEvent[]): string {
  if (events.length === 0) return "nothing";
  const shown = events.slice(0, 6).map(describeEvent);
  if (events.length > 6) shown.push(`… ${events.length - 6} more`);
  return shown.join(", ");
}

// ---- what a case says and does --------------------------------------------------------------

export interface ExpectedClose {
  /** The fuzzer starts the closing handshake (true), or the peer fails/closes the connection. */
  closedByMe: boolean;
  /** Acceptable close codes in the peer's close frame (none at all is acceptable too). */
  closeCode: number[];
  /** Both close frames must be exchanged. */
  requireClean: boolean;
  /** Closing by the wrong endpoint fails the events too (UTF-8 cases: the peer did not notice). */
  closedByWrongEndpointIsFatal?: boolean;
}

export interface Settings {
  /** Milliseconds of the waits that cases need to observe (5.19, 5.20, 6.4.x fail-fast). */
  patience: number;
  /** Multiplies the give-up timers of the cases (kill after, close after). */
  timeScale: number;
  /** Milliseconds to wait for the peer's close frame after ours. */
  closeTimeout: number;
  /** Milliseconds a fuzzing client waits for the server to close TCP after the closing handshake. */
  serverDropTimeout: number;
  /** Largest message a case may send; larger cases are SKIPPED. */
  maxMessageSize: number;
  /** Seed of the masking keys (and any other randomness). */
  seed: number;
  /** Messages per case in sections 12 and 13 (Autobahn: 1000). */
  deflateMessages: number;
}

export const DEFAULT_SETTINGS: Settings = {
  patience: 250,
  timeScale: 2,
  closeTimeout: 2000,
  serverDropTimeout: 1000,
  maxMessageSize: 4 * 1024 * 1024,
  seed: 0,
  deflateMessages: 10,
};

export interface SendFrame {
  opcode: number;
  payload?: ByteSource;
  fin?: boolean;
  /** The 3-bit RSV field, 0–7. */
  rsv?: number;
  /** Masking key: by default a random one from a client, none from a server. */
  mask?: Uint8Array | null;
  /** Write the frame in pieces of this many bytes, each reaching the peer on its own. */
  chop?: number;
  /** Write the frame, then let it reach the peer before anything else is written. */
  sync?: boolean;
  /**
   * false: the pieces (`chop`, `sync`) are separate writes, but not waited for, as Autobahn writes
   * them: the peer may read several at once, and must keep its order whatever it reads together.
   */
  paced?: boolean;
}

export interface MessageOptions {
  binary?: boolean;
  /** Frames of at most this many payload bytes (of the compressed payload, if compressed). */
  fragmentSize?: number;
  chop?: number;
  sync?: boolean;
  /** Compress with the negotiated permessage-deflate (RSV1 on the first frame). */
  compress?: boolean;
}

/** What a case's code sees: the Autobahn protocol-instance API, re-done. */
export interface CaseContext {
  /** The fuzzer's role: "client" runs against a server under test, "server" against a client. */
  readonly role: "client" | "server";
  readonly settings: Settings;
  /** The fragment size the peer under test was configured to send with, if any (section 10). */
  readonly peerFragmentSize: number | undefined;
  readonly received: RxEvent[];
  /** Frames received from the peer: [opcode, payload length, fin] of each data frame. */
  readonly rxDataFrames: [number, number, boolean][];
  /** The permessage-deflate agreement of the opening handshake, if any (sections 12, 13). */
  readonly deflate: Negotiated | null;
  /** The connection is open: no close frame was sent or received. */
  readonly isOpen: boolean;
  /** The close event arrived from the peer (its close frame). */
  readonly closeReceived: boolean;
  expect(outcomes: Partial<Record<Behavior, RxEvent[]>>, close: ExpectedClose): void;
  /** Do not start the closing handshake when the expected events are complete. */
  suppressClose: boolean;
  /** Set by cases that judge their events themselves (section 9). */
  behavior: Behavior | null;
  result: string;
  sendFrame(frame: SendFrame): Promise<void>;
  /** A message in frames of at most `fragmentSize` payload bytes. */
  sendMessage(payload: ByteSource, options?: MessageOptions): Promise<void>;
  /** Raw bytes (a header crafted by hand). */
  sendRaw(data: Uint8Array, options?: { chop?: number; sync?: boolean }): Promise<void>;
  /** A proper close frame: starts (or answers) the closing handshake. */
  sendClose(code?: number, reason?: ByteSource): Promise<void>;
  /** A close frame with any payload (1 byte, an invalid code or reason...): starts the closing handshake. */
  sendCloseRaw(payload: Uint8Array): Promise<void>;
  /** Drops TCP after `ms` (scaled) unless it is closed by then. */
  killAfter(ms: number): void;
  /** Starts the closing handshake after `ms` (scaled) unless it started by then. */
  closeAfter(ms: number): void;
  /** Waits `ms` (not scaled). */
  wait(ms: number): Promise<void>;
  note(text: string): void;
  /** The time since the connection opened, in ms. */
  elapsed(): number;
}

export interface CaseDef {
  /** Autobahn's case number, e.g. "6.4.1"; cases added by anyws say so in their description. */
  id: string;
  section: number;
  description: string;
  expectation: string;
  /** Not runnable yet (permessage-deflate): listed as PENDING, with why. */
  pending?: string;
  /** Largest message the case sends (compared with `maxMessageSize`). */
  messageSize?: number;
  /** The case reports its duration (section 9). */
  timed?: boolean;
  /** A short label for the timing tables, e.g. "4 MiB / 64". */
  label?: string;
  /** The peer under test should send with this fragment size (section 10). */
  peerFragmentSize?: number;
  /** Negotiate permessage-deflate in the opening handshake (sections 12, 13). */
  deflate?: DeflateCase;
  /** Hard limit on the whole case, ms (scaled); default 15 s. */
  timeout?: number;
  /** Called once the connection is open. */
  run(ctx: CaseContext): void | Promise<void>;
  /** Takes a received event before the default handling (appending it); true if handled. */
  onEvent?(ctx: CaseContext, event: RxEvent): boolean;
  /** Adjusts the judgement once the connection is gone. */
  judge?(ctx: CaseContext, r: CaseResult): void;
}

// ---- the session ----------------------------------------------------------------------------

const VALID_CLOSE = (code: number) => (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999);
const MAX_RECORDED_FRAMES = 200_000;

/**
 * A case running on one connection. Created once the opening handshake is done; the owner
 * routes the transport's events to it (it is the TransportHandler from then on).
 */
export class Session implements CaseContext, TransportHandler {
  readonly role: "client" | "server";
  readonly settings: Settings;
  readonly peerFragmentSize: number | undefined;
  readonly received: RxEvent[] = [];
  readonly rxDataFrames: [number, number, boolean][] = [];
  readonly deflate: Negotiated | null;
  suppressClose = false;
  behavior: Behavior | null = null;
  result = "";

  /** Resolves with the result once the TCP connection is closed. */
  readonly done: Promise<CaseResult>;

  private readonly def: CaseDef;
  private readonly transport: Transport;
  private readonly random: Random;
  private readonly reader = new FrameReader();
  private expected = new Map<Behavior, RxEvent[]>();
  private expectedClose: ExpectedClose = { closedByMe: true, closeCode: [1000], requireClean: true };
  private readonly notes: string[] = [];
  private readonly violations: string[] = [];
  private message: { opcode: number; chunks: Uint8Array[]; size: number; compressed: boolean } | null = null;
  private readonly inflater: DeflateEngine | null = null;
  private readonly deflater: DeflateEngine | null = null;
  /** With permessage-deflate, frames are handled in order through this chain (inflating is async). */
  private rxChain: Promise<void> = Promise.resolve();
  private compressedReceived = 0;
  private messagesReceived = 0;
  private writes: Promise<void> = Promise.resolve();
  private drainWaiters: (() => void)[] = [];
  private readonly timers = new Set<ReturnType<typeof setTimeout>>();
  private readonly startedAt = performance.now();
  private resolveDone!: (r: CaseResult) => void;

  // The closing, as Autobahn records it.
  private closeSent = false;
  private closeReceivedFlag = false;
  private closedByMe = false;
  private failedByMe = false;
  private droppedByMe = false;
  private tcpClosingByMe = false;
  private tcpEndedByPeer = false;
  private tcpClosed = false;
  private wasClean = false;
  private gaveUpWaitingForPeer = false;
  private closeFrameProblem: string | null = null;
  private remoteCloseCode: number | null = null;
  private remoteCloseReason: string | null = null;

  constructor(options: {
    role: "client" | "server";
    def: CaseDef;
    transport: Transport;
    settings: Settings;
    random: Random;
    peerFragmentSize?: number;
    deflate?: Negotiated | null;
  }) {
    this.role = options.role;
    this.def = options.def;
    this.transport = options.transport;
    this.settings = options.settings;
    this.random = options.random;
    this.peerFragmentSize = options.peerFragmentSize;
    this.deflate = options.deflate ?? null;
    const d = this.deflate;
    if (d) {
      // The fuzzer sends as its role, receives as the peer's.
      const mine = this.role === "client" ? [d.clientMaxWindowBits, d.clientNoContextTakeover] as const : [d.serverMaxWindowBits, d.serverNoContextTakeover] as const;
      const theirs = this.role === "client" ? [d.serverMaxWindowBits, d.serverNoContextTakeover] as const : [d.clientMaxWindowBits, d.clientNoContextTakeover] as const;
      this.deflater = new DeflateEngine("deflate", mine[0], mine[1]);
      this.inflater = new DeflateEngine("inflate", theirs[0], theirs[1]);
    }
    this.done = new Promise((resolve) => (this.resolveDone = resolve));
  }

  /** Runs the case; `rest` are bytes that came with the handshake. */
  start(rest: Uint8Array): void {
    const limit = (this.def.timeout ?? 15_000) * this.settings.timeScale;
    this.timer(limit, () => {
      this.note(`case did not finish within ${limit} ms: dropped`);
      this.gaveUpWaitingForPeer ||= !this.closeReceivedFlag;
      this.drop();
    });
    if (rest.length) this.onData(rest);
    Promise.resolve()
      .then(() => this.def.run(this))
      .catch((error) => {
        this.violations.push(`the case itself threw: ${error instanceof Error ? error.stack : String(error)}`);
        this.drop();
      });
  }

  // ---- CaseContext --------------------------------------------------------------------------

  get isOpen(): boolean {
    return !this.closeSent && !this.closeReceivedFlag && !this.tcpClosed;
  }

  get closeReceived(): boolean {
    return this.closeReceivedFlag;
  }

  expect(outcomes: Partial<Record<Behavior, RxEvent[]>>, close: ExpectedClose): void {
    this.expected = new Map(Object.entries(outcomes) as [Behavior, RxEvent[]][]);
    this.expectedClose = close;
  }

  sendFrame(f: SendFrame): Promise<void> {
    const mask = f.mask !== undefined ? f.mask : this.role === "client" ? this.random.bytes(4) : null;
    const frame = frameBytes(f.opcode, bytes(f.payload ?? ""), f.fin ?? true, f.rsv ?? 0, mask);
    return this.write(frame, f.chop, f.sync, f.paced);
  }

  sendMessage(payload: ByteSource, options: MessageOptions = {}): Promise<void> {
    if (options.compress) {
      if (!this.deflater) throw new Error("sendMessage({ compress }) without a negotiated permessage-deflate");
      const compressed = this.deflater.process(bytes(payload));
      return this.write(compressed.then((c) => this.messageFrames(c, options, 4)), options.chop, options.sync);
    }
    const data = bytes(payload);
    const size = options.fragmentSize ?? Infinity;
    const opcode = options.binary ? OP.BINARY : OP.TEXT;
    if (data.length <= size) return this.sendFrame({ opcode, payload: data, chop: options.chop, sync: options.sync });
    const frames: Uint8Array[] = [];
    for (let offset = 0; offset < data.length; offset += size) {
      const mask = this.role === "client" ? this.random.bytes(4) : null;
      const last = offset + size >= data.length;
      frames.push(frameBytes(offset === 0 ? opcode : OP.CONT, data.subarray(offset, offset + size), last, 0, mask));
    }
    // Written together (one write of many frames), as a sender that fragments would.
    return this.write(concat(frames), options.chop, options.sync);
  }

  /** A message's frames, written together; `rsv` on the first. */
  private messageFrames(data: Uint8Array, options: MessageOptions, rsv: number): Uint8Array {
    const size = options.fragmentSize || Infinity;
    const opcode = options.binary ? OP.BINARY : OP.TEXT;
    const frames: Uint8Array[] = [];
    for (let offset = 0; offset === 0 || offset < data.length; offset += size) {
      const mask = this.role === "client" ? this.random.bytes(4) : null;
      const last = offset + size >= data.length;
      frames.push(frameBytes(offset === 0 ? opcode : OP.CONT, data.subarray(offset, offset + size), last, offset === 0 ? rsv : 0, mask));
    }
    return frames.length === 1 ? frames[0] : concat(frames);
  }

  sendRaw(data: Uint8Array, options: { chop?: number; sync?: boolean } = {}): Promise<void> {
    return this.write(data, options.chop, options.sync);
  }

  sendClose(code?: number, reason: ByteSource = ""): Promise<void> {
    return this.sendCloseRaw(closePayload(code, reason));
  }

  sendCloseRaw(payload: Uint8Array): Promise<void> {
    if (this.closeSent || this.tcpClosed) return this.writes;
    this.closeSent = true;
    if (!this.closeReceivedFlag) this.closedByMe = true;
    const written = this.sendFrame({ opcode: OP.CLOSE, payload });
    this.afterCloseSent();
    return written;
  }

  killAfter(ms: number): void {
    this.timer(ms * this.settings.timeScale, () => {
      if (this.tcpClosed) return;
      if (!this.closeReceivedFlag && !this.closeSent) this.gaveUpWaitingForPeer = true;
      this.note(`killed after ${ms * this.settings.timeScale} ms`);
      this.failedByMe = true;
      this.drop();
    });
  }

  closeAfter(ms: number): void {
    this.timer(ms * this.settings.timeScale, () => {
      if (this.isOpen) void this.sendClose(1000);
    });
  }

  wait(ms: number): Promise<void> {
    return new Promise((resolve) => this.timer(ms, resolve));
  }

  note(text: string): void {
    if (this.notes.length < 20) this.notes.push(text);
  }

  elapsed(): number {
    return performance.now() - this.startedAt;
  }

  // ---- TransportHandler ---------------------------------------------------------------------

  onData(chunk: Uint8Array): void {
    if (this.tcpClosed) return;
    let frames: Frame[];
    try {
      frames = this.reader.push(chunk);
    } catch (error) {
      this.violation(1009, `unreadable frame: ${(error as Error).message}`);
      return;
    }
    if (this.deflate) {
      const error = this.reader.error;
      this.rxChain = this.rxChain.then(async () => {
        for (const frame of frames) await this.onFrame(frame);
        if (error !== null) this.violation(1009, error);
      });
      return;
    }
    for (const frame of frames) void this.onFrame(frame);
    if (this.reader.error !== null) this.violation(1009, this.reader.error);
  }

  onEnd(): void {
    if (!this.tcpClosingByMe) this.tcpEndedByPeer = true;
    // The peer will send nothing more; close our side too (Autobahn: connection lost).
    this.tcpClosingByMe = true;
    this.transport.end();
  }

  onDrain(): void {
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const w of waiters) w();
  }

  onClose(error?: Error): void {
    if (this.tcpClosed) return;
    this.tcpClosed = true;
    if (!this.tcpClosingByMe && !this.tcpEndedByPeer) {
      // Closed without a FIN from either side first: the peer reset (or dropped) the connection.
      this.tcpEndedByPeer = true;
      if (error) this.note(`connection reset by the peer: ${error.message}`);
    }
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.onDrain();
    if (!this.deflate) return this.resolveDone(this.judge());
    // Messages still being inflated are part of what was received.
    void this.rxChain.then(() => {
      this.deflater?.close();
      this.inflater?.close();
      this.resolveDone(this.judge());
    });
  }

  // ---- frames in ----------------------------------------------------------------------------

  private onFrame(f: Frame): void | Promise<void> {
    if (this.closeReceivedFlag) {
      this.violation(null, `${opcodeName(f.opcode)} frame after the peer's close frame`);
      return;
    }
    const isControl = (f.opcode & 0x8) !== 0;
    if (this.role === "server" && !f.masked) return this.violation(1002, `unmasked ${opcodeName(f.opcode)} frame from the client (RFC 6455 §5.1)`);
    if (this.role === "client" && f.masked) return this.violation(1002, `masked ${opcodeName(f.opcode)} frame from the server (RFC 6455 §5.1)`);
    if (f.rsv !== 0) {
      const firstOfMessage = f.opcode === OP.TEXT || f.opcode === OP.BINARY;
      if (!this.deflate) return this.violation(1002, `RSV ${f.rsv} on a ${opcodeName(f.opcode)} frame without a negotiated extension (RFC 6455 §5.2)`);
      if (f.rsv !== 4 || !firstOfMessage) {
        return this.violation(1002, `RSV ${f.rsv} on a ${firstOfMessage ? "" : "non-first "}${opcodeName(f.opcode)} frame: permessage-deflate sets RSV1 on the first frame of a message only (RFC 7692 §6)`);
      }
    }
    if ((f.opcode > 2 && f.opcode < 8) || f.opcode > 10) return this.violation(1002, `reserved opcode ${f.opcode} (RFC 6455 §5.2)`);
    if (isControl && (!f.fin || f.payload.length > 125)) {
      return this.violation(1002, `control frame ${f.fin ? "over 125 bytes" : "fragmented"} (RFC 6455 §5.5)`);
    }
    if (!isControl) {
      if (this.rxDataFrames.length < MAX_RECORDED_FRAMES) this.rxDataFrames.push([f.opcode, f.payload.length, f.fin]);
      if (this.closeSent) this.note(`${opcodeName(f.opcode)} frame after our close frame (allowed: sent before ours arrived)`);
      if (f.opcode === OP.CONT) {
        if (this.message === null) return this.violation(1002, "continuation frame without a message (RFC 6455 §5.4)");
      } else {
        if (this.message !== null) return this.violation(1002, "new data frame inside a fragmented message (RFC 6455 §5.4)");
        this.message = { opcode: f.opcode, chunks: [], size: 0, compressed: f.rsv === 4 };
      }
      const m = this.message!;
      if (f.payload.length) m.chunks.push(f.payload);
      m.size += f.payload.length;
      if (!f.fin) return;
      this.message = null;
      const data = concat(m.chunks);
      if (this.inflater) this.messagesReceived++;
      if (m.compressed) return this.inflate(m.opcode, data);
      if (m.opcode === OP.TEXT && !isUtf8(data)) return this.violation(1007, "text message that is not valid UTF-8 (RFC 6455 §8.1)");
      this.event({ type: "message", binary: m.opcode === OP.BINARY, data });
      return;
    }
    if (f.opcode === OP.PING) {
      this.event({ type: "ping", data: f.payload });
      if (!this.closeSent && !this.tcpClosed) void this.sendFrame({ opcode: OP.PONG, payload: f.payload });
      return;
    }
    if (f.opcode === OP.PONG) {
      this.event({ type: "pong", data: f.payload });
      return;
    }
    this.onCloseFrame(f.payload);
  }

  /** A compressed message: inflated with node:zlib (RFC 7692 §7.2.2), then checked like any other. */
  private async inflate(opcode: number, compressed: Uint8Array): Promise<void> {
    let data: Uint8Array;
    try {
      data = await this.inflater!.process(compressed);
    } catch (error) {
      return this.violation(1007, `a compressed message that does not inflate: ${(error as Error).message} (RFC 7692 §7.2.2)`);
    }
    this.compressedReceived++;
    if (opcode === OP.TEXT && !isUtf8(data)) return this.violation(1007, "text message that is not valid UTF-8 once inflated (RFC 6455 §8.1)");
    this.event({ type: "message", binary: opcode === OP.BINARY, data });
  }

  private onCloseFrame(payload: Uint8Array): void {
    this.closeReceivedFlag = true;
    if (payload.length === 1) {
      this.closeFrameProblem = "close frame with a 1-byte payload (RFC 6455 §5.5.1)";
    } else if (payload.length >= 2) {
      this.remoteCloseCode = (payload[0] << 8) | payload[1];
      const reason = decodeUtf8(payload.subarray(2));
      this.remoteCloseReason = reason ?? `0x${toHex(payload.subarray(2))}`;
      if (!VALID_CLOSE(this.remoteCloseCode)) {
        this.closeFrameProblem = `close code ${this.remoteCloseCode} may not be sent (RFC 6455 §7.4)`;
      } else if (reason === null) {
        this.closeFrameProblem = "close reason is not valid UTF-8 (RFC 6455 §5.5.1)";
      }
    }
    if (!this.closeSent) {
      // Answer, echoing the status code (RFC 6455 §5.5.1).
      this.closeSent = true;
      void this.sendFrame({ opcode: OP.CLOSE, payload: payload.length >= 2 ? payload.subarray(0, 2) : new Uint8Array(0) });
    }
    this.wasClean = this.violations.length === 0;
    this.afterCloseSent();
  }

  /** After a close frame went out: wait for the peer's, and close TCP as the roles require. */
  private afterCloseSent(): void {
    if (this.closeReceivedFlag && this.closeSent) {
      if (this.role === "server") {
        this.endTcp(); // RFC 6455 §7.1.1: the server closes TCP first
      } else {
        const ms = this.settings.serverDropTimeout;
        this.timer(ms, () => {
          if (this.tcpClosed || this.tcpEndedByPeer) return;
          this.note(`the server did not close TCP within ${ms} ms of the closing handshake`);
          this.drop();
        });
      }
      return;
    }
    const ms = this.settings.closeTimeout;
    this.timer(ms, () => {
      if (this.tcpClosed || this.closeReceivedFlag) return;
      this.note(`no close frame from the peer within ${ms} ms of ours`);
      this.failedByMe = true;
      this.drop();
    });
  }

  private event(e: RxEvent): void {
    if (this.def.onEvent?.(this, e)) return;
    this.received.push(e);
    this.finishWhenDone();
  }

  /** Autobahn: once the events match the expected ones, the fuzzer closes, if it is to close. */
  private finishWhenDone(): void {
    if (this.expected.size === 0) return;
    for (const outcome of this.expected.values()) if (!sameEvents(this.received, outcome)) return;
    if (this.expectedClose.closedByMe && !this.suppressClose && this.isOpen) void this.sendClose(this.expectedClose.closeCode[0]);
  }

  /** The peer broke the protocol: fail the connection as an endpoint would (RFC 6455 §7.1.7). */
  private violation(code: number | null, what: string): void {
    if (this.violations.length < 10) this.violations.push(what);
    if (code === null || this.tcpClosed) return;
    this.failedByMe = true;
    if (!this.closeSent) {
      this.closeSent = true;
      if (!this.closeReceivedFlag) this.closedByMe = true;
      void this.sendFrame({ opcode: OP.CLOSE, payload: closePayload(code) });
    }
    void this.writes.then(() => this.drop());
  }

  // ---- bytes out ----------------------------------------------------------------------------

  private write(bytesOrPromise: Uint8Array | Promise<Uint8Array>, chop?: number, sync?: boolean, paced = true): Promise<void> {
    this.writes = this.writes.then(async () => {
      const data = await bytesOrPromise;
      if (this.tcpClosed || this.tcpClosingByMe) return;
      if (chop !== undefined && chop > 0 && chop < data.length) {
        for (let offset = 0; offset < data.length; offset += chop) {
          if (this.tcpClosed || this.tcpClosingByMe) return;
          await this.writeNow(data.subarray(offset, offset + chop));
          if (paced) await yieldToPeer();
        }
        return;
      }
      await this.writeNow(data);
      if (sync && paced) await yieldToPeer();
    });
    return this.writes;
  }

  private writeNow(data: Uint8Array): Promise<void> | void {
    if (this.transport.write([data])) return;
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  /** Closes our side of TCP once everything queued is written. */
  private endTcp(): void {
    void this.writes.then(() => {
      if (this.tcpClosed || this.tcpClosingByMe) return;
      if (!this.tcpEndedByPeer) this.droppedByMe = true;
      this.tcpClosingByMe = true;
      this.transport.end();
    });
  }

  /** Drops TCP now. */
  private drop(): void {
    if (this.tcpClosed) return;
    if (!this.tcpEndedByPeer) this.droppedByMe = true;
    this.tcpClosingByMe = true;
    this.transport.destroy();
  }

  private timer(ms: number, fn: () => void): void {
    if (this.tcpClosed) return;
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, ms);
    this.timers.add(t);
  }

  // ---- the judgement ------------------------------------------------------------------------

  private judge(): CaseResult {
    const r: CaseResult = {
      id: this.def.id,
      section: this.def.section,
      description: this.def.description,
      verdict: "FAILED",
      behavior: "FAILED",
      behaviorClose: "FAILED",
      observed: "",
      received: describeEvents(this.received),
      remoteCloseCode: this.remoteCloseCode,
      remoteCloseReason: this.remoteCloseReason,
      closedByMe: this.closedByMe,
      droppedByMe: this.droppedByMe,
      wasClean: this.wasClean,
      durationMs: Math.round(this.elapsed()),
      timed: this.def.timed ?? false,
      notes: this.notes,
    };
    if (this.deflate) this.note(`permessage-deflate "${this.deflate.header}": ${this.compressedReceived} of ${this.messagesReceived} messages from the peer compressed`);
    let result = "Actual events differ from any expected.";
    if (this.behavior !== null) {
      r.behavior = this.behavior;
      result = this.result;
    } else {
      for (const [behavior, outcome] of this.expected) {
        if (sameEvents(this.received, outcome)) {
          r.behavior = behavior;
          result = "";
          break;
        }
      }
      if (r.behavior === "FAILED") {
        const want = [...this.expected].map(([b, o]) => `${b}: ${describeEvents(o)}`).join(" | ");
        result = `expected ${want || "a judgement"}; got ${describeEvents(this.received)}`;
      }
    }

    const x = this.expectedClose;
    let resultClose = "";
    if (x.closedByMe !== this.closedByMe) {
      r.behaviorClose = "FAILED";
      resultClose = x.closedByMe ? "the peer closed first, the fuzzer was to close" : "the fuzzer closed first, the peer was to fail the connection";
    } else if (x.requireClean && !this.wasClean) {
      r.behaviorClose = "UNCLEAN";
      resultClose = "the closing handshake did not complete";
    } else if (this.remoteCloseCode !== null && !x.closeCode.includes(this.remoteCloseCode)) {
      r.behaviorClose = "WRONG CODE";
      resultClose = `close code ${this.remoteCloseCode}, expected ${x.closeCode.join(" or ")}`;
    } else if (this.role === "client" && this.droppedByMe) {
      r.behaviorClose = "FAILED BY CLIENT";
      resultClose = "the fuzzing client had to close TCP (the server should, RFC 6455 §7.1.1)";
    } else {
      r.behaviorClose = "OK";
    }
    if (x.closedByWrongEndpointIsFatal && x.closedByMe !== this.closedByMe) r.behavior = "FAILED";

    // Stricter than Autobahn: RFC violations by the peer, and a peer that never failed.
    const problems = [...this.violations];
    if (this.closeFrameProblem) problems.push(this.closeFrameProblem);
    if (this.gaveUpWaitingForPeer && !x.closedByMe) problems.push("the peer never failed the connection: the fuzzer gave up and dropped it");

    const parts = [result, resultClose, ...problems].filter(Boolean);
    r.observed = [parts.join("; "), this.describeClose()].filter(Boolean).join(" — ");
    this.def.judge?.(this, r);

    const closeBehavior = r.behaviorClose as CloseBehavior | "-"; // the case's judge may have changed it
    if (r.behavior === "INFORMATIONAL" || closeBehavior === "INFORMATIONAL") {
      r.verdict = "INFORMATIONAL";
    } else if (r.behavior === "FAILED" || r.behaviorClose === "FAILED" || r.behaviorClose === "UNCLEAN" || problems.length) {
      r.verdict = "FAILED";
    } else if (r.behavior === "NON-STRICT" || r.behaviorClose === "WRONG CODE" || r.behaviorClose === "FAILED BY CLIENT") {
      r.verdict = "NON-STRICT";
    } else {
      r.verdict = "OK";
    }
    return r;
  }

  /** The closing as observed, in words. */
  private describeClose(): string {
    const code = this.remoteCloseCode === null
      ? this.closeReceivedFlag ? "peer sent an empty close frame" : "no close frame from the peer"
      : `peer close ${this.remoteCloseCode}${this.remoteCloseReason ? ` "${this.remoteCloseReason}"` : ""}`;
    const who = this.closedByMe ? "fuzzer closed first" : this.closeReceivedFlag ? "peer closed first" : "";
    const tcp = this.tcpEndedByPeer ? "TCP closed by the peer" : "TCP closed by the fuzzer";
    return [code, who, this.wasClean ? "clean" : "unclean", tcp].filter(Boolean).join(", ");
  }
}

export function opcodeName(opcode: number): string {
  return ["continuation", "text", "binary"][opcode] ?? (opcode === 8 ? "close" : opcode === 9 ? "ping" : opcode === 10 ? "pong" : `opcode-${opcode}`);
}

