/**
 * The closing handshake (RFC 6455 §7) and the ready state derived from it: both close frames,
 * who sent the first, whether the connection failed, which side ends the TCP connection, and
 * the one place where `readyState` changes. The connection decides when; this records what.
 */
import { EMPTY_BYTES, textEncoder } from "./bytes.ts";
import { CloseCode, WebSocketError, isValidCloseCode } from "./errors.ts";
import { type CloseFrame, type ConnectionEvent, ReadyState } from "./events.ts";
import { MAX_CONTROL_PAYLOAD } from "./frame.ts";
import { type TraceSink, stateRecord } from "./trace.ts";
import { decodeUtf8 } from "./utf8.ts";

/** RFC 6455 §5.5: a close frame's reason fits in 125 - 2 bytes. */
export const MAX_CLOSE_REASON = MAX_CONTROL_PAYLOAD - 2;

export class ClosingHandshake {
  /** The ready state; changed only by `open`, `closing` and `closed` below. */
  state: ReadyState = ReadyState.CONNECTING;
  /** Our close frame is queued: nothing more may be sent. */
  closeSent = false;
  /** Our close frame is in the output: frames queued before it are written, none after. */
  closeWritten = false;
  /** We failed the connection (RFC 6455 §7.1.7). */
  failed = false;
  /**
   * The connection ended before our own close(): by the peer's close frame, its EOF, a failure or
   * a timeout. A send then lost a race and is dropped, where after our own close() it is misuse.
   */
  sendsDropped = false;
  /** The transport is to be closed once the output is written (RFC 6455 §7.1.1). */
  transportDone = false;
  sent: CloseFrame | null = null;
  received: CloseFrame | null = null;
  /** Who sent the first close frame; null while neither has. */
  initiator: "local" | "remote" | null = null;
  /** When the state became CLOSING, and CLOSED (the owner's clock). */
  closingAt = 0;
  closedAt = 0;
  /** RFC 6455 §7.1.1: the server ends the TCP connection first; a client waits for it. */
  readonly endsTcpFirst: boolean;
  private readonly trace: TraceSink | null;

  constructor(isClient: boolean, trace: TraceSink | null) {
    this.endsTcpFirst = !isClient;
    this.trace = trace;
  }

  /** The opening handshake succeeded (RFC 6455 §4.1, §4.2.2). */
  open(): void {
    this.enter(ReadyState.OPEN);
  }

  /** A close frame of ours is queued; the first one makes us the initiator. */
  closeQueued(): void {
    this.closeSent = true;
    this.initiator ??= "local";
  }

  /** Our close frame reached the output. Our own payloads are valid (RFC 6455 §5.5.1). */
  closeFrameWritten(payload: Uint8Array): void {
    this.closeWritten = true;
    this.sent = {
      code: payload.length >= 2 ? (payload[0] << 8) | payload[1] : CloseCode.NO_STATUS,
      reason: payload.length > 2 ? decodeUtf8(payload.subarray(2)) ?? "" : "",
    };
  }

  /** The peer's close frame arrived, already validated (`parseClosePayload`). */
  closeFrameReceived(code: number, reason: string): void {
    this.initiator ??= "remote";
    this.received = { code, reason };
  }

  /** The closing handshake is under way (RFC 6455 §7.1.2, §7.1.7). */
  closing(now: number): void {
    this.enter(ReadyState.CLOSING);
    this.closingAt = now;
  }

  /** Enters CLOSED and returns the close event, once; null if already closed. */
  closed(now: number, code: number, reason: string, wasClean: boolean): ConnectionEvent | null {
    if (this.state === ReadyState.CLOSED) return null;
    this.enter(ReadyState.CLOSED);
    this.closedAt = now;
    return { type: "close", code, reason, wasClean, sent: this.sent, received: this.received, initiator: this.initiator };
  }

  private enter(state: ReadyState): void {
    const from = this.state;
    this.state = state;
    if (this.trace !== null && from !== state) this.trace(stateRecord(from, state));
  }
}

/**
 * The payload of a close frame we send (RFC 6455 §5.5.1): nothing, or a sendable code
 * (RFC 6455 §7.4) and a reason of at most 123 bytes of UTF-8.
 */
export function closePayload(code: number | undefined, reason = ""): Uint8Array {
  if (code === undefined) {
    if (reason !== "") throw new WebSocketError("ERR_INVALID_ARGUMENT", "a close reason needs a close code");
    return EMPTY_BYTES;
  }
  if (!Number.isInteger(code) || !isValidCloseCode(code)) {
    throw new WebSocketError("ERR_INVALID_CLOSE_CODE", `close code ${code} may not be sent`);
  }
  const reasonBytes = textEncoder.encode(reason);
  if (reasonBytes.length > MAX_CLOSE_REASON) {
    throw new WebSocketError("ERR_REASON_TOO_LONG", `close reason is ${reasonBytes.length} bytes; at most ${MAX_CLOSE_REASON} fit`);
  }
  const payload = new Uint8Array(2 + reasonBytes.length);
  payload[0] = code >>> 8;
  payload[1] = code & 0xff;
  payload.set(reasonBytes, 2);
  return payload;
}

/**
 * A received close frame's code (1005 when it has none) and reason (RFC 6455 §5.5.1, §7.4: an
 * optional 2-byte code, then an optional UTF-8 reason), or the close code and reason to fail with.
 */
export function parseClosePayload(payload: Uint8Array): CloseFrame | { failCode: number; reason: string } {
  if (payload.length === 0) return { code: CloseCode.NO_STATUS, reason: "" };
  if (payload.length === 1) return { failCode: CloseCode.PROTOCOL_ERROR, reason: "close frame with a 1-byte payload" };
  const code = (payload[0] << 8) | payload[1];
  if (!isValidCloseCode(code)) return { failCode: CloseCode.PROTOCOL_ERROR, reason: `invalid close code ${code}` };
  const reason = decodeUtf8(payload.subarray(2));
  if (reason === null) return { failCode: CloseCode.INVALID_PAYLOAD, reason: "close reason is not valid UTF-8" };
  return { code, reason };
}
