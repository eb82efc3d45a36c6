/**
 * The WebSocket protocol as a state machine without I/O (RFC 6455): bytes in, events and bytes
 * out. `Connection` holds what both roles share (frames, messages, control frames, the closing
 * handshake, time); `ServerConnection` and `ClientConnection` add the opening handshake.
 *
 * The owner feeds received bytes to `receive()`, reports the end of the byte stream with
 * `receiveEof()`, tells the time with `tick(now)` and, after every call, takes `pollEvents()`
 * and `pollOutput()` and closes the transport once `closeExpected` is true. Asynchronous
 * extension work calls `onWake` when it has produced something new to poll.
 *
 * Peer misbehaviour never throws: it becomes an `error` event and a close frame with the
 * close code RFC 6455 §7.4.1 gives it. Local misuse throws a `WebSocketError`.
 */
import { ByteAccumulator, EMPTY_BYTES, SerialQueue, allocateBytes, concatBytes, encodeUtf8, textEncoder, unpooled } from "./bytes.ts";
import { CloseCode, WebSocketError, isValidCloseCode } from "./errors.ts";
import type { ClientExtensionFactory, EncodedPayload, Extension, ServerExtensionFactory } from "./extension.ts";
import { ExtensionError } from "./extension.ts";
import { type ExtensionOffer, formatExtensions } from "./extension-header.ts";
import {
  MAX_CONTROL_PAYLOAD,
  MERGE_PAYLOAD_MAX,
  Opcode,
  type FrameHandler,
  FrameParser,
  encodeFrame,
  frameHeaderSize,
  isControlOpcode,
  writeAsciiTextFrame,
  writeSmallFrame,
} from "./frame.ts";
import { xorBytes } from "./mask.ts";
import {
  type AcceptOptions,
  type ClientHandshakeResult,
  ClientHandshakeParser,
  type RejectOptions,
  ServerHandshakeParser,
  type UpgradeRequest,
  buildAcceptResponse,
  buildClientRequest,
  buildRejectResponse,
  generateKey,
} from "./handshake.ts";
import { DEFAULT_HTTP_LIMITS, type HeadersInit, HeaderList, type HttpLimits } from "./http.ts";
import { type AsciiDecoder, type ByteAllocator, PORTABLE_TUNING, type Tuning, checkTuning } from "./tuning.ts";
import { Utf8Validator } from "./utf8.ts";

/** RFC 6455 §4.1 readyState values, as in the WHATWG WebSocket interface. */
export const ReadyState = { CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3 } as const;
export type ReadyState = (typeof ReadyState)[keyof typeof ReadyState];

export type ConnectionEvent =
  /** Server: a valid upgrade request; answer with `accept()` or `reject()`. */
  | { type: "upgrade"; request: UpgradeRequest }
  /** The opening handshake succeeded. `headers`: the request's (server) or the response's (client). */
  | { type: "open"; protocol: string; extensions: string; headers: HeaderList }
  /** The opening handshake failed: a bad request (server, with the status sent) or response (client). */
  | {
    type: "handshake_failed";
    reason: string;
    status?: number;
    statusText?: string;
    headers?: HeaderList;
    body?: Uint8Array;
  }
  | { type: "text"; data: string }
  /** A view of the received bytes: copy it to keep it past the next `receive()` into the same buffer. */
  | { type: "binary"; data: Uint8Array }
  /** A part of a message larger than `streamThreshold`; the last part has `fin` set. */
  | { type: "fragment"; binary: false; data: string; fin: boolean }
  | { type: "fragment"; binary: true; data: Uint8Array; fin: boolean }
  | { type: "ping"; data: Uint8Array }
  | { type: "pong"; data: Uint8Array }
  /** We failed the connection (RFC 6455 §7.1.7) with this close code, because of the peer. */
  | { type: "error"; code: number; reason: string }
  /**
   * The connection is over. `code`/`reason` are from the peer's close frame (1005 if it had no
   * code), or 1006 when none arrived (RFC 6455 §7.1.5); `wasClean`: both close frames were exchanged.
   * `sent` and `received` are the close frames each way (null: none), `initiator` who sent the
   * first one (null: neither did).
   */
  | {
    type: "close";
    code: number;
    reason: string;
    wasClean: boolean;
    sent: CloseFrame | null;
    received: CloseFrame | null;
    initiator: "local" | "remote" | null;
  };

/** A close frame's status code (1005 when it had none, RFC 6455 §7.1.5) and reason. */
export interface CloseFrame {
  code: number;
  reason: string;
}

export interface ConnectionOptions {
  /** Largest message accepted, in bytes, after extensions (1009 beyond). Default 64 MiB. */
  maxMessageSize?: number;
  /** Most frames one message may be split into (1009 beyond). Default 100,000. */
  maxFragments?: number;
  /** Messages that grow beyond this many bytes arrive as `fragment` events. Default: never. */
  streamThreshold?: number;
  /** Answer pings with pongs (RFC 6455 §5.5.2). Default true. */
  autoPong?: boolean;
  /** Outgoing messages are split into frames of at most this many payload bytes. Default: never. */
  fragmentSize?: number;
  /** Milliseconds for the opening handshake; 0 for none. Default 10,000. */
  handshakeTimeout?: number;
  /** Milliseconds to wait for the peer's close frame, and for a client the server's TCP close. Default 10,000. */
  closeTimeout?: number;
  /** Close with 1001 after this many milliseconds without a frame either way; 0 for never. Default 0. */
  idleTimeout?: number;
  /** Ping after this many milliseconds without receiving anything; 0 for never. Default 0. */
  keepaliveInterval?: number;
  /** Fail with 1011 when nothing arrives this long after a keepalive ping. Default 10,000. */
  pongTimeout?: number;
  /** The time now, in milliseconds, on any clock the owner keeps using for `tick()`. Default 0. */
  now?: number;
  /** Fills a buffer with random bytes (masking and handshake keys). Default `crypto.getRandomValues`. */
  random?: (target: Uint8Array) => void;
  /** Called, with the connection, when asynchronous extension work has produced events or output to poll. */
  onWake?: (connection: Connection) => void;
  /** Limits on the handshake's HTTP head. */
  httpLimits?: Partial<HttpLimits>;
  /**
   * Speed choices for the JavaScript engine this runs on (core/tuning.ts), read once here.
   * Default `PORTABLE_TUNING`; each runtime adapter passes its engine's.
   */
  tuning?: Tuning;
}

export interface SendOptions {
  /** False: more parts of this message follow (a fragmented message; extensions are not applied). */
  fin?: boolean;
  /** False: do not let extensions (compression) transform this message. */
  compress?: boolean;
}

const DEFAULTS = {
  maxMessageSize: 64 * 1024 * 1024,
  maxFragments: 100_000,
  streamThreshold: Infinity,
  autoPong: true,
  fragmentSize: Infinity,
  handshakeTimeout: 10_000,
  closeTimeout: 10_000,
  idleTimeout: 0,
  keepaliveInterval: 0,
  pongTimeout: 10_000,
};

type ResolvedOptions = Required<Omit<ConnectionOptions, "onWake" | "httpLimits" | "now" | "tuning">>;

function resolveOptions(options: ConnectionOptions): ResolvedOptions {
  const resolved: ResolvedOptions = {
    maxMessageSize: options.maxMessageSize ?? DEFAULTS.maxMessageSize,
    maxFragments: options.maxFragments ?? DEFAULTS.maxFragments,
    streamThreshold: options.streamThreshold ?? DEFAULTS.streamThreshold,
    autoPong: options.autoPong ?? DEFAULTS.autoPong,
    fragmentSize: options.fragmentSize ?? DEFAULTS.fragmentSize,
    handshakeTimeout: options.handshakeTimeout ?? DEFAULTS.handshakeTimeout,
    closeTimeout: options.closeTimeout ?? DEFAULTS.closeTimeout,
    idleTimeout: options.idleTimeout ?? DEFAULTS.idleTimeout,
    keepaliveInterval: options.keepaliveInterval ?? DEFAULTS.keepaliveInterval,
    pongTimeout: options.pongTimeout ?? DEFAULTS.pongTimeout,
    random: options.random ?? defaultRandom,
  };
  if (!(resolved.fragmentSize >= 1)) {
    throw new WebSocketError("ERR_INVALID_ARGUMENT", "fragmentSize must be at least 1");
  }
  return Object.freeze(resolved);
}

/**
 * Automatic pongs that may wait in the output, not yet polled, each answering its own ping; more
 * pings replace the last of them (`autoPong`). Enough for a burst of pings sent together to be
 * answered one by one, as peers expect (Autobahn case 2.10 sends 10).
 */
export const MAX_PENDING_PONGS = 16;

/** RFC 6455 §5.5: a close frame's reason fits in 125 - 2 bytes. */
const MAX_CLOSE_REASON = MAX_CONTROL_PAYLOAD - 2;
const RANDOM_POOL_SIZE = 4096;
/** What most connections negotiate: one shared empty list. */
const NO_EXTENSIONS: readonly Extension[] = Object.freeze([]);
const NO_SERVER_FACTORIES: readonly ServerExtensionFactory[] = Object.freeze([]);
const NO_EVENTS: readonly ConnectionEvent[] = Object.freeze([]);
const NO_WAKE = (): void => {};
const NO_OUTPUT: readonly Uint8Array[] = Object.freeze([]);
const utf8Decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
/**
 * Replaces bytes that are not UTF-8 with U+FFFD instead of throwing: for bytes already validated,
 * and for short messages checked afterwards (`decodeText`). On Deno it is 3-6 times faster than
 * the fatal decoder at every size; on Bun the fatal one is faster above a few hundred bytes.
 */
const lenientDecoder = new TextDecoder("utf-8", { ignoreBOM: true });
/** Whole text frames up to this size are decoded from `TEXT_SCRATCH` (`takeWholePayload`). */
const SHORT_TEXT_MAX = 256;
/**
 * Where such a payload is unmasked to be decoded: one buffer for every connection, with an
 * ArrayBuffer from the start (on JavaScriptCore a small array gets one only when first viewed).
 */
const TEXT_SCRATCH = new Uint8Array(new ArrayBuffer(SHORT_TEXT_MAX));
/** `TEXT_SCRATCH`'s first n bytes at index n, each view made once: a view per message costs. */
const textScratchViews: Uint8Array[] = [];

function defaultRandom(target: Uint8Array): void {
  crypto.getRandomValues(target);
}

export abstract class Connection implements FrameHandler {
  protected readonly options: ResolvedOptions;
  /** The speed choices this connection was created with (`ConnectionOptions.tuning`). */
  readonly tuning: Tuning;
  // From the tuning, read once: the hot paths use these fields.
  private readonly allocator: ByteAllocator | null;
  private readonly maskWordSize: 4 | 8;
  private readonly asciiDecoder: AsciiDecoder | null;
  private readonly lenientDecodeLimit: number;
  protected readonly httpLimits: Partial<HttpLimits> | undefined;
  protected readonly isClient: boolean;
  protected state: ReadyState = ReadyState.CONNECTING;
  protected extensions: readonly Extension[] = NO_EXTENSIONS; // replaced by the negotiated ones
  protected readonly parser: FrameParser;

  // Created by the first event or output after a poll: an idle connection holds neither.
  private events: ConnectionEvent[] | null = null;
  private output: Uint8Array[] | null = null;
  private transportDone = false;
  private readonly onWake: (connection: Connection) => void;
  // Received messages and control frames, and frames to write, each in order. Created when
  // something asynchronous (an extension's codec) first has to be waited for: until then every
  // step runs at once, and a connection (most of a server's) holds neither.
  private inQueue: SerialQueue | null = null;
  private outQueue: SerialQueue | null = null;

  // The message being received.
  private messageOpcode = 0; // 0: none in progress
  private messageRsv = 0;
  private messageSize = 0;
  private messageFragments = 0;
  // Created by the first message that needs them (one in several pieces; text validated as it
  // arrives): a connection that is idle or gets whole messages holds neither.
  private messageBytes: ByteAccumulator | null = null;
  private messageUtf8: Utf8Validator | null = null;
  private streamDecoder: TextDecoder | null = null; // set while a message is streamed
  // The frame being received.
  private frameOpcode = 0;
  private frameFin = false;
  private controlBytes: Uint8Array[] | null = null; // a control frame's payload split across reads

  // The message being sent with `fin: false`.
  private sendingOpcode = 0;
  /** Bytes of messages accepted by a send and not yet in the output (see `pendingBytes`). */
  private pending = 0;

  // Closing handshake (RFC 6455 §7).
  private closeSent = false; // queued: nothing more may be sent
  private closeWritten = false; // in the output: frames queued before it are written, none after
  private failed = false;
  /**
   * The connection ended before our own close(): by the peer's close frame, its EOF, a failure or
   * a timeout. A send then lost a race and is dropped, where after our own close() it is misuse.
   */
  private sendsDropped = false;
  /** Both close frames and who sent the first; created when the closing handshake starts. */
  private closing: { sent: CloseFrame | null; received: CloseFrame | null; initiator: "local" | "remote" } | null = null;
  /**
   * The failure, or the answer to the peer's close frame, held while events received before it
   * wait to be polled: what the owner sends in reaction to them is written before our close frame
   * (RFC 6455 §5.5.1 allows data frames until then). `endingDue`: those events were polled, it
   * takes effect at the next `pollEvents()` (an owner may poll output while handling them).
   */
  private ending: (() => void) | null = null;
  private endingDue = false;
  /** Automatic pongs in `output`, not yet polled, and where the last of them is (-1: none). */
  private pongCount = 0;
  private pongAt = -1;

  // Time, as told by the owner.
  protected now: number;
  protected readonly startedAt: number;
  private lastReceived: number;
  private lastSent: number;
  private pingSentAt = -1; // -1: no keepalive ping awaiting an answer
  private closingAt = 0;
  private closedAt = 0;

  /** Masking keys, drawn in bulk; allocated on the first masked frame (a server never masks). */
  private randomPool: Uint8Array | null = null;
  private randomOffset = RANDOM_POOL_SIZE;
  private keyBytes: Uint8Array | null = null; // the current masking key, copied into each frame at once

  constructor(isClient: boolean, options: ConnectionOptions) {
    this.isClient = isClient;
    this.options = resolveOptions(options);
    const tuning = options.tuning ?? PORTABLE_TUNING;
    if (tuning !== PORTABLE_TUNING) checkTuning(tuning);
    this.tuning = tuning;
    this.allocator = tuning.allocator;
    this.maskWordSize = tuning.maskWordSize;
    this.asciiDecoder = tuning.asciiDecoder;
    this.lenientDecodeLimit = tuning.lenientDecodeLimit;
    this.httpLimits = options.httpLimits;
    this.now = this.startedAt = this.lastReceived = this.lastSent = options.now ?? 0;
    this.onWake = options.onWake ?? NO_WAKE;
    this.parser = new FrameParser(this, !isClient, tuning); // RFC 6455 §5.1: only clients mask
  }

  private incoming(): SerialQueue {
    return (this.inQueue ??= new SerialQueue(() => this.onWake(this), (error) => this.crash(error)));
  }

  private outgoing(): SerialQueue {
    return (this.outQueue ??= new SerialQueue(() => this.onWake(this), (error) => this.crash(error)));
  }

  private runIncoming(step: () => void): void {
    if (this.inQueue === null) step();
    else this.inQueue.run(step);
  }

  private runOutgoing(step: () => void): void {
    if (this.outQueue === null) step();
    else this.outQueue.run(step);
  }

  // ---- Outputs ------------------------------------------------------------------------------

  get readyState(): ReadyState {
    return this.state;
  }

  /**
   * Events since the last call, oldest first. The owner polls events and output until neither
   * brings anything: a failure or the peer's close frame read after events takes effect at the
   * next call after those events were taken, so that what the owner sends in reaction (and
   * writes meanwhile) comes first.
   */
  pollEvents(): readonly ConnectionEvent[] {
    if (this.endingDue) this.releaseEnding();
    const events = this.events;
    if (events === null) return NO_EVENTS;
    this.events = null;
    if (this.ending !== null) this.endingDue = true;
    return events;
  }

  /** Bytes to write to the transport since the last call, in order. */
  pollOutput(): readonly Uint8Array[] {
    const output = this.output;
    if (output === null) return NO_OUTPUT;
    this.output = null;
    this.pongCount = 0;
    this.pongAt = -1;
    return output;
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

  /** When `tick()` should be called next (ms on the owner's clock); Infinity if never. */
  get deadline(): number {
    const o = this.options;
    switch (this.state) {
      case ReadyState.CONNECTING:
        return o.handshakeTimeout > 0 && !this.transportDone ? this.startedAt + o.handshakeTimeout : Infinity;
      case ReadyState.OPEN: {
        let next = Infinity;
        if (o.idleTimeout > 0) next = Math.max(this.lastReceived, this.lastSent) + o.idleTimeout;
        if (o.keepaliveInterval > 0) {
          next = Math.min(
            next,
            this.pingSentAt >= 0 ? this.pingSentAt + o.pongTimeout : this.lastReceived + o.keepaliveInterval,
          );
        }
        return next;
      }
      case ReadyState.CLOSING:
        return this.closingAt + o.closeTimeout;
      default:
        return this.transportDone ? Infinity : this.closedAt + o.closeTimeout;
    }
  }

  // ---- Inputs -------------------------------------------------------------------------------

  /** Tells the time; acts on any deadline reached. */
  tick(now: number): void {
    this.now = now;
    if (now < this.deadline) return;
    const o = this.options;
    switch (this.state) {
      case ReadyState.CONNECTING:
        this.handshakeTimedOut();
        return;
      case ReadyState.OPEN:
        if (this.pingSentAt >= 0 && now >= this.pingSentAt + o.pongTimeout) {
          this.fail(CloseCode.INTERNAL_ERROR, "keepalive ping timeout");
          this.transportDone = true; // the peer is unresponsive: do not wait for its close frame
        } else if (o.idleTimeout > 0 && now >= Math.max(this.lastReceived, this.lastSent) + o.idleTimeout) {
          this.sendsDropped = true; // not the owner's close: a send racing with it is dropped
          this.startClose(closePayload(CloseCode.GOING_AWAY, "idle timeout"));
        } else if (o.keepaliveInterval > 0 && this.pingSentAt < 0) {
          this.writeFrame(Opcode.PING, EMPTY_BYTES);
          this.pingSentAt = now;
        }
        return;
      case ReadyState.CLOSING:
        // RFC 6455 §7.1.1: give up on the peer's close frame.
        this.finish(CloseCode.ABNORMAL, "", false);
        this.transportDone = true;
        return;
      default:
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
      this.releaseEnding();
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
    let payload: Uint8Array;
    let owned: boolean;
    if (typeof data === "string") {
      if (this.trySendAscii(data, options)) return true;
      payload = encodeUtf8(data, this.allocator);
      owned = true;
    } else {
      if (!isWellFormedUtf8(data)) throw new WebSocketError("ERR_INVALID_UTF8", "text message is not valid UTF-8");
      payload = data;
      owned = false;
    }
    this.sendMessage(Opcode.TEXT, payload, owned, options);
    return true;
  }

  /**
   * Sends a binary message. The bytes are not copied unless masking needs it: do not change them
   * afterwards. Returns true when queued, false when dropped (as `sendText`).
   */
  sendBinary(data: Uint8Array, options?: SendOptions): boolean {
    if (!this.canSend()) return false;
    this.sendMessage(Opcode.BINARY, data, false, options);
    return true;
  }

  /**
   * Sends a message framed once by `prepareMessage()`, as pub/sub does for many connections.
   * Server role only: a client masks every frame with its own key (RFC 6455 §5.3).
   */
  sendPrepared(message: PreparedMessage): boolean {
    if (this.isClient) throw new WebSocketError("ERR_INVALID_ARGUMENT", "prepared messages are for the server role");
    if (!this.canSend()) return false;
    if (this.sendingOpcode !== 0) throw new WebSocketError("ERR_INVALID_STATE", "a fragmented message is being sent");
    this.lastSent = this.now;
    const size = message.size;
    this.pending += size;
    this.runOutgoing(() => {
      this.pending -= size;
      if (this.closeWritten || this.state === ReadyState.CLOSED) return;
      for (const chunk of message.chunks) this.pushOutput(chunk);
    });
    return true;
  }

  /** Sends a ping (RFC 6455 §5.5.2). Returns true when queued, false when dropped (as `sendText`). */
  ping(data: Uint8Array | string = EMPTY_BYTES): boolean {
    return this.sendControl(Opcode.PING, data);
  }

  /** Sends an unsolicited pong (RFC 6455 §5.5.3), e.g. as a unidirectional heartbeat; returns as `ping`. */
  pong(data: Uint8Array | string = EMPTY_BYTES): boolean {
    return this.sendControl(Opcode.PONG, data);
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
    this.sendClose(payload);
    this.state = ReadyState.CLOSING;
    this.closingAt = this.now;
  }

  /** Ends the connection at once, without a closing handshake: the transport should be destroyed. */
  abort(): void {
    this.releaseEnding(); // its events are kept; its output is discarded below
    this.output = null;
    this.pongCount = 0;
    this.pongAt = -1;
    this.transportDone = true;
    this.parser.stop();
    this.finish(CloseCode.ABNORMAL, "", false);
  }

  protected abstract abandonHandshake(): void;
  protected abstract handshakeTimedOut(): void;

  // ---- Frames in (FrameHandler) ------------------------------------------------------------

  onFrameStart(opcode: number, fin: boolean, rsv: number, length: number): boolean {
    this.frameOpcode = opcode;
    if (isControlOpcode(opcode)) return true;
    // RFC 6455 §5.4: fragments of one message arrive in order, not interleaved with another.
    if (opcode === Opcode.CONTINUATION) {
      if (this.messageOpcode === 0) return this.fail(CloseCode.PROTOCOL_ERROR, "continuation frame without a message to continue");
    } else {
      if (this.messageOpcode !== 0) return this.fail(CloseCode.PROTOCOL_ERROR, "new data frame inside a fragmented message");
      this.messageOpcode = opcode;
      this.messageRsv = rsv;
    }
    this.frameFin = fin;
    const o = this.options;
    if (++this.messageFragments > o.maxFragments) {
      return this.fail(CloseCode.MESSAGE_TOO_BIG, `message split into more than ${o.maxFragments} frames`);
    }
    // Checked on the declared length, before any of it is held.
    if (this.messageSize + length > o.maxMessageSize) {
      return this.fail(CloseCode.MESSAGE_TOO_BIG, `message over ${o.maxMessageSize} bytes`);
    }
    return true;
  }

  onFramePayload(data: Uint8Array, frameEnd: boolean): boolean {
    if (isControlOpcode(this.frameOpcode)) {
      const held = this.controlBytes;
      if (frameEnd && held === null) return this.receiveControl(this.frameOpcode, data);
      if (data.length !== 0) (this.controlBytes ??= []).push(data);
      if (!frameEnd) return true;
      this.controlBytes = null;
      return this.receiveControl(this.frameOpcode, concatBytes(held!));
    }
    const messageEnd = frameEnd && this.frameFin;
    this.messageSize += data.length;
    if (this.messageRsv !== 0) {
      // Transformed by an extension: only the whole message can be decoded.
      this.heldBytes().push(data);
      if (messageEnd) this.decodeMessage();
      return true;
    }
    const text = this.messageOpcode === Opcode.TEXT;
    const streaming = this.streamDecoder !== null || this.messageSize > this.options.streamThreshold;
    const inPieces = !messageEnd || (this.messageBytes !== null && this.messageBytes.size !== 0);
    // A text message that arrives whole in one piece is validated as it is decoded, natively.
    if (text && (streaming || inPieces)) {
      // RFC 6455 §8.1: fail as soon as the bytes cannot be UTF-8, even mid-character.
      const utf8 = (this.messageUtf8 ??= new Utf8Validator());
      if (!utf8.push(data)) return this.fail(CloseCode.INVALID_PAYLOAD, "invalid UTF-8 in text message");
      if (messageEnd && !utf8.complete) {
        return this.fail(CloseCode.INVALID_PAYLOAD, "invalid UTF-8 in text message");
      }
    }
    if (streaming) {
      this.streamMessage(data, messageEnd);
      return true;
    }
    let payload = data; // a message in one piece is delivered as that piece
    if (inPieces) {
      const held = this.heldBytes();
      held.push(data);
      if (!messageEnd) return true;
      payload = held.take();
    }
    this.endMessage();
    if (!text) {
      this.deliver({ type: "binary", data: payload });
      return true;
    }
    // A message that came in pieces was validated piece by piece above.
    const decoded = inPieces ? lenientDecoder.decode(payload) : decodeText(payload, this.lenientDecodeLimit);
    if (decoded === null) return this.fail(CloseCode.INVALID_PAYLOAD, "invalid UTF-8 in text message");
    this.deliver({ type: "text", data: decoded });
    return true;
  }

  /**
   * The fast path for the commonest message (FrameHandler): a whole, unfragmented, untransformed
   * text frame of at most 256 bytes, unmasked into a scratch buffer as it is checked for ASCII.
   * ASCII, valid UTF-8 as it is (RFC 6455 §8.1), goes to the tuning's `asciiDecoder` if it has
   * one; other text is decoded and checked by TextDecoder (§8.1: invalid UTF-8 fails with 1007).
   * Anything else goes through `onFramePayload`. The size limits were checked on the header.
   */
  takeWholePayload(chunk: Uint8Array, start: number, end: number, key: Uint8Array | null): boolean {
    const decode = this.asciiDecoder;
    const length = end - start;
    if (this.frameOpcode !== Opcode.TEXT || !this.frameFin || this.messageRsv !== 0) return false;
    if (length > SHORT_TEXT_MAX || length > this.options.streamThreshold) return false;
    const ascii = xorBytes(chunk, start, TEXT_SCRATCH, 0, length, key, 0) < 0x80;
    const text =
      ascii && decode !== null
        ? decode(TEXT_SCRATCH, 0, length)
        : decodeText((textScratchViews[length] ??= TEXT_SCRATCH.subarray(0, length)), this.lenientDecodeLimit);
    if (text === null) {
      this.fail(CloseCode.INVALID_PAYLOAD, "invalid UTF-8 in text message");
      return true; // taken: the connection failed on it
    }
    this.endMessage();
    this.deliver({ type: "text", data: text });
    return true;
  }

  onFrameError(closeCode: number, reason: string): void {
    this.fail(closeCode, reason);
  }

  private streamMessage(data: Uint8Array, fin: boolean): void {
    const binary = this.messageOpcode === Opcode.BINARY;
    if (this.streamDecoder === null) {
      // The message just crossed the threshold: what was held goes out first.
      this.streamDecoder = new TextDecoder("utf-8", { ignoreBOM: true });
      const held = this.heldBytes();
      held.push(data);
      data = held.take();
    }
    const decoder = this.streamDecoder;
    if (fin) this.endMessage();
    if (binary) this.deliver({ type: "fragment", binary: true, data, fin });
    else this.deliver({ type: "fragment", binary: false, data: decoder.decode(data, { stream: !fin }), fin });
  }

  private endMessage(): void {
    this.messageOpcode = 0;
    this.messageRsv = 0;
    this.messageSize = 0;
    this.messageFragments = 0;
    this.messageUtf8?.reset();
    this.streamDecoder = null;
  }

  /** The received parts of the message in progress. */
  private heldBytes(): ByteAccumulator {
    return (this.messageBytes ??= new ByteAccumulator());
  }

  /** Runs the extensions' decoders over a whole message (in reverse order of negotiation). */
  private decodeMessage(): void {
    const binary = this.messageOpcode === Opcode.BINARY;
    const rsv = this.messageRsv;
    let result: Uint8Array | Promise<Uint8Array> = this.heldBytes().take();
    this.endMessage();
    const max = this.options.maxMessageSize;
    try {
      for (let i = this.extensions.length - 1; i >= 0; i--) {
        const extension = this.extensions[i];
        if ((extension.rsvBits & rsv) === 0) continue;
        result = isPromiseLike(result)
          ? result.then((bytes) => extension.decode(bytes, rsv, max))
          : extension.decode(result, rsv, max);
      }
    } catch (error) {
      this.extensionFailed(error);
      return;
    }
    this.incoming().await(
      result,
      (payload) => {
        if (payload.length > max) {
          this.fail(CloseCode.MESSAGE_TOO_BIG, `message over ${max} bytes`);
        } else if (binary) {
          this.deliver({ type: "binary", data: payload });
        } else {
          const text = decodeUtf8(payload);
          if (text === null) this.fail(CloseCode.INVALID_PAYLOAD, "invalid UTF-8 in text message");
          else this.deliver({ type: "text", data: text });
        }
      },
      (error) => this.extensionFailed(error),
    );
  }

  private extensionFailed(error: unknown): void {
    if (error instanceof ExtensionError) this.fail(error.closeCode, error.message);
    else this.fail(CloseCode.INTERNAL_ERROR, "extension failed");
  }

  private receiveControl(opcode: number, payload: Uint8Array): boolean {
    if (opcode === Opcode.PING) {
      this.runIncoming(() => {
        if (this.failed || this.state === ReadyState.CLOSED) return;
        this.emit({ type: "ping", data: payload });
        // RFC 6455 §5.5.2: answer with the same payload, unless a close frame was received (nothing
        // after one is read) — also after we sent ours: §5.5.1 stops only data frames.
        if (this.options.autoPong) this.autoPong(payload);
      });
      return true;
    }
    if (opcode === Opcode.PONG) {
      this.deliver({ type: "pong", data: payload });
      return true;
    }
    // RFC 6455 §5.5.1, §7.4: an optional 2-byte code, then an optional UTF-8 reason.
    let code: number = CloseCode.NO_STATUS;
    let reason = "";
    if (payload.length === 1) return this.fail(CloseCode.PROTOCOL_ERROR, "close frame with a 1-byte payload");
    if (payload.length >= 2) {
      code = (payload[0] << 8) | payload[1];
      if (!isValidCloseCode(code)) return this.fail(CloseCode.PROTOCOL_ERROR, `invalid close code ${code}`);
      const decoded = decodeUtf8(payload.subarray(2));
      if (decoded === null) return this.fail(CloseCode.INVALID_PAYLOAD, "close reason is not valid UTF-8");
      reason = decoded;
    }
    // RFC 6455 §5.5.1: nothing after a close frame is processed.
    this.parser.stop();
    this.runIncoming(() => this.endAfterEvents(() => {
      if (this.failed) return;
      (this.closing ??= { sent: null, received: null, initiator: "remote" }).received = { code, reason };
      if (!this.closeSent) {
        this.sendsDropped = true;
        // Echo the code (RFC 6455 §5.5.1); an empty close frame is answered with an empty one.
        this.sendClose(payload.length >= 2 ? payload.subarray(0, 2) : EMPTY_BYTES);
      }
      this.runOutgoing(() => {
        this.finish(code, reason, true);
        // RFC 6455 §7.1.1: the server closes TCP first; the client waits for it (deadline).
        if (!this.isClient) this.transportDone = true;
      });
    }));
    return false;
  }

  // ---- Frames out ---------------------------------------------------------------------------

  private sendMessage(opcode: number, payload: Uint8Array, owned: boolean, options?: SendOptions): void {
    const fin = options?.fin ?? true;
    if (this.sendingOpcode !== 0 && this.sendingOpcode !== opcode) {
      throw new WebSocketError("ERR_INVALID_STATE", "a fragmented message of the other type is being sent");
    }
    const continuing = this.sendingOpcode !== 0;
    this.sendingOpcode = fin ? 0 : opcode;
    this.lastSent = this.now;
    if (this.extensions.length === 0 || options?.compress === false || continuing || !fin) {
      const frameOpcode = continuing ? Opcode.CONTINUATION : opcode;
      if (this.outQueue?.immediate ?? true) this.writeMessage(frameOpcode, payload, fin, 0, owned);
      else {
        const size = payload.length;
        this.pending += size;
        this.runOutgoing(() => {
          this.pending -= size;
          this.writeMessage(frameOpcode, payload, fin, 0, owned);
        });
      }
      return;
    }
    let result: EncodedPayload | Promise<EncodedPayload> = { data: payload, rsv: 0 };
    const binary = opcode === Opcode.BINARY;
    try {
      for (const extension of this.extensions) {
        result = isPromiseLike(result)
          ? result.then((r) => mergeRsv(r.rsv, extension.encode(r.data, binary)))
          : mergeRsv(result.rsv, extension.encode(result.data, binary));
      }
    } catch (error) {
      this.extensionFailed(error);
      return;
    }
    const size = payload.length;
    this.pending += size; // until written, or failed
    this.outgoing().await(
      result,
      (encoded) => {
        this.pending -= size;
        this.writeMessage(opcode, encoded.data, true, encoded.rsv, encoded.data !== payload || owned);
      },
      (error) => {
        this.pending -= size;
        this.extensionFailed(error);
      },
    );
  }

  /**
   * The common case of a short ASCII text message that nothing transforms or splits, framed
   * straight from the string. False (nothing sent) when the general path is needed.
   */
  private trySendAscii(text: string, options: SendOptions | undefined): boolean {
    if (options?.fin === false || (this.extensions.length !== 0 && options?.compress !== false)) return false;
    if (this.sendingOpcode !== 0 || text.length > this.options.fragmentSize || !(this.outQueue?.immediate ?? true)) return false;
    if (text.length > MERGE_PAYLOAD_MAX) return false;
    const key = this.isClient ? this.maskKey() : null;
    const size = frameHeaderSize(text.length, key !== null) + text.length;
    const frame = allocateBytes(size, this.allocator);
    if (writeAsciiTextFrame(frame, 0, text, key) < 0) return false;
    this.pushOutput(frame);
    this.lastSent = this.now;
    return true;
  }

  /** Writes a message's frames, split by `fragmentSize` (RFC 6455 §5.4). RSV bits go on the first frame. */
  private writeMessage(opcode: number, payload: Uint8Array, fin: boolean, rsv: number, owned: boolean): void {
    if (this.closeWritten || this.state === ReadyState.CLOSED) return; // aborted while this waited
    const size = this.options.fragmentSize;
    if (payload.length <= size) {
      this.writeFrame(opcode, payload, fin, rsv, owned);
      return;
    }
    for (let offset = 0; offset < payload.length; offset += size) {
      const last = offset + size >= payload.length;
      this.writeFrame(offset === 0 ? opcode : Opcode.CONTINUATION, payload.subarray(offset, offset + size), fin && last, offset === 0 ? rsv : 0, owned);
    }
  }

  private writeFrame(opcode: number, payload: Uint8Array, fin = true, rsv = 0, owned = false): void {
    const key = this.isClient ? this.maskKey() : null;
    const chunks = encodeFrame(opcode, payload, fin, rsv, key, owned, this.allocator, this.maskWordSize);
    for (const chunk of chunks) this.pushOutput(chunk);
  }

  private sendControl(opcode: number, data: Uint8Array | string): boolean {
    if (!this.canSend()) return false;
    const payload = typeof data === "string" ? textEncoder.encode(data) : data;
    if (payload.length > MAX_CONTROL_PAYLOAD) {
      throw new WebSocketError("ERR_CONTROL_PAYLOAD_TOO_LONG", "ping and pong payloads are limited to 125 bytes");
    }
    this.writeFrame(opcode, payload);
    return true;
  }

  /**
   * Answers a ping (RFC 6455 §5.5.2). Once `MAX_PENDING_PONGS` automatic pongs wait in the output,
   * the last of them is replaced by the newest one (§5.5.3 allows answering only the most recent
   * ping): a peer that pings faster than we write adds a few pongs per read, not one per ping.
   */
  private autoPong(payload: Uint8Array): void {
    if (this.pongCount < MAX_PENDING_PONGS - 1) {
      this.pongCount++;
      this.writeFrame(Opcode.PONG, payload);
      return;
    }
    const key = this.isClient ? this.maskKey() : null;
    const size = frameHeaderSize(payload.length, key !== null) + payload.length;
    if (this.pongAt < 0) {
      // The last one gets a chunk of its own, to be replaced.
      const frame = allocateBytes(size, this.allocator);
      writeSmallFrame(frame, 0, Opcode.PONG, payload, true, 0, key);
      this.pushOutput(frame);
      this.pongAt = this.output!.length - 1;
      this.pongCount++;
      return;
    }
    // Rewritten in place when the size is the same: a flood of equal pings allocates nothing.
    // Otherwise a buffer of its own, so that the replaced ones leave no slab piece pinned.
    const output = this.output!;
    let frame = output[this.pongAt];
    if (frame.length !== size) frame = output[this.pongAt] = new Uint8Array(size);
    writeSmallFrame(frame, 0, Opcode.PONG, payload, true, 0, key);
  }

  /** Queues the close frame behind the messages already being sent. */
  private sendClose(payload: Uint8Array): void {
    this.closeSent = true;
    const closing = (this.closing ??= { sent: null, received: null, initiator: "local" });
    this.runOutgoing(() => {
      if (this.state === ReadyState.CLOSED && this.transportDone) return; // aborted meanwhile
      this.writeFrame(Opcode.CLOSE, payload);
      this.closeWritten = true;
      // Our own payloads are valid: a code (or none) and a UTF-8 reason (RFC 6455 §5.5.1).
      closing.sent = {
        code: payload.length >= 2 ? (payload[0] << 8) | payload[1] : CloseCode.NO_STATUS,
        reason: payload.length > 2 ? decodeUtf8(payload.subarray(2)) ?? "" : "",
      };
    });
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

  /**
   * A fresh masking key for each frame (RFC 6455 §5.3), from a pool of random bytes. The key is
   * this connection's one reused buffer: `encodeFrame` copies it into the frame header at once.
   */
  private maskKey(): Uint8Array {
    let pool = this.randomPool;
    if (pool === null || this.randomOffset + 4 > RANDOM_POOL_SIZE) {
      pool = this.randomPool ??= new Uint8Array(RANDOM_POOL_SIZE);
      this.options.random(pool);
      this.randomOffset = 0;
    }
    const at = this.randomOffset;
    const key = (this.keyBytes ??= new Uint8Array(4));
    key[0] = pool[at];
    key[1] = pool[at + 1];
    key[2] = pool[at + 2];
    key[3] = pool[at + 3];
    this.randomOffset = at + 4;
    return key;
  }

  protected randomBytes(n: number): Uint8Array {
    const bytes = new Uint8Array(n);
    this.options.random(bytes);
    return bytes;
  }

  // ---- State changes ------------------------------------------------------------------------

  /** Delivers an event after any received message still being decoded, unless the connection failed first. */
  private deliver(event: ConnectionEvent): void {
    if (this.inQueue?.immediate ?? true) {
      if (!this.failed && this.state !== ReadyState.CLOSED) this.emit(event);
    } else {
      // A message still being decoded when the close timeout ends the connection is dropped.
      this.runIncoming(() => this.failed || this.state === ReadyState.CLOSED || this.emit(event));
    }
  }

  protected emit(event: ConnectionEvent): void {
    (this.events ??= []).push(event);
  }

  /** Adds a chunk to the output; merging small writes is the owner's job (adapters/shared/session.ts). */
  protected pushOutput(bytes: Uint8Array): void {
    (this.output ??= []).push(bytes);
  }

  /** The transport is to be closed once the output is written. */
  protected endTransport(): void {
    this.transportDone = true;
  }

  protected open(protocol: string, extensionsHeader: string, headers: HeaderList): void {
    this.state = ReadyState.OPEN;
    this.lastReceived = this.lastSent = this.now;
    this.parser.allowedRsv = this.extensions.reduce((bits, e) => bits | e.rsvBits, 0);
    this.emit({ type: "open", protocol, extensions: extensionsHeader, headers });
  }

  /**
   * Fails the WebSocket connection (RFC 6455 §7.1.7): stop reading, send a close frame with
   * `code` unless one was sent, and have the server close TCP. Messages received before the
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
        this.sendClose(closePayload(code, truncateUtf8(reason, MAX_CLOSE_REASON)));
      }
      this.state = ReadyState.CLOSING;
      this.closingAt = this.now;
      if (!this.isClient) this.runOutgoing(() => (this.transportDone = true));
    }));
    return false;
  }

  /**
   * Runs `step`, which ends the connection (a failure, the peer's close frame), once the events
   * received before it have been polled, so that the owner's reaction to them precedes our close
   * frame; at once when there are none.
   */
  private endAfterEvents(step: () => void): void {
    const first = this.ending;
    if (first !== null) {
      this.ending = () => {
        first();
        step();
      };
    } else if (this.events === null) {
      step();
    } else {
      this.ending = step;
    }
  }

  /** The held ending takes effect now. */
  private releaseEnding(): void {
    const step = this.ending;
    this.endingDue = false;
    if (step === null) return;
    this.ending = null;
    step();
  }

  /** Enters CLOSED and reports it, once. */
  protected finish(code: number, reason: string, wasClean: boolean): void {
    if (this.state === ReadyState.CLOSED) return;
    // RFC 6455 §7.1.1, §4.1, §4.2.2: a closed connection (or one that never opened) reads no frame.
    this.parser.stop();
    this.state = ReadyState.CLOSED;
    this.closedAt = this.now;
    const closing = this.closing;
    this.emit({
      type: "close",
      code,
      reason,
      wasClean,
      sent: closing?.sent ?? null,
      received: closing?.received ?? null,
      initiator: closing?.initiator ?? null,
    });
    for (const extension of this.extensions) extension.dispose?.();
  }

  /** A bug, not the peer's fault: an event handler or extension threw where it must not. */
  private crash(error: unknown): void {
    const reason = error instanceof Error ? error.message : String(error);
    this.emit({ type: "error", code: CloseCode.INTERNAL_ERROR, reason });
    this.abort();
  }
}

// ---- Server -------------------------------------------------------------------------------

export interface ServerConnectionOptions extends ConnectionOptions {
  /** Extensions this server supports, in order of preference (RFC 6455 §9.1). */
  extensions?: ServerExtensionFactory[];
}

export interface ServerAcceptOptions extends Omit<AcceptOptions, "extensions"> {
  /** False: negotiate no extension even if the client offers some. Default true. */
  extensions?: boolean;
}

/** The server role: waits for an upgrade request, lets the owner accept or reject it. */
export class ServerConnection extends Connection {
  private handshake: ServerHandshakeParser | null;
  private request: UpgradeRequest | null = null;
  private early: Uint8Array[] | null = null; // bytes that arrived after the request, before accept()
  private earlySize = 0;
  private readonly factories: readonly ServerExtensionFactory[];

  constructor(options: ServerConnectionOptions = {}) {
    super(false, options);
    this.handshake = new ServerHandshakeParser(this.httpLimits);
    this.factories = options.extensions ?? NO_SERVER_FACTORIES;
  }

  /** The upgrade request, once it has arrived. */
  get upgradeRequest(): UpgradeRequest | null {
    return this.request;
  }

  override receive(chunk: Uint8Array): void {
    if (this.state !== ReadyState.CONNECTING) {
      super.receive(chunk);
      return;
    }
    if (chunk.length === 0 || this.closeExpected) return;
    if (this.request !== null) {
      this.keepEarly(chunk);
      return;
    }
    const result = this.handshake!.push(chunk);
    if (result === undefined) return;
    this.handshake = null;
    if (!result.ok) {
      this.rejectWith({ status: result.status, headers: result.headers, body: result.reason }, result.reason);
      return;
    }
    this.request = result.request;
    // What came in the same read as the request is kept whatever its size (one read, which the
    // transport bounds), so that an owner who accepts at once sees the same whatever the reads.
    if (result.rest.length !== 0) this.early = [result.rest];
    this.emit({ type: "upgrade", request: result.request });
  }

  /** Accepts the upgrade (RFC 6455 §4.2.2): writes the 101 response; the connection is open. */
  accept(options: ServerAcceptOptions = {}): void {
    const request = this.pendingRequest();
    const negotiated = options.extensions === false ? [] : this.negotiateExtensions(request.extensions);
    const header = negotiated.length ? formatExtensions(negotiated.map((n) => n.offer)) : "";
    const response = buildAcceptResponse(request, {
      protocol: options.protocol,
      headers: options.headers,
      extensions: header || undefined,
    });
    if (negotiated.length !== 0) this.extensions = negotiated.map((n) => n.extension);
    this.pushOutput(response);
    this.open(options.protocol ?? "", header, request.headers);
    const early = this.early;
    this.early = null;
    if (early !== null) for (const chunk of early) super.receive(chunk);
  }

  /** Rejects the upgrade with an HTTP response; the transport is to be closed. */
  reject(options: RejectOptions): void {
    this.pendingRequest();
    this.rejectWith(options, `rejected with status ${options.status}`);
  }

  private pendingRequest(): UpgradeRequest {
    if (this.state !== ReadyState.CONNECTING || this.request === null || this.closeExpected) {
      throw new WebSocketError("ERR_INVALID_STATE", "no upgrade request is waiting for an answer");
    }
    return this.request;
  }

  private rejectWith(options: RejectOptions, reason: string): void {
    this.early = null; // never read: the connection does not open
    this.earlySize = 0;
    this.pushOutput(buildRejectResponse(options));
    this.emit({ type: "handshake_failed", reason, status: options.status });
    this.endTransport();
    this.finish(CloseCode.ABNORMAL, "", false);
  }

  private keepEarly(chunk: Uint8Array): void {
    this.earlySize += chunk.length;
    // RFC 6455 §4.1: a client waits for the response before it sends frames; what later reads
    // bring early is held up to the head size limit, what the server holds for a peer it has not
    // accepted (maxMessageSize, 64 MiB by default, would let every unanswered upgrade hold that much).
    if (this.earlySize > (this.httpLimits?.maxHeadSize ?? DEFAULT_HTTP_LIMITS.maxHeadSize)) {
      this.rejectWith({ status: 400, body: "data sent before the handshake completed" }, "data sent before the handshake completed");
      return;
    }
    (this.early ??= []).push(chunk);
  }

  /** Lets each supported extension, in the server's order, pick among the client's offers. */
  private negotiateExtensions(offers: readonly ExtensionOffer[]): { offer: ExtensionOffer; extension: Extension }[] {
    const chosen: { offer: ExtensionOffer; extension: Extension }[] = [];
    let rsvTaken = 0;
    for (const factory of this.factories) {
      const params = offers.filter((o) => o.name === factory.name).map((o) => o.params);
      if (params.length === 0) continue;
      const result = factory.negotiate(params);
      if (result === null || (result.extension.rsvBits & rsvTaken) !== 0) continue;
      rsvTaken |= result.extension.rsvBits;
      chosen.push({ offer: { name: factory.name, params: result.params }, extension: result.extension });
    }
    return chosen;
  }

  protected abandonHandshake(): void {
    this.endTransport();
    this.finish(CloseCode.ABNORMAL, "", false);
  }

  protected handshakeTimedOut(): void {
    if (this.request === null) {
      this.rejectWith({ status: 408, body: "handshake timeout" }, "handshake timeout");
    } else {
      this.rejectWith({ status: 503, body: "handshake timeout" }, "handshake timeout: the upgrade was not answered");
    }
  }
}

// ---- Client -------------------------------------------------------------------------------

export interface ClientConnectionOptions extends ConnectionOptions {
  /** The Host header: host, with ":port" unless it is the scheme's default; IPv6 in brackets. */
  host: string;
  /** Path and query of the request target (RFC 6455 §3), e.g. "/chat?room=1". Default "/". */
  path?: string;
  /** Subprotocols to offer, in order of preference (RFC 6455 §4.1). */
  protocols?: string[];
  origin?: string;
  headers?: HeadersInit;
  /** Extensions to offer, in order of preference. */
  extensions?: ClientExtensionFactory[];
  /** Most bytes of a non-101 response body kept for the `handshake_failed` event. Default 65,536. */
  maxResponseBodySize?: number;
}

/** The client role: writes the upgrade request at once, then checks the response. */
export class ClientConnection extends Connection {
  private handshake: ClientHandshakeParser | null;
  private readonly factories: ClientExtensionFactory[];

  constructor(options: ClientConnectionOptions) {
    super(true, options);
    this.factories = options.extensions ?? [];
    const offers: ExtensionOffer[] = [];
    for (const factory of this.factories) {
      for (const params of factory.offers()) offers.push({ name: factory.name, params });
    }
    const key = generateKey((n) => this.randomBytes(n));
    this.pushOutput(
      buildClientRequest({
        host: options.host,
        path: options.path ?? "/",
        key,
        protocols: options.protocols,
        extensions: offers.length ? formatExtensions(offers) : undefined,
        origin: options.origin,
        headers: options.headers,
      }),
    );
    this.handshake = new ClientHandshakeParser({
      key,
      protocols: options.protocols,
      limits: this.httpLimits,
      maxBodySize: options.maxResponseBodySize,
    });
  }

  override receive(chunk: Uint8Array): void {
    if (this.state !== ReadyState.CONNECTING) {
      super.receive(chunk);
      return;
    }
    if (this.handshake === null || chunk.length === 0) return;
    const result = this.handshake.push(chunk);
    if (result !== undefined) this.handshakeDone(result);
  }

  override receiveEof(): void {
    if (this.state === ReadyState.CONNECTING && this.handshake !== null) this.handshakeDone(this.handshake.end());
    super.receiveEof();
  }

  private handshakeDone(result: ClientHandshakeResult): void {
    this.handshake = null;
    if (!result.ok) {
      const { reason, status, statusText, headers, body } = result;
      this.handshakeFailed({ reason, status, statusText, headers, body });
      return;
    }
    const accepted = this.acceptExtensions(result.extensions);
    if (typeof accepted === "string") {
      this.handshakeFailed({ reason: accepted, status: 101, headers: result.headers });
      return;
    }
    this.extensions = accepted;
    const header = result.extensions.length ? formatExtensions(result.extensions) : "";
    this.open(result.protocol, header, result.headers);
    if (result.rest.length !== 0) super.receive(result.rest);
  }

  /** RFC 6455 §4.1 (client step 5 of the response checks): only offered extensions, once each. */
  private acceptExtensions(answers: ExtensionOffer[]): Extension[] | string {
    const extensions: Extension[] = [];
    let rsvTaken = 0;
    for (const answer of answers) {
      const factory = this.factories.find((f) => f.name === answer.name);
      if (!factory) return `server accepted extension "${answer.name}", which was not offered`;
      if (extensions.some((e) => e.name === answer.name)) return `server accepted extension "${answer.name}" twice`;
      let extension: Extension;
      try {
        extension = factory.accept(answer.params);
      } catch (error) {
        return `server's ${answer.name} parameters are not acceptable: ${(error as Error).message}`;
      }
      if ((extension.rsvBits & rsvTaken) !== 0) return `extension "${answer.name}" uses reserved bits already taken`;
      rsvTaken |= extension.rsvBits;
      extensions.push(extension);
    }
    return extensions;
  }

  private handshakeFailed(failure: Omit<Extract<ConnectionEvent, { type: "handshake_failed" }>, "type">): void {
    this.emit({ type: "handshake_failed", ...failure });
    this.endTransport();
    this.finish(CloseCode.ABNORMAL, "", false);
  }

  protected abandonHandshake(): void {
    this.handshake = null;
    this.handshakeFailed({ reason: "connection closed before the handshake completed" });
  }

  protected handshakeTimedOut(): void {
    this.handshake = null;
    this.handshakeFailed({ reason: "handshake timeout" });
  }
}

// ---- Helpers ------------------------------------------------------------------------------

/** A message framed once, unmasked, to be written to any number of server connections. */
export interface PreparedMessage {
  readonly chunks: readonly Uint8Array[];
  /** Payload bytes. */
  readonly size: number;
}

/** Frames a message for `sendPrepared()`; strings are text messages, bytes binary unless `binary` is false. */
export function prepareMessage(data: string | Uint8Array, binary = typeof data !== "string"): PreparedMessage {
  const payload = typeof data === "string" ? textEncoder.encode(data) : data;
  if (!binary && typeof data !== "string" && !isWellFormedUtf8(payload)) {
    throw new WebSocketError("ERR_INVALID_UTF8", "text message is not valid UTF-8");
  }
  // Prepared messages may be kept for long and go to many sockets: no slab piece in them.
  const chunks = encodeFrame(binary ? Opcode.BINARY : Opcode.TEXT, payload, true, 0, null).map(unpooled);
  return { chunks, size: payload.length };
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
 * `bytes` decoded, or null if they are not UTF-8. A short message is decoded leniently first:
 * without a U+FFFD in the result every byte was valid UTF-8 (the lenient decoder marks invalid
 * ones so); with one, the fatal decoder tells a real U+FFFD from a replaced byte.
 */
function decodeText(bytes: Uint8Array, lenientDecodeLimit: number): string | null {
  if (bytes.length <= lenientDecodeLimit) {
    const text = lenientDecoder.decode(bytes);
    if (text.indexOf("\ufffd") === -1) return text;
  }
  return decodeUtf8(bytes);
}

function decodeUtf8(bytes: Uint8Array): string | null {
  try {
    return utf8Decoder.decode(bytes);
  } catch {
    return null;
  }
}

function isWellFormedUtf8(bytes: Uint8Array): boolean {
  return decodeUtf8(bytes) !== null;
}

/** Cuts `text` to at most `max` bytes of UTF-8 without splitting a character. */
function truncateUtf8(text: string, max: number): string {
  if (text.length * 3 <= max) return text;
  let bytes = textEncoder.encode(text);
  if (bytes.length <= max) return text;
  let end = max;
  while (end > 0 && (bytes[end] & 0xc0) === 0x80) end--;
  bytes = bytes.subarray(0, end);
  return new TextDecoder().decode(bytes);
}

function isPromiseLike<T>(value: T | Promise<T>): value is Promise<T> {
  return typeof (value as { then?: unknown } | null)?.then === "function";
}

function mergeRsv(rsv: number, next: EncodedPayload | Promise<EncodedPayload>): EncodedPayload | Promise<EncodedPayload> {
  if (isPromiseLike(next)) return next.then((r) => ({ data: r.data, rsv: rsv | r.rsv }));
  return { data: next.data, rsv: rsv | next.rsv };
}
