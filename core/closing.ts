/**
 * The closing handshake (RFC 6455 §7) and the ready state derived from it: both close frames,
 * who sent the first, whether the connection failed, which side ends the TCP connection, and
 * the one place where `readyState` changes. The connection decides when; this records what.
 * A layer of the connection (options.ts tells the layers).
 */
import { EMPTY_BYTES, textEncoder } from "./bytes.ts";
import { CloseCode, WebSocketError, isValidCloseCode } from "./errors.ts";
import { type CloseFrame, type ConnectionEvent, EventQueue, ReadyState } from "./events.ts";
import { MAX_CONTROL_PAYLOAD } from "./frame.ts";
import { stateRecord } from "./trace.ts";
import { decodeUtf8 } from "./utf8.ts";

/** RFC 6455 §5.5: a close frame's reason fits in 125 - 2 bytes. */
export const MAX_CLOSE_REASON = MAX_CONTROL_PAYLOAD - 2;

const CLOSE_SENT = 1;
const CLOSE_WRITTEN = 2;
const FAILED = 4;
const SENDS_DROPPED = 8;
const TRANSPORT_DONE = 16;

class CloseRecord {
  sent: CloseFrame | null = null;
  received: CloseFrame | null = null;
  initiator: "local" | "remote" | null = null;
}

/** The closing-handshake layer (options.ts tells the layers): the record of both close frames and the ready state. */
export class ClosingHandshake extends EventQueue {
  /** The ready state; changed only by `enterOpen`, `enterClosing` and `enterClosed` below. */
  protected state: ReadyState = ReadyState.CONNECTING;
  /** The flags below, as bits of one number: a server holds many connections. */
  private flags = 0;
  /** Both close frames and who sent the first; created by the first close frame either way. */
  private record: CloseRecord | null = null;
  /** When the state became CLOSING, then CLOSED (the owner's clock). */
  protected stateChangedAt = 0;

  /** Our close frame is queued: nothing more may be sent. */
  protected get closeSent(): boolean {
    return (this.flags & CLOSE_SENT) !== 0;
  }

  /** Our close frame is in the output: frames queued before it are written, none after. */
  protected get closeWritten(): boolean {
    return (this.flags & CLOSE_WRITTEN) !== 0;
  }

  /** We failed the connection (RFC 6455 §7.1.7). */
  protected get failed(): boolean {
    return (this.flags & FAILED) !== 0;
  }
  protected set failed(value: true) {
    this.flags |= FAILED;
  }

  /**
   * The connection ended before our own close(): by the peer's close frame, its EOF, a failure or
   * a timeout. A send then lost a race and is dropped, where after our own close() it is misuse.
   */
  protected get sendsDropped(): boolean {
    return (this.flags & SENDS_DROPPED) !== 0;
  }
  protected set sendsDropped(value: true) {
    this.flags |= SENDS_DROPPED;
  }

  /** The transport is to be closed once the output is written (RFC 6455 §7.1.1). */
  protected get transportDone(): boolean {
    return (this.flags & TRANSPORT_DONE) !== 0;
  }
  protected set transportDone(value: true) {
    this.flags |= TRANSPORT_DONE;
  }

  /** RFC 6455 §7.1.1: the server ends the TCP connection first; a client waits for it. */
  protected get endsTcpFirst(): boolean {
    return !this.isClient;
  }

  /** The opening handshake succeeded (RFC 6455 §4.1, §4.2.2). */
  protected enterOpen(): void {
    this.enter(ReadyState.OPEN);
  }

  /** A close frame of ours is queued; the first one makes us the initiator. */
  protected closeQueued(): void {
    this.flags |= CLOSE_SENT;
    (this.record ??= new CloseRecord()).initiator ??= "local";
  }

  /** Our close frame reached the output. Our own payloads are valid (RFC 6455 §5.5.1). */
  protected closeFrameWritten(payload: Uint8Array): void {
    this.flags |= CLOSE_WRITTEN;
    this.record!.sent = {
      code: payload.length >= 2 ? (payload[0] << 8) | payload[1] : CloseCode.NO_STATUS,
      reason: payload.length > 2 ? decodeUtf8(payload.subarray(2)) ?? "" : "",
    };
  }

  /** The peer's close frame arrived, already validated (`parseClosePayload`). */
  protected closeFrameReceived(code: number, reason: string): void {
    const record = (this.record ??= new CloseRecord());
    record.initiator ??= "remote";
    record.received = { code, reason };
  }

  /** The closing handshake is under way (RFC 6455 §7.1.2, §7.1.7). */
  protected enterClosing(now: number): void {
    this.enter(ReadyState.CLOSING);
    this.stateChangedAt = now;
  }

  /** Enters CLOSED and returns the close event, once; null if already closed. */
  protected enterClosed(now: number, code: number, reason: string, wasClean: boolean): ConnectionEvent | null {
    if (this.state === ReadyState.CLOSED) return null;
    this.enter(ReadyState.CLOSED);
    this.stateChangedAt = now;
    const record = this.record;
    return {
      type: "close",
      code,
      reason,
      wasClean,
      sent: record?.sent ?? null,
      received: record?.received ?? null,
      initiator: record?.initiator ?? null,
    };
  }

  private enter(state: ReadyState): void {
    const from = this.state;
    this.state = state;
    if (this.tracer !== null && from !== state) this.tracer.record(stateRecord(from, state));
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
