/**
 * The WebSocket protocol as a state machine without I/O (RFC 6455): bytes in, events and bytes
 * out. `Connection` is the top layer of what both roles share (options.ts tells the layers, one
 * file each): it decides what the layers below record and do. The message assembler (message.ts)
 * reads frames, the frame writer (writer.ts) writes them, the closing handshake (closing.ts)
 * holds the ready state, the timers (timers.ts) the deadlines, the extension pipeline
 * (extension-pipeline.ts) transforms messages. `ServerConnection` (server-connection.ts) and
 * `ClientConnection` (client-connection.ts) add the opening handshake.
 *
 * The owner feeds received bytes to `receive()`, reports the end of the byte stream with
 * `receiveEof()`, tells the time with `tick(now)` and, after every call, takes `pollEvents()`
 * and `pollOutput()` and closes the transport once `closeExpected` is true. Asynchronous
 * extension work calls `onWake` when it has produced something new to poll.
 *
 * Peer misbehaviour never throws: it becomes an `error` event and a close frame with the
 * close code RFC 6455 §7.4.1 gives it. Local misuse throws a `WebSocketError`.
 */
import { EMPTY_BYTES } from "./bytes.ts";
import { MAX_CLOSE_REASON, closePayload, parseClosePayload } from "./closing.ts";
import { CloseCode, WebSocketError } from "./errors.ts";
import { type ConnectionEvent, ReadyState } from "./events.ts";
import { rsvBitsOf } from "./extension-pipeline.ts";
import { FrameParser, Opcode } from "./frame.ts";
import type { HeaderList } from "./http.ts";
import { MessageAssembler } from "./message.ts";
import type { ConnectionOptions, SendOptions } from "./options.ts";
import { Due } from "./timers.ts";
import { truncateUtf8 } from "./utf8.ts";
import type { PreparedMessage } from "./writer.ts";

export { type CloseFrame, type ConnectionEvent, ReadyState } from "./events.ts";
export { closePayload } from "./closing.ts";
export type { ConnectionOptions, SendOptions } from "./options.ts";
export { MAX_PENDING_PONGS, type PreparedMessage, prepareMessage } from "./writer.ts";

export abstract class Connection extends MessageAssembler {
  protected readonly parser: FrameParser;

  constructor(isClient: boolean, options: ConnectionOptions) {
    super(isClient, options);
    const tracer = this.tracer;
    if (tracer !== null) tracer.inner = this;
    this.parser = new FrameParser(tracer ?? this, !isClient, this.tuning); // RFC 6455 §5.1: only clients mask
  }

  // ---- Outputs (and pollEvents, events.ts; pollOutput, writer.ts; deadline, timers.ts) -------

  get readyState(): ReadyState {
    return this.state;
  }

  /**
   * Payload bytes of messages accepted by `sendText`/`sendBinary`/`sendPrepared` and not yet in
   * the output: being compressed, or queued behind a message that is. An owner counts them with
   * what its transport holds as buffered (as `ws` does while it deflates).
   */
  get pendingBytes(): number {
    return this.pending;
  }

  /** The transport should be closed once the output is written (RFC 6455 §7.1.1). */
  get closeExpected(): boolean {
    return this.transportDone;
  }

  // ---- Inputs -------------------------------------------------------------------------------

  /** Tells the time; acts on any deadline reached. */
  tick(now: number): void {
    this.now = now;
    switch (this.dueNow()) {
      case Due.HANDSHAKE_TIMEOUT:
        this.handshakeTimedOut();
        return;
      case Due.PONG_TIMEOUT:
        this.fail(CloseCode.INTERNAL_ERROR, "keepalive ping timeout");
        this.transportDone = true; // the peer is unresponsive: do not wait for its close frame
        return;
      case Due.IDLE_TIMEOUT:
        this.sendsDropped = true; // not the owner's close: a send racing with it is dropped
        this.startClose(closePayload(CloseCode.GOING_AWAY, "idle timeout"));
        return;
      case Due.KEEPALIVE_PING:
        this.writeFrame(Opcode.PING, EMPTY_BYTES);
        this.pingSentAt = now;
        return;
      case Due.CLOSE_TIMEOUT:
        // RFC 6455 §7.1.1: give up on the peer's close frame.
        this.finish(CloseCode.ABNORMAL, "", false);
        this.transportDone = true;
        return;
      case Due.TCP_CLOSE_TIMEOUT:
        // RFC 6455 §7.1.1: a client may close TCP itself if the server does not.
        this.transportDone = true;
    }
  }

  /**
   * Bytes received from the peer. The connection takes ownership of `chunk`: it may unmask it
   * in place and hand out views of it in events.
   */
  receive(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    this.lastReceived = this.now;
    this.pingSentAt = -1; // the peer is alive
    this.receiveFrames(chunk);
  }

  /** The peer will send nothing more: its side of the transport closed, or the transport failed. */
  receiveEof(): void {
    this.transportDone = true;
    if (this.state === ReadyState.CLOSED) return;
    if (!this.closeSent) this.sendsDropped = true;
    this.parser.stop();
    this.runIncoming(() => {
      this.releaseEnd();
      this.finish(CloseCode.ABNORMAL, "", false);
    });
  }

  protected receiveFrames(chunk: Uint8Array): void {
    if (!this.parser.stopped) this.parser.push(chunk);
  }

  // ---- Commands -----------------------------------------------------------------------------

  /**
   * Sends a text message: a string, or bytes that must be valid UTF-8. Returns true when it is
   * queued, false when it is dropped because the connection ended first without our `close()`
   * (the peer closed, the transport ended, a failure or a timeout): a race, not misuse.
   */
  sendText(data: string | Uint8Array, options?: SendOptions): boolean {
    if (!this.canSend()) return false;
    this.queueText(data, options);
    return true;
  }

  /**
   * Sends a binary message. The bytes are not copied unless masking needs it: do not change them
   * afterwards. Returns true when queued, false when dropped (as `sendText`).
   */
  sendBinary(data: Uint8Array, options?: SendOptions): boolean {
    if (!this.canSend()) return false;
    this.queueBinary(data, options);
    return true;
  }

  /**
   * Sends a message framed once by `prepareMessage()`, as pub/sub does for many connections.
   * Server role only: a client masks every frame with its own key (RFC 6455 §5.3).
   */
  sendPrepared(message: PreparedMessage): boolean {
    if (this.isClient) throw new WebSocketError("ERR_INVALID_ARGUMENT", "prepared messages are for the server role");
    if (!this.canSend()) return false;
    this.queuePrepared(message);
    return true;
  }

  /** Sends a ping (RFC 6455 §5.5.2). Returns true when queued, false when dropped (as `sendText`). */
  ping(data: Uint8Array | string = EMPTY_BYTES): boolean {
    if (!this.canSend()) return false;
    this.queueControl(Opcode.PING, data);
    return true;
  }

  /** Sends an unsolicited pong (RFC 6455 §5.5.3), e.g. as a unidirectional heartbeat; returns as `ping`. */
  pong(data: Uint8Array | string = EMPTY_BYTES): boolean {
    if (!this.canSend()) return false;
    this.queueControl(Opcode.PONG, data);
    return true;
  }

  /**
   * Starts the closing handshake (RFC 6455 §7.1.2). Without a code the close frame is empty.
   * Before the connection is open it is abandoned instead. Calling it again does nothing.
   */
  close(code?: number, reason = ""): void {
    const payload = closePayload(code, reason);
    if (this.state === ReadyState.CONNECTING) {
      this.abandonHandshake();
      return;
    }
    this.startClose(payload);
  }

  private startClose(payload: Uint8Array): void {
    if (this.closeSent || this.state === ReadyState.CLOSED) return;
    this.queueClose(payload);
    this.enterClosing(this.now);
  }

  /** Ends the connection at once, without a closing handshake: the transport should be destroyed. */
  abort(): void {
    this.releaseEnd(); // its events are kept; its output is discarded below
    this.discardOutput();
    this.transportDone = true;
    this.parser.stop();
    this.finish(CloseCode.ABNORMAL, "", false);
  }

  protected abstract abandonHandshake(): void;
  protected abstract handshakeTimedOut(): void;

  // ---- From the layers below (their abstract methods) ----------------------------------------

  /** Delivers an event after any received message still being decoded, unless the connection failed first. */
  protected deliver(event: ConnectionEvent): void {
    if (this.incomingImmediate) {
      if (!this.failed && this.state !== ReadyState.CLOSED) this.emit(event);
    } else {
      // A message still being decoded when the close timeout ends the connection is dropped.
      this.runIncoming(() => this.failed || this.state === ReadyState.CLOSED || this.emit(event));
    }
  }

  /** A whole control frame (RFC 6455 §5.5). */
  protected receiveControl(opcode: number, payload: Uint8Array): boolean {
    if (opcode === Opcode.PING) {
      this.runIncoming(() => {
        if (this.failed || this.state === ReadyState.CLOSED) return;
        this.emit({ type: "ping", data: payload });
        // RFC 6455 §5.5.2: answer with the same payload, unless a close frame was received (nothing
        // after one is read) — also after we sent ours: §5.5.1 stops only data frames.
        if (this.options.autoPong) this.writeAutoPong(payload);
      });
      return true;
    }
    if (opcode === Opcode.PONG) {
      this.deliver({ type: "pong", data: payload });
      return true;
    }
    const frame = parseClosePayload(payload);
    if ("failCode" in frame) return this.fail(frame.failCode, frame.reason);
    // RFC 6455 §5.5.1: nothing after a close frame is processed.
    this.parser.stop();
    this.runIncoming(() => this.endAfterEvents(() => {
      if (this.failed) return;
      this.closeFrameReceived(frame.code, frame.reason);
      if (!this.closeSent) {
        this.sendsDropped = true;
        // Echo the code (RFC 6455 §5.5.1); an empty close frame is answered with an empty one.
        this.queueClose(payload.length >= 2 ? payload.subarray(0, 2) : EMPTY_BYTES);
      }
      this.runOutgoing(() => {
        this.finish(frame.code, frame.reason, true);
        // RFC 6455 §7.1.1: the server closes TCP first; the client waits for it (deadline).
        if (this.endsTcpFirst) this.transportDone = true;
      });
    }));
    return false;
  }

  /**
   * Fails the WebSocket connection (RFC 6455 §7.1.7): stop reading, send a close frame
   * with `code` unless one was sent, and have the server close TCP. Messages received before the
   * failure are still delivered first, and the close frame waits for them to be polled
   * (`endAfterEvents`). Returns false, for the parser.
   */
  protected fail(code: number, reason: string): boolean {
    this.parser.stop();
    this.runIncoming(() => this.endAfterEvents(() => {
      if (this.failed || this.state === ReadyState.CLOSED) return;
      this.failed = true;
      this.emit({ type: "error", code, reason });
      if (!this.closeSent) {
        this.sendsDropped = true;
        this.queueClose(closePayload(code, truncateUtf8(reason, MAX_CLOSE_REASON)));
      }
      this.enterClosing(this.now);
      if (this.endsTcpFirst) this.runOutgoing(() => (this.transportDone = true));
    }));
    return false;
  }

  /**
   * True when a message may be sent; false when the connection ended before our own close()
   * (`sendsDropped`); throws on misuse: before it is open, or after our own close() or abort().
   */
  private canSend(): boolean {
    if (this.state === ReadyState.OPEN && !this.closeSent) return true;
    if (this.sendsDropped) return false;
    const what = this.state === ReadyState.CONNECTING ? "not open yet" : "closing or closed";
    throw new WebSocketError("ERR_INVALID_STATE", `cannot send: the connection is ${what}`);
  }

  protected randomBytes(n: number): Uint8Array {
    const bytes = new Uint8Array(n);
    this.options.random(bytes);
    return bytes;
  }

  // ---- State changes ------------------------------------------------------------------------

  /** The transport is to be closed once the output is written. */
  protected endTransport(): void {
    this.transportDone = true;
  }

  protected open(protocol: string, extensionsHeader: string, headers: HeaderList): void {
    this.enterOpen();
    this.lastReceived = this.lastSent = this.now;
    this.parser.allowedRsv = rsvBitsOf(this.extensions);
    this.emit({ type: "open", protocol, extensions: extensionsHeader, headers });
  }

  /** Enters CLOSED and reports it, once. */
  protected finish(code: number, reason: string, wasClean: boolean): void {
    // RFC 6455 §7.1.1, §4.1, §4.2.2: a closed connection (or one that never opened) reads no frame.
    const event = this.enterClosed(this.now, code, reason, wasClean);
    if (event === null) return;
    this.parser.stop();
    this.emit(event);
    this.disposeExtensions();
  }

  protected wake(): void {
    this.options.onWake(this);
  }

  /** A bug, not the peer's fault: an event handler or extension threw where it must not. */
  protected crash(error: unknown): void {
    const reason = error instanceof Error ? error.message : String(error);
    this.emit({ type: "error", code: CloseCode.INTERNAL_ERROR, reason });
    this.abort();
  }
}
