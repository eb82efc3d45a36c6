/**
 * The WebSocket protocol as a state machine without I/O (RFC 6455): bytes in, events and bytes
 * out. `Connection` holds what both roles share and ties the parts together: the message
 * assembler (message.ts) reads frames, the frame writer (writer.ts) writes them, the closing
 * handshake (closing.ts) holds the ready state, the timers (timers.ts) the deadlines, the
 * extension pipeline (extension-pipeline.ts) transforms messages. `ServerConnection`
 * (server-connection.ts) and `ClientConnection` (client-connection.ts) add the opening handshake.
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
import { ClosingHandshake, MAX_CLOSE_REASON, closePayload, parseClosePayload } from "./closing.ts";
import { CloseCode, WebSocketError } from "./errors.ts";
import { type ConnectionEvent, EventQueue, ReadyState } from "./events.ts";
import { ExtensionPipeline, rsvBitsOf } from "./extension-pipeline.ts";
import { FrameParser, Opcode } from "./frame.ts";
import type { HeaderList, HttpLimits } from "./http.ts";
import { type MessageSink, MessageAssembler } from "./message.ts";
import { type ConnectionOptions, type ResolvedOptions, type SendOptions, resolveOptions } from "./options.ts";
import { Sender } from "./sender.ts";
import { Due, Timers } from "./timers.ts";
import { FrameTracer, type TraceRecord } from "./trace.ts";
import { PORTABLE_TUNING, type Tuning, checkTuning } from "./tuning.ts";
import { truncateUtf8 } from "./utf8.ts";
import { FrameWriter, type PreparedMessage } from "./writer.ts";

export { type CloseFrame, type ConnectionEvent, ReadyState } from "./events.ts";
export { closePayload } from "./closing.ts";
export type { ConnectionOptions, SendOptions } from "./options.ts";
export { MAX_PENDING_PONGS, type PreparedMessage, prepareMessage } from "./writer.ts";

const NO_WAKE = (): void => {};

export abstract class Connection {
  protected readonly options: ResolvedOptions;
  /** The speed choices this connection was created with (`ConnectionOptions.tuning`). */
  readonly tuning: Tuning;
  protected readonly httpLimits: Partial<HttpLimits> | undefined;
  protected readonly isClient: boolean;
  protected readonly parser: FrameParser;
  /** Frames in: messages and control frames. */
  protected readonly assembler: MessageAssembler;
  /** Frames out, and the output. */
  protected readonly writer: FrameWriter;
  /** The commands that send, routed to the writer or the pipeline. */
  protected readonly sender: Sender;
  /** The closing handshake and the ready state. */
  protected readonly closing: ClosingHandshake;
  protected readonly timers: Timers;
  /** The negotiated extensions, and the queues that keep order while they work. */
  protected readonly pipeline: ExtensionPipeline;

  /** Events to poll, and the connection's end held behind them. */
  protected readonly events: EventQueue = new EventQueue();

  constructor(isClient: boolean, options: ConnectionOptions) {
    this.isClient = isClient;
    const o = (this.options = resolveOptions(options));
    const tuning = options.tuning ?? PORTABLE_TUNING;
    if (tuning !== PORTABLE_TUNING) checkTuning(tuning);
    this.tuning = tuning;
    this.httpLimits = options.httpLimits;
    const onWake = options.onWake ?? NO_WAKE;
    this.pipeline = new ExtensionPipeline(() => onWake(this), (error) => this.crash(error));
    const hook = options.trace;
    const tracer = hook === undefined ? null : new FrameTracer((record: TraceRecord) => hook(record, this));
    const trace = tracer === null ? null : tracer.record;
    this.timers = new Timers(options.now ?? 0, o);
    this.closing = new ClosingHandshake(isClient, trace);
    this.writer = new FrameWriter(isClient, o.random, tuning.allocator, tuning.maskWordSize, o.fragmentSize, trace);
    this.sender = new Sender(this.writer, this.closing, this.pipeline, this.timers, o.fragmentSize, tuning.allocator, (code, reason) => this.fail(code, reason));
    const sink: MessageSink = {
      deliver: (event) => this.deliver(event),
      fail: (code, reason) => this.fail(code, reason),
      receiveControl: (opcode, payload) => this.receiveControl(opcode, payload),
      receiveTransformed: (binary, rsv, payload) =>
        this.pipeline.receive(binary, rsv, payload, o.maxMessageSize, (event) => this.deliver(event), (code, reason) => this.fail(code, reason)),
    };
    this.assembler = new MessageAssembler(sink, o, tuning.asciiDecoder, tuning.lenientDecodeLimit);
    if (tracer !== null) tracer.inner = this.assembler;
    const handler = tracer ?? this.assembler;
    this.parser = new FrameParser(handler, !isClient, tuning); // RFC 6455 §5.1: only clients mask
  }

  // ---- Outputs ------------------------------------------------------------------------------

  get readyState(): ReadyState {
    return this.closing.state;
  }

  /**
   * Events since the last call, oldest first. The owner polls events and output until neither
   * brings anything: a failure or the peer's close frame read after events takes effect at the
   * next call after those events were taken, so that what the owner sends in reaction (and
   * writes meanwhile) comes first.
   */
  pollEvents(): readonly ConnectionEvent[] {
    return this.events.poll();
  }

  /** Bytes to write to the transport since the last call, in order. */
  pollOutput(): readonly Uint8Array[] {
    return this.writer.poll();
  }

  /**
   * Payload bytes of messages accepted by `sendText`/`sendBinary`/`sendPrepared` and not yet in
   * the output: being compressed, or queued behind a message that is. An owner counts them with
   * what its transport holds as buffered (as `ws` does while it deflates).
   */
  get pendingBytes(): number {
    return this.pipeline.pending;
  }

  /** The transport should be closed once the output is written (RFC 6455 §7.1.1). */
  get closeExpected(): boolean {
    return this.closing.transportDone;
  }

  /** When `tick()` should be called next (ms on the owner's clock); Infinity if never. */
  get deadline(): number {
    const c = this.closing;
    return this.timers.deadline(c.state, c.closingAt, c.closedAt, c.transportDone);
  }

  // ---- Inputs -------------------------------------------------------------------------------

  /** Tells the time; acts on any deadline reached. */
  tick(now: number): void {
    this.timers.now = now;
    switch (this.timers.due(this.closing.state, this.deadline)) {
      case Due.HANDSHAKE_TIMEOUT:
        this.handshakeTimedOut();
        return;
      case Due.PONG_TIMEOUT:
        this.fail(CloseCode.INTERNAL_ERROR, "keepalive ping timeout");
        this.closing.transportDone = true; // the peer is unresponsive: do not wait for its close frame
        return;
      case Due.IDLE_TIMEOUT:
        this.closing.sendsDropped = true; // not the owner's close: a send racing with it is dropped
        this.startClose(closePayload(CloseCode.GOING_AWAY, "idle timeout"));
        return;
      case Due.KEEPALIVE_PING:
        this.writer.frame(Opcode.PING, EMPTY_BYTES);
        this.timers.pingSentAt = now;
        return;
      case Due.CLOSE_TIMEOUT:
        // RFC 6455 §7.1.1: give up on the peer's close frame.
        this.finish(CloseCode.ABNORMAL, "", false);
        this.closing.transportDone = true;
        return;
      case Due.TCP_CLOSE_TIMEOUT:
        // RFC 6455 §7.1.1: a client may close TCP itself if the server does not.
        this.closing.transportDone = true;
    }
  }

  /**
   * Bytes received from the peer. The connection takes ownership of `chunk`: it may unmask it
   * in place and hand out views of it in events.
   */
  receive(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    const timers = this.timers;
    timers.lastReceived = timers.now;
    timers.pingSentAt = -1; // the peer is alive
    this.receiveFrames(chunk);
  }

  /** The peer will send nothing more: its side of the transport closed, or the transport failed. */
  receiveEof(): void {
    const c = this.closing;
    c.transportDone = true;
    if (c.state === ReadyState.CLOSED) return;
    if (!c.closeSent) c.sendsDropped = true;
    this.parser.stop();
    this.pipeline.runIncoming(() => {
      this.events.release();
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
    this.sender.text(data, options);
    return true;
  }

  /**
   * Sends a binary message. The bytes are not copied unless masking needs it: do not change them
   * afterwards. Returns true when queued, false when dropped (as `sendText`).
   */
  sendBinary(data: Uint8Array, options?: SendOptions): boolean {
    if (!this.canSend()) return false;
    this.sender.binary(data, options);
    return true;
  }

  /**
   * Sends a message framed once by `prepareMessage()`, as pub/sub does for many connections.
   * Server role only: a client masks every frame with its own key (RFC 6455 §5.3).
   */
  sendPrepared(message: PreparedMessage): boolean {
    if (this.isClient) throw new WebSocketError("ERR_INVALID_ARGUMENT", "prepared messages are for the server role");
    if (!this.canSend()) return false;
    this.sender.prepared(message);
    return true;
  }

  /** Sends a ping (RFC 6455 §5.5.2). Returns true when queued, false when dropped (as `sendText`). */
  ping(data: Uint8Array | string = EMPTY_BYTES): boolean {
    if (!this.canSend()) return false;
    this.sender.control(Opcode.PING, data);
    return true;
  }

  /** Sends an unsolicited pong (RFC 6455 §5.5.3), e.g. as a unidirectional heartbeat; returns as `ping`. */
  pong(data: Uint8Array | string = EMPTY_BYTES): boolean {
    if (!this.canSend()) return false;
    this.sender.control(Opcode.PONG, data);
    return true;
  }

  /**
   * Starts the closing handshake (RFC 6455 §7.1.2). Without a code the close frame is empty.
   * Before the connection is open it is abandoned instead. Calling it again does nothing.
   */
  close(code?: number, reason = ""): void {
    const payload = closePayload(code, reason);
    if (this.closing.state === ReadyState.CONNECTING) {
      this.abandonHandshake();
      return;
    }
    this.startClose(payload);
  }

  private startClose(payload: Uint8Array): void {
    const c = this.closing;
    if (c.closeSent || c.state === ReadyState.CLOSED) return;
    this.sender.close(payload);
    c.closing(this.timers.now);
  }

  /** Ends the connection at once, without a closing handshake: the transport should be destroyed. */
  abort(): void {
    this.events.release(); // its events are kept; its output is discarded below
    this.writer.discard();
    this.closing.transportDone = true;
    this.parser.stop();
    this.finish(CloseCode.ABNORMAL, "", false);
  }

  protected abstract abandonHandshake(): void;
  protected abstract handshakeTimedOut(): void;

  // ---- From the message assembler (MessageSink) ---------------------------------------------

  /** Delivers an event after any received message still being decoded, unless the connection failed first. */
  private deliver(event: ConnectionEvent): void {
    const c = this.closing;
    if (this.pipeline.incomingImmediate) {
      if (!c.failed && c.state !== ReadyState.CLOSED) this.emit(event);
    } else {
      // A message still being decoded when the close timeout ends the connection is dropped.
      this.pipeline.runIncoming(() => c.failed || c.state === ReadyState.CLOSED || this.emit(event));
    }
  }

  /** A whole control frame (RFC 6455 §5.5). */
  private receiveControl(opcode: number, payload: Uint8Array): boolean {
    const c = this.closing;
    if (opcode === Opcode.PING) {
      this.pipeline.runIncoming(() => {
        if (c.failed || c.state === ReadyState.CLOSED) return;
        this.emit({ type: "ping", data: payload });
        // RFC 6455 §5.5.2: answer with the same payload, unless a close frame was received (nothing
        // after one is read) — also after we sent ours: §5.5.1 stops only data frames.
        if (this.options.autoPong) this.writer.autoPong(payload);
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
    this.pipeline.runIncoming(() => this.events.endAfterEvents(() => {
      if (c.failed) return;
      c.closeFrameReceived(frame.code, frame.reason);
      if (!c.closeSent) {
        c.sendsDropped = true;
        // Echo the code (RFC 6455 §5.5.1); an empty close frame is answered with an empty one.
        this.sender.close(payload.length >= 2 ? payload.subarray(0, 2) : EMPTY_BYTES);
      }
      this.pipeline.runOutgoing(() => {
        this.finish(frame.code, frame.reason, true);
        // RFC 6455 §7.1.1: the server closes TCP first; the client waits for it (deadline).
        if (c.endsTcpFirst) c.transportDone = true;
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
    const c = this.closing;
    this.pipeline.runIncoming(() => this.events.endAfterEvents(() => {
      if (c.failed || c.state === ReadyState.CLOSED) return;
      c.failed = true;
      this.emit({ type: "error", code, reason });
      if (!c.closeSent) {
        c.sendsDropped = true;
        this.sender.close(closePayload(code, truncateUtf8(reason, MAX_CLOSE_REASON)));
      }
      c.closing(this.timers.now);
      if (c.endsTcpFirst) this.pipeline.runOutgoing(() => (c.transportDone = true));
    }));
    return false;
  }

  /**
   * True when a message may be sent; false when the connection ended before our own close()
   * (`sendsDropped`); throws on misuse: before it is open, or after our own close() or abort().
   */
  private canSend(): boolean {
    const c = this.closing;
    if (c.state === ReadyState.OPEN && !c.closeSent) return true;
    if (c.sendsDropped) return false;
    const what = c.state === ReadyState.CONNECTING ? "not open yet" : "closing or closed";
    throw new WebSocketError("ERR_INVALID_STATE", `cannot send: the connection is ${what}`);
  }

  protected randomBytes(n: number): Uint8Array {
    const bytes = new Uint8Array(n);
    this.options.random(bytes);
    return bytes;
  }

  // ---- State changes ------------------------------------------------------------------------

  protected emit(event: ConnectionEvent): void {
    this.events.push(event);
  }

  protected pushOutput(bytes: Uint8Array): void {
    this.writer.push(bytes);
  }

  /** The transport is to be closed once the output is written. */
  protected endTransport(): void {
    this.closing.transportDone = true;
  }

  protected open(protocol: string, extensionsHeader: string, headers: HeaderList): void {
    this.closing.open();
    const timers = this.timers;
    timers.lastReceived = timers.lastSent = timers.now;
    this.parser.allowedRsv = rsvBitsOf(this.pipeline.extensions);
    this.emit({ type: "open", protocol, extensions: extensionsHeader, headers });
  }

  /** Enters CLOSED and reports it, once. */
  protected finish(code: number, reason: string, wasClean: boolean): void {
    // RFC 6455 §7.1.1, §4.1, §4.2.2: a closed connection (or one that never opened) reads no frame.
    const event = this.closing.closed(this.timers.now, code, reason, wasClean);
    if (event === null) return;
    this.parser.stop();
    this.emit(event);
    this.pipeline.dispose();
  }

  /** A bug, not the peer's fault: an event handler or extension threw where it must not. */
  private crash(error: unknown): void {
    const reason = error instanceof Error ? error.message : String(error);
    this.emit({ type: "error", code: CloseCode.INTERNAL_ERROR, reason });
    this.abort();
  }
}
