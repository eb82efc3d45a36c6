/**
 * A WHATWG-compatible WebSocket client (https://websockets.spec.whatwg.org/), written once for
 * every runtime on the core's ClientConnection. A runtime supplies `dial`.
 */
import {
  type ClientExtensionFactory,
  ClientConnection,
  type CloseFrame,
  type ConnectionEvent,
  closePayload,
  type ConnectionOptions,
  type DeflateCodec,
  type HeadersInit,
  type PerMessageDeflateOptions,
  ReadyState,
  WebSocketError,
} from "../../core/mod.ts";
import { engineTuning } from "./engine.ts";
import { ConnectionError } from "./errors.ts";
import { BlobQueue } from "./blob-queue.ts";
import { isBlob, type SendData, toArrayBuffer, utf8Length, viewBytes } from "./data.ts";
import { now, Session, SessionHost, type SessionOwner } from "./session.ts";
import type { Runtime, TlsClientOptions, Transport } from "./transport.ts";
import { clientExtensions } from "./deflate.ts";

export type BinaryType = "blob" | "arraybuffer" | "uint8array";

/** Options beyond the browser's. */
export interface WebSocketOptions extends Omit<ConnectionOptions, "now" | "onWake"> {
  /** Extra request headers. */
  headers?: HeadersInit;
  /** The Origin header to send (browsers always send one; other clients usually don't). */
  origin?: string;
  tls?: TlsClientOptions;
  /** Milliseconds for connecting and the opening handshake together. Default 10,000. */
  connectTimeout?: number;
  /** Extensions to offer (permessage-deflate), in order of preference. */
  extensions?: ClientExtensionFactory[];
  /** permessage-deflate (RFC 7692) on node:zlib: true, or its options. Default true (as in ws). */
  perMessageDeflate?: boolean | PerMessageDeflateOptions;
  /**
   * Bytes waiting in the send buffer (`bufferedAmount`, automatic pongs and close replies
   * included) above which the client reads nothing more from the server until it drains, so a
   * server that floods pings and never reads cannot make it grow. `send()` is never dropped for it.
   * Default 16 MiB.
   */
  readLimit?: number;
}

const DEFAULT_READ_LIMIT = 16 * 1024 * 1024;

/** The close event (not a global in every runtime). */
export class CloseEvent extends Event {
  /** The peer's close code (1005: its close frame had none; 1006: none arrived), as in browsers. */
  readonly code: number;
  readonly reason: string;
  readonly wasClean: boolean;
  /** Beyond the browser's: the close frame we sent, the one we received (null: none), who sent the first. */
  readonly sent: CloseFrame | null;
  readonly received: CloseFrame | null;
  readonly initiator: "local" | "remote" | null;
  constructor(
    type: string,
    init: {
      code?: number;
      reason?: string;
      wasClean?: boolean;
      sent?: CloseFrame | null;
      received?: CloseFrame | null;
      initiator?: "local" | "remote" | null;
    } = {},
  ) {
    super(type);
    this.code = init.code ?? 0;
    this.reason = init.reason ?? "";
    this.wasClean = init.wasClean ?? false;
    this.sent = init.sent ?? null;
    this.received = init.received ?? null;
    this.initiator = init.initiator ?? null;
  }
}

/** The error event, carrying what went wrong (browsers give no detail; a server-side client can). */
export class ErrorEvent extends Event {
  readonly error: Error;
  readonly message: string;
  constructor(type: string, error: Error) {
    super(type);
    this.error = error;
    this.message = error.message;
  }
}

/**
 * The events a WebSocket dispatches, by type, as lib.dom's `WebSocketEventMap`: a message is the
 * runtime's global `MessageEvent`, close and error are this module's classes.
 */
export interface WebSocketEventMap {
  open: Event;
  message: MessageEvent;
  error: ErrorEvent;
  close: CloseEvent;
}

/** An `on*` handler for one event type. */
export type WebSocketEventHandler<K extends keyof WebSocketEventMap> =
  | ((this: WebSocket, event: WebSocketEventMap[K]) => unknown)
  | null;

type AnyHandler = WebSocketEventHandler<keyof WebSocketEventMap>;

/** Parses and checks a WebSocket URL (WHATWG "establish a WebSocket connection", steps 1–7). */
function parseUrl(url: string | URL): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new DOMException(`Invalid URL: ${String(url)}`, "SyntaxError");
  }
  if (parsed.protocol === "http:") parsed.protocol = "ws:";
  else if (parsed.protocol === "https:") parsed.protocol = "wss:";
  if (parsed.protocol !== "ws:" && parsed.protocol !== "wss:") {
    throw new DOMException(`The URL's scheme must be ws or wss, not ${parsed.protocol}`, "SyntaxError");
  }
  if (parsed.hash !== "" || String(url).includes("#")) {
    throw new DOMException("A WebSocket URL cannot have a fragment", "SyntaxError");
  }
  return parsed;
}

/**
 * What each runtime's TLS stack says when the first bytes back are not a TLS record (OpenSSL on
 * Node, BoringSSL on Bun, rustls on Deno): typically a plain HTTP server behind a wss:// URL.
 */
const NOT_TLS = /wrong.version.number|InvalidContentType|packet length too long|unknown protocol/i;

/** The subprotocols as a list; the core checks them (RFC 6455 §4.1: unique tokens). */
function protocolList(protocols: string | string[] | undefined): string[] {
  return protocols === undefined ? [] : typeof protocols === "string" ? [protocols] : [...protocols];
}

/**
 * The DOMException the WHATWG API throws for a core `WebSocketError`, so that each rule is
 * checked once, in the core; other errors as they are.
 */
function domException(error: unknown): unknown {
  if (!(error instanceof WebSocketError)) return error;
  switch (error.code) {
    case "ERR_INVALID_PROTOCOL":
    case "ERR_REASON_TOO_LONG":
      return new DOMException(error.message, "SyntaxError");
    case "ERR_INVALID_CLOSE_CODE":
      return new DOMException(error.message, "InvalidAccessError");
    case "ERR_INVALID_STATE":
      return new DOMException(error.message, "InvalidStateError");
    default:
      return error;
  }
}

/** The base class; each runtime's module exports a subclass bound to its `dial`. */
export class WebSocket extends EventTarget implements SessionOwner {
  static readonly CONNECTING = 0;
  static readonly OPEN = 1;
  static readonly CLOSING = 2;
  static readonly CLOSED = 3;
  readonly CONNECTING = 0;
  readonly OPEN = 1;
  readonly CLOSING = 2;
  readonly CLOSED = 3;

  readonly url: string;
  private binary: BinaryType = "blob";
  private negotiatedProtocol = "";
  private negotiatedExtensions = "";
  private state: ReadyState = ReadyState.CONNECTING;
  private session: Session | null = null;
  private closeEvent: ConstructorParameters<typeof CloseEvent>[1] | null = null; // from the connection
  private failure: Error | null = null;
  private discarded = 0; // bytes sent after closing, counted in bufferedAmount as the spec says
  private blobQueue: BlobQueue | null = null; // created by the first Blob sent
  private readonly handlers = new Map<string, { handler: AnyHandler; listener: EventListener }>();
  private readonly origin: string;

  /** `host` is shared by the sockets of one class (createWebSocketClass); without it, this socket has one of its own. */
  constructor(
    url: string | URL,
    protocols?: string | string[],
    options: WebSocketOptions = {},
    runtime?: Runtime,
    codec?: DeflateCodec,
    host: SessionHost = new SessionHost(),
  ) {
    super();
    const parsed = parseUrl(url);
    const offered = protocolList(protocols);
    this.url = parsed.href;
    this.origin = parsed.origin;
    if (!runtime) throw new TypeError("use the WebSocket class of a runtime adapter (anyws/node, /deno, /bun)");
    this.connect(runtime, host, parsed, offered, options, codec);
  }

  get readyState(): ReadyState {
    return this.state;
  }

  get protocol(): string {
    return this.negotiatedProtocol;
  }

  get extensions(): string {
    return this.negotiatedExtensions;
  }

  get binaryType(): BinaryType {
    return this.binary;
  }

  set binaryType(value: BinaryType) {
    // As in browsers, an unknown value is ignored.
    if (value === "blob" || value === "arraybuffer" || value === "uint8array") this.binary = value;
  }

  /** Bytes queued for sending and not yet handed to the network (messages being compressed included). */
  get bufferedAmount(): number {
    const session = this.session;
    return (session?.bufferedAmount ?? 0) + (session?.connection.pendingBytes ?? 0) + (this.blobQueue?.bytes ?? 0) + this.discarded;
  }

  get onopen(): WebSocketEventHandler<"open"> {
    return this.getHandler("open");
  }
  set onopen(handler: WebSocketEventHandler<"open">) {
    this.setHandler("open", handler);
  }
  get onmessage(): WebSocketEventHandler<"message"> {
    return this.getHandler("message");
  }
  set onmessage(handler: WebSocketEventHandler<"message">) {
    this.setHandler("message", handler);
  }
  get onerror(): WebSocketEventHandler<"error"> {
    return this.getHandler("error");
  }
  set onerror(handler: WebSocketEventHandler<"error">) {
    this.setHandler("error", handler);
  }
  get onclose(): WebSocketEventHandler<"close"> {
    return this.getHandler("close");
  }
  set onclose(handler: WebSocketEventHandler<"close">) {
    this.setHandler("close", handler);
  }

  send(data: SendData): void {
    if (this.state === ReadyState.CONNECTING) {
      throw new DOMException("The WebSocket is not open yet", "InvalidStateError");
    }
    if (isBlob(data) || this.blobQueue?.busy) {
      (this.blobQueue ??= new BlobQueue()).push(data, (value) => this.sendNow(value), (error) => this.fail(error));
      return;
    }
    this.sendNow(data);
  }

  /**
   * Starts the closing handshake. As in browsers: the code must be 1000 or 3000–4999
   * (InvalidAccessError) and the reason at most 123 bytes of UTF-8 (SyntaxError).
   */
  close(code?: number, reason?: string): void {
    if (code !== undefined && code !== 1000 && !(code >= 3000 && code <= 4999)) {
      throw new DOMException(`The close code must be 1000 or between 3000 and 4999, not ${code}`, "InvalidAccessError");
    }
    if (reason !== undefined) {
      try {
        closePayload(code ?? 1000, reason); // the core's rule for the reason (RFC 6455 §5.5.1)
      } catch (error) {
        throw domException(error);
      }
    }
    if (this.state === ReadyState.CLOSING || this.state === ReadyState.CLOSED) return;
    if (this.state === ReadyState.CONNECTING || this.session === null) {
      this.fail(new ConnectionError("WebSocket closed before the connection was established", 1006));
      return;
    }
    this.state = ReadyState.CLOSING;
    // WHATWG: a reason without a code is sent with 1000.
    this.session.connection.close(code ?? (reason !== undefined ? 1000 : undefined), reason);
    this.session.flush();
  }

  // ---- SessionOwner -------------------------------------------------------------------------

  /** @internal */
  onEvent(event: ConnectionEvent): void {
    switch (event.type) {
      case "open":
        this.negotiatedProtocol = event.protocol;
        this.negotiatedExtensions = event.extensions;
        this.state = ReadyState.OPEN;
        this.dispatchEvent(new Event("open"));
        return;
      case "text":
        if (this.state === ReadyState.OPEN) this.dispatchMessage(event.data);
        return;
      case "binary":
        if (this.state === ReadyState.OPEN) this.dispatchMessage(this.binaryData(event.data));
        return;
      case "handshake_failed": {
        const status = event.status !== undefined && event.status !== 101 ? ` (HTTP ${event.status})` : "";
        this.failure ??= new ConnectionError(`WebSocket handshake failed: ${event.reason}${status}`, 1006);
        // No WebSocket connection exists, so there is no closing handshake to wait for: close the
        // transport at once (RFC 6455 §7.1.7) rather than linger for a FIN a silent server never sends.
        queueMicrotask(() => this.fail(this.failure!));
        return;
      }
      case "error":
        this.failure ??= new ConnectionError(event.reason, event.code);
        return;
      case "close":
        this.closeEvent = event;
        if (this.state !== ReadyState.CLOSED) this.state = ReadyState.CLOSING;
        return;
      default:
        return; // pings are answered by the core; pongs and fragments need no event here
    }
  }

  /** @internal */
  onDrain(): void {}

  /** @internal */
  onTransportClose(error?: Error): void {
    if (error) this.failure ??= new ConnectionError(error.message, 1006, { cause: error });
    this.finish();
  }

  // ---- internals ----------------------------------------------------------------------------

  /** Builds the connection now, so that bad options (a header value) throw from the constructor. */
  private connect(
    runtime: Runtime,
    host: SessionHost,
    url: URL,
    protocols: string[],
    options: WebSocketOptions,
    codec: DeflateCodec | undefined,
  ): void {
    const timeout = options.connectTimeout ?? options.handshakeTimeout ?? 10_000;
    let connection: ClientConnection;
    try {
      connection = new ClientConnection({
        ...options,
        extensions: clientExtensions(options.extensions, options.perMessageDeflate, codec),
        host: url.host,
        path: (url.pathname || "/") + url.search,
        protocols,
        handshakeTimeout: timeout,
        tuning: options.tuning ?? engineTuning(),
        now: now(),
        onWake: host.wake,
      });
    } catch (error) {
      throw domException(error);
    }
    const session = new Session(host, connection, this);
    session.readLimit = options.readLimit ?? DEFAULT_READ_LIMIT;
    this.session = session;
    void this.dial(runtime, url, session, timeout, options);
  }

  private async dial(runtime: Runtime, url: URL, session: Session, timeout: number, options: WebSocketOptions): Promise<void> {
    const secure = url.protocol === "wss:";
    const host = url.hostname.startsWith("[") ? url.hostname.slice(1, -1) : url.hostname;
    const port = url.port ? Number(url.port) : secure ? 443 : 80;
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      const dialed = runtime.dial({ host, port, tls: secure ? options.tls ?? {} : undefined }, (transport: Transport) =>
        session.bind(transport)
      );
      const timedOut = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`connecting to ${url.host} timed out`)), timeout);
      });
      const transport = await Promise.race([dialed, timedOut]);
      if (this.state === ReadyState.CLOSED) transport.destroy(); // closed while connecting
    } catch (error) {
      let message = error instanceof Error ? error.message : String(error);
      if (secure && NOT_TLS.test(message)) {
        message = `cannot connect to ${url.host}: TLS handshake failed: the server did not answer with TLS (is it ws://?)`;
      }
      const text = /cannot connect/.test(message) ? message : `cannot connect to ${url.host}: ${message}`;
      this.fail(new ConnectionError(text, 1006, { cause: error }));
    } finally {
      clearTimeout(timer);
    }
  }

  /** Fails the connection (WHATWG "fail the WebSocket connection"): error, then close with 1006. */
  private fail(error: Error): void {
    this.failure ??= error;
    if (this.session !== null && !this.session.transportClosed && this.session.transport !== null) {
      this.session.destroy(); // onTransportClose finishes
      return;
    }
    this.session?.connection.abort();
    this.finish();
  }

  /** The connection is closed: fire error (if it failed or closed uncleanly), then close. */
  private finish(): void {
    if (this.state === ReadyState.CLOSED) return;
    this.state = ReadyState.CLOSED;
    const event = this.closeEvent ?? { code: 1006, reason: "", wasClean: false };
    if (!event.wasClean) {
      this.dispatchEvent(new ErrorEvent("error", this.failure ?? new ConnectionError("connection closed abnormally", 1006)));
    }
    this.dispatchEvent(new CloseEvent("close", event));
  }

  private sendNow(data: string | ArrayBuffer | ArrayBufferView): void {
    const bytes = typeof data === "string" ? null : viewBytes(data);
    const session = this.session!;
    const connection = session.connection;
    // WHATWG: once closing, by either side, data is discarded but still counted in bufferedAmount.
    const sent =
      this.state === ReadyState.OPEN &&
      connection.readyState === ReadyState.OPEN &&
      (bytes ? connection.sendBinary(bytes) : connection.sendText(data as string));
    if (!sent) {
      this.discarded += bytes ? bytes.length : utf8Length(data as string);
      return;
    }
    session.flush();
  }

  private binaryData(bytes: Uint8Array): Blob | ArrayBuffer | Uint8Array {
    if (this.binary === "uint8array") return bytes;
    if (this.binary === "arraybuffer") return toArrayBuffer(bytes);
    return new Blob([bytes as Uint8Array<ArrayBuffer>]);
  }

  private dispatchMessage(data: unknown): void {
    this.dispatchEvent(new MessageEvent("message", { data, origin: this.origin }));
  }

  private getHandler<K extends keyof WebSocketEventMap>(type: K): WebSocketEventHandler<K> {
    return (this.handlers.get(type)?.handler ?? null) as WebSocketEventHandler<K>;
  }

  /** HTML §8.1.8.1: a replaced handler keeps its listener's place; one set after null goes last. */
  private setHandler<K extends keyof WebSocketEventMap>(type: K, handler: WebSocketEventHandler<K>): void {
    const previous = this.handlers.get(type);
    if (typeof handler !== "function") {
      if (previous) this.removeEventListener(type, previous.listener);
      this.handlers.delete(type);
      return;
    }
    if (previous) {
      previous.handler = handler as AnyHandler;
      return;
    }
    const entry = {
      handler: handler as AnyHandler,
      listener: ((event) => (entry.handler as NonNullable<WebSocketEventHandler<K>>).call(this, event as never)) as EventListener,
    };
    this.handlers.set(type, entry);
    this.addEventListener(type, entry.listener);
  }
}

// Typed listeners for the WebSocket's own events (declaration merging, as lib.dom's WebSocket
// declares them); any other type falls back to EventTarget's signature.
export interface WebSocket {
  addEventListener<K extends keyof WebSocketEventMap>(
    type: K,
    listener: (this: WebSocket, event: WebSocketEventMap[K]) => unknown,
    options?: boolean | AddEventListenerOptions,
  ): void;
  addEventListener(
    type: string,
    listener: EventListener | EventListenerObject | null,
    options?: boolean | AddEventListenerOptions,
  ): void;
  removeEventListener<K extends keyof WebSocketEventMap>(
    type: K,
    listener: (this: WebSocket, event: WebSocketEventMap[K]) => unknown,
    options?: boolean | EventListenerOptions,
  ): void;
  removeEventListener(
    type: string,
    listener: EventListener | EventListenerObject | null,
    options?: boolean | EventListenerOptions,
  ): void;
}

/** Builds a runtime's WebSocket class: `new WebSocket(url, protocols?, options?)`. */
export function createWebSocketClass(runtime: Runtime, codec?: DeflateCodec): typeof WebSocket {
  const host = new SessionHost(); // shared by this class's sockets only
  return class extends WebSocket {
    constructor(url: string | URL, protocols?: string | string[], options?: WebSocketOptions) {
      super(url, protocols, options, runtime, codec, host);
    }
  };
}
