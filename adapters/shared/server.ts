/**
 * The WebSocket server, written once for every runtime: per-connection sockets, the upgrade
 * hook, backpressure, keepalive, pub/sub and graceful shutdown. A runtime supplies `listen`.
 */
import {
  type CloseFrame,
  type ConnectionEvent,
  type ConnectionConfig,
  connectionConfig,
  type ConnectionOptions,
  type DeflateCodec,
  type HeadersInit,
  type PerMessageDeflateOptions,
  type PreparedMessage,
  prepareMessage,
  ReadyState,
  type ServerExtensionFactory,
  ServerConnection,
  type UpgradeRequest,
} from "../../core/mod.ts";
import { engineTuning } from "./engine.ts";
import { Backplane, type BackplaneOptions } from "./backplane.ts";
import { ConnectionError } from "./errors.ts";
import { BlobQueue } from "./blob-queue.ts";
import { isBlob, type SendData, utf8Length, viewBytes } from "./data.ts";
import { now, Session, SessionHost, type SessionOwner } from "./session.ts";
import type { Listener, Runtime, TlsServerOptions, Transport, TransportHandler } from "./transport.ts";
import { serverExtensions } from "./deflate.ts";

/** What the upgrade hook sees: the request, and who sent it. */
export interface UpgradeInfo extends UpgradeRequest {
  remoteAddress: string;
  remotePort: number;
}

/** The closing handshake as it went: the close frames each way (null: none), and who sent the first (null: neither). */
export interface ClosingHandshake {
  sent: CloseFrame | null;
  received: CloseFrame | null;
  initiator: "local" | "remote" | null;
}

/** The upgrade hook's answer: accept (the default), or reject with an HTTP response. */
export type UpgradeResponse<T> =
  | { accept?: true; protocol?: string; headers?: HeadersInit; data?: T }
  | { accept: false; status: number; statusText?: string; headers?: HeadersInit; body?: string | Uint8Array };

export interface ServerHandlers<T = undefined> {
  /**
   * Decides on each upgrade request. Without a hook, or when it returns nothing, the request is
   * accepted with the first subprotocol the client offered (as `ws` does).
   */
  upgrade?(request: UpgradeInfo): UpgradeResponse<T> | void | Promise<UpgradeResponse<T> | void>;
  open?(ws: ServerWebSocket<T>): void;
  /** Text arrives as a string, binary as a Uint8Array view of the received bytes, valid until the handler returns: copy it (`data.slice()`) to keep it. */
  message?(ws: ServerWebSocket<T>, data: string | Uint8Array, isBinary: boolean): void;
  /**
   * The connection is closed: `code` and `reason` are the peer's (1005: its close frame had no
   * code; 1006: none arrived), as in `ws`; `closing` has both close frames and who sent the first.
   */
  close?(ws: ServerWebSocket<T>, code: number, reason: string, wasClean: boolean, closing: ClosingHandshake): void;
  drain?(ws: ServerWebSocket<T>): void;
  ping?(ws: ServerWebSocket<T>, data: Uint8Array): void;
  pong?(ws: ServerWebSocket<T>, data: Uint8Array): void;
  /** The connection failed (protocol error by the peer, transport error), or a handler threw. */
  error?(ws: ServerWebSocket<T>, error: Error): void;
}

export interface ServerOptions extends Omit<ConnectionOptions, "now" | "onWake" | "random"> {
  /** Only upgrade requests for this path are accepted (404 otherwise). */
  path?: string;
  /**
   * Bytes a socket may have waiting in its send buffer (`bufferedAmount`: messages, and what the
   * peer made it write, pongs and close replies included). A `send()` beyond it is dropped (it
   * returns 0); and while the buffer is over it, the socket reads nothing more from its peer
   * until the buffer has drained, so a peer that does not read cannot make it grow. Default 16 MiB.
   */
  backpressureLimit?: number;
  /** Close with 1008 instead, when the buffer goes over `backpressureLimit` (as in Bun). Default false. */
  closeOnBackpressureLimit?: boolean;
  /** Extensions the server supports (permessage-deflate), in order of preference. */
  extensions?: ServerExtensionFactory[];
  /** permessage-deflate (RFC 7692) on node:zlib: true, or its options. Default false (as in ws). */
  perMessageDeflate?: boolean | PerMessageDeflateOptions;
  /**
   * Carries `publish` to the servers of other processes (see "anyws/backplane"). The driver
   * starts with the server; `serve()` does not wait for it (`server.backplane.ready` does).
   */
  backplane?: BackplaneOptions;
}

export interface ServeOptions extends ServerOptions {
  port?: number;
  hostname?: string;
  tls?: TlsServerOptions;
  /**
   * Lets several processes listen on the same port (SO_REUSEPORT), the kernel spreading the
   * connections among them. Linux only; Node >= 22.12; Deno with `--unstable-net`. Where it
   * cannot work, `serve()` rejects rather than ignore it. Default false.
   */
  reusePort?: boolean;
}

export interface ShutdownOptions {
  code?: number;
  reason?: string;
  /** Milliseconds to wait for closing handshakes before the rest are terminated. Default 5000. */
  timeout?: number;
}

/** Result of `send()`: the message's bytes when written (> 0), -1 queued under backpressure, 0 dropped (closed, or over the limit). */
export type SendResult = number;

const DEFAULT_BACKPRESSURE_LIMIT = 16 * 1024 * 1024;
const DEFAULT_KEEPALIVE = 30_000;

/**
 * Accepts connections from any transport: from its own listener, or handed over by an HTTP
 * server's upgrade (Node) or by any other stack.
 */
export class WebSocketServer<T = undefined> {
  /** Open sockets. */
  readonly clients: Set<ServerWebSocket<T>> = new Set<ServerWebSocket<T>>();
  private readonly handshaking = new Set<Session>();
  private readonly topics = new Map<string, Set<ServerWebSocket<T>>>();
  private readonly handlers: ServerHandlers<T>;
  readonly options: ServerOptions;
  private listener: Listener | null = null;
  private closing = false;
  private readonly extensions: ServerExtensionFactory[] | undefined;
  /** What this server's sessions share (timer, write task, merge buffers), with no other server. */
  private readonly host = new SessionHost();
  /** The connections' options, resolved once and shared by all of them. */
  private readonly connectionConfig: ConnectionConfig;
  /** The link to other processes' servers, with its counters (`stats()`), when `options.backplane` is set. */
  readonly backplane: Backplane | null;

  /** `codec` runs `perMessageDeflate` (adapters/zlib/server.ts, the class every entry exports, passes node:zlib's). */
  constructor(options: ServerOptions, handlers: ServerHandlers<T>, codec?: DeflateCodec) {
    this.options = options;
    this.backplane = options.backplane
      ? new Backplane(options.backplane, (topic, payload, binary) => {
        if (this.topics.has(topic)) this.deliver(topic, prepareMessage(payload, binary));
      })
      : null;
    this.handlers = handlers;
    this.extensions = serverExtensions(options.extensions, options.perMessageDeflate, codec);
    this.connectionConfig = connectionConfig({
      ...options,
      keepaliveInterval: options.keepaliveInterval ?? DEFAULT_KEEPALIVE,
      tuning: options.tuning ?? engineTuning(),
      onWake: this.host.wake,
    });
  }

  get port(): number {
    return this.listener?.port ?? 0;
  }

  get hostname(): string {
    return this.listener?.hostname ?? "";
  }

  /** Listens with `runtime`; used by each adapter's `serve()`. */
  async listen(runtime: Runtime, options: ServeOptions): Promise<this> {
    this.listener = await runtime.listen(
      { port: options.port ?? 0, hostname: options.hostname ?? "127.0.0.1", tls: options.tls, reusePort: options.reusePort },
      (transport) => this.accept(transport),
    );
    return this;
  }

  /** Takes a new transport whose first bytes are an upgrade request; returns its handler. */
  accept(transport: Transport): TransportHandler {
    const o = this.options;
    const connection = new ServerConnection({ config: this.connectionConfig, extensions: this.extensions, now: now() });
    const owner = new Handshake(this, transport);
    const session = new Session(this.host, connection, owner);
    owner.session = session;
    session.readLimit = o.backpressureLimit ?? DEFAULT_BACKPRESSURE_LIMIT;
    if (this.closing) {
      session.bind(transport);
      connection.abort();
      transport.destroy();
      return session;
    }
    this.handshaking.add(session);
    return session.bind(transport);
  }

  /**
   * Sends to every subscriber of `topic`, framed once, then relays it through the backplane to
   * other processes. Returns how many local sockets it went to.
   */
  publish(topic: string, data: string | ArrayBuffer | ArrayBufferView, except?: ServerWebSocket<T>): number {
    const payload = typeof data === "string" ? data : viewBytes(data);
    const count = this.topics.has(topic) ? this.deliver(topic, prepareMessage(payload), except) : 0;
    this.backplane?.publish(topic, payload);
    return count;
  }

  private deliver(topic: string, message: PreparedMessage, except?: ServerWebSocket<T>): number {
    const subscribers = this.topics.get(topic);
    if (!subscribers) return 0;
    let count = 0;
    for (const ws of subscribers) {
      if (ws !== except && ws.sendPrepared(message) !== 0) count++;
    }
    return count;
  }

  /** Sockets of this server (this process) subscribed to `topic`; other processes' are not counted. */
  subscriberCount(topic: string): number {
    return this.topics.get(topic)?.size ?? 0;
  }

  /**
   * Graceful shutdown: stop accepting, close every socket (1001 by default), wait for the
   * closing handshakes up to `timeout`, then terminate the rest.
   */
  async close(options: ShutdownOptions = {}): Promise<void> {
    this.closing = true;
    const listener = this.listener;
    this.listener = null;
    await listener?.close();
    for (const session of this.handshaking) session.destroy();
    const code = options.code ?? 1001;
    const reason = options.reason ?? "server shutting down";
    const closed = [...this.clients].map((ws) => ws.closed);
    for (const ws of this.clients) ws.close(code, reason);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, options.timeout ?? 5000)));
    await Promise.race([Promise.all(closed), timeout]);
    clearTimeout(timer);
    for (const ws of this.clients) ws.terminate();
    await Promise.all([...closed, this.backplane?.close()]);
  }

  /**
   * Whether upgrades for `path` (a request-target's path as the core parses it: not decoded, not
   * normalized) are this server's; others are answered with 404.
   */
  servesPath(path: string | undefined): boolean {
    return this.options.path === undefined || path === this.options.path;
  }

  // ---- for the sockets and handshakes of this server --------------------------------------

  /** @internal */
  async upgrade(handshake: Handshake, request: UpgradeRequest): Promise<void> {
    const session = handshake.session;
    const connection = session.connection as ServerConnection;
    const transport = handshake.transport;
    // The core's request object itself, completed: the connection keeps it too, so a copy would
    // cost every open connection a second object.
    const info: UpgradeInfo = Object.assign(request, { remoteAddress: transport.remoteAddress, remotePort: transport.remotePort });
    let answer: UpgradeResponse<T> | void;
    if (!this.servesPath(request.path)) {
      answer = { accept: false, status: 404, body: "no WebSocket endpoint here" };
    } else {
      try {
        answer = await this.handlers.upgrade?.(info);
      } catch (error) {
        this.reportError(null, error);
        answer = { accept: false, status: 500, body: "upgrade failed" };
      }
    }
    if (session.transportClosed || connection.readyState !== ReadyState.CONNECTING || connection.closeExpected) return;
    if (answer && answer.accept === false) {
      connection.reject(answer);
      session.flush();
      return;
    }
    const protocol = (answer?.protocol ?? request.protocols[0]) || undefined; // "" chooses none
    try {
      connection.accept({ protocol, headers: answer?.headers });
    } catch (error) {
      // The hook's answer was not sendable (an unoffered subprotocol, a bad header): a server bug.
      this.reportError(null, error);
      connection.reject({ status: 500, body: "upgrade failed" });
      session.flush();
      return;
    }
    // The socket owns the session from its open event on; the handshake is done with.
    session.handOver(new ServerWebSocket<T>(this, session, info, answer?.data as T));
    session.flush();
  }

  /** @internal */
  opened(session: Session, ws: ServerWebSocket<T>): void {
    this.handshaking.delete(session);
    this.clients.add(ws);
    this.call(ws, () => this.handlers.open?.(ws));
  }

  /** @internal */
  ended(session: Session, ws: ServerWebSocket<T> | null): void {
    this.handshaking.delete(session);
    if (ws === null) return;
    this.clients.delete(ws);
    for (const topic of ws.topics) this.unsubscribe(ws, topic);
  }

  /** @internal */
  subscribe(ws: ServerWebSocket<T>, topic: string): void {
    let set = this.topics.get(topic);
    if (!set) {
      this.topics.set(topic, (set = new Set()));
      this.backplane?.topicAdded(topic);
    }
    set.add(ws);
  }

  /** @internal */
  unsubscribe(ws: ServerWebSocket<T>, topic: string): void {
    const set = this.topics.get(topic);
    if (!set) return;
    set.delete(ws);
    if (set.size === 0) {
      this.topics.delete(topic);
      this.backplane?.topicRemoved(topic);
    }
  }

  /** @internal */
  get handler(): ServerHandlers<T> {
    return this.handlers;
  }

  /** Runs a user handler; what it throws goes to the error handler, or is reported as uncaught. */
  /** @internal */
  call(ws: ServerWebSocket<T> | null, fn: () => void): void {
    try {
      fn();
    } catch (error) {
      this.reportError(ws, error);
    }
  }

  /**
   * A handler threw: the socket's `error` handler gets it. Without one (or for the upgrade hook,
   * which has no socket yet, and whose request was answered with 500) it is logged: an
   * application bug must be seen, but must not bring the server down.
   * @internal
   */
  reportError(ws: ServerWebSocket<T> | null, error: unknown): void {
    const err = error instanceof Error ? error : new Error(String(error));
    if (ws && this.handlers.error) {
      try {
        this.handlers.error(ws, err);
        return;
      } catch (inner) {
        error = inner;
      }
    }
    console.error("anyws: a server handler threw:", error);
  }
}

/** Owns a session until its upgrade is accepted (then its ServerWebSocket does) or fails. */
class Handshake<T = unknown> implements SessionOwner {
  session!: Session;
  readonly transport: Transport;
  private readonly server: WebSocketServer<T>;

  constructor(server: WebSocketServer<T>, transport: Transport) {
    this.server = server;
    this.transport = transport;
  }

  onEvent(event: ConnectionEvent): void {
    if (event.type === "upgrade") void this.server.upgrade(this, event.request);
  }

  onDrain(): void {}

  onTransportClose(): void {
    this.server.ended(this.session, null);
  }
}

type CloseReport = ClosingHandshake & { code: number; reason: string; wasClean: boolean };
/** The report of a connection whose core reported no close (the transport closed first). */
const NO_CLOSE: CloseReport = Object.freeze({ code: 1006, reason: "", wasClean: false, sent: null, received: null, initiator: null });

/** One accepted WebSocket connection on the server. */
export class ServerWebSocket<T = undefined> {
  /** Per-connection data, from the upgrade hook's answer. */
  data: T;
  /** The upgrade request, with the peer's address. */
  readonly request: UpgradeInfo;

  private readonly server: WebSocketServer<T>;
  private readonly session: Session;
  private subscriptionSet: Set<string> | null = null; // created by the first subscribe()
  private negotiatedProtocol = "";
  private negotiatedExtensions = "";
  private blobQueue: BlobQueue | null = null; // created by the first Blob sent
  private closeEvent: CloseReport | null = null; // from the connection
  private errorReported = false;
  private closedPromise: Promise<void> | null = null; // created when first asked for
  private resolveClosed: (() => void) | null = null;
  private transportClosed = false;

  constructor(server: WebSocketServer<T>, session: Session, request: UpgradeInfo, data: T) {
    this.server = server;
    this.session = session;
    this.request = request;
    this.data = data;
  }

  /** Resolves once the transport is closed. */
  get closed(): Promise<void> {
    if (this.closedPromise === null) {
      this.closedPromise = this.transportClosed
        ? Promise.resolve()
        : new Promise((resolve) => (this.resolveClosed = resolve));
    }
    return this.closedPromise;
  }

  private get subscriptions(): Set<string> {
    return (this.subscriptionSet ??= new Set());
  }

  get readyState(): ReadyState {
    if (this.closeEvent !== null && this.session.transportClosed) return ReadyState.CLOSED;
    const state = this.session.connection.readyState;
    return state === ReadyState.CLOSED ? ReadyState.CLOSING : state;
  }

  get protocol(): string {
    return this.negotiatedProtocol;
  }

  get extensions(): string {
    return this.negotiatedExtensions;
  }

  get remoteAddress(): string {
    return this.request.remoteAddress;
  }

  /** Bytes waiting in the send buffer, of messages sent but still being compressed, and of Blobs being read (and sends queued behind one). */
  get bufferedAmount(): number {
    return this.session.bufferedAmount + this.session.connection.pendingBytes + (this.blobQueue?.bytes ?? 0);
  }

  /**
   * Sends a message: a string as text, bytes or a Blob as binary. Returns the message's size in
   * bytes (UTF-8 for a string; 1 for an empty message) when it was written (or is being compressed), -1 when this message
   * took the transport's buffer over its high-water mark (it is queued; `drain` follows), or
   * while a Blob sent before it is being read, 0 if dropped
   * (closing or closed, by either side, or over `backpressureLimit`). It never throws for the
   * connection's state: a send that loses a race with the peer's close is dropped.
   */
  send(data: SendData, options?: { compress?: boolean }): SendResult {
    if (!this.canSend()) return 0;
    if (isBlob(data) || this.blobQueue?.busy) return this.sendLater(data, options);
    return this.sendNow(data, options);
  }

  private sendNow(data: string | ArrayBuffer | ArrayBufferView, options?: { compress?: boolean }): SendResult {
    const connection = this.session.connection;
    let size: number;
    let sent: boolean;
    if (typeof data === "string") {
      sent = connection.sendText(data, options);
      size = utf8Length(data);
    } else {
      const bytes = viewBytes(data);
      sent = connection.sendBinary(bytes, options);
      size = bytes.length;
    }
    return sent ? this.flushed(size) : 0;
  }

  /** @internal Sends a message framed once for many sockets (pub/sub). */
  sendPrepared(message: PreparedMessage): SendResult {
    if (!this.canSend()) return 0;
    if (!this.session.connection.sendPrepared(message)) return 0;
    return this.flushed(message.size);
  }

  /** Sends a ping (at most 125 bytes); returns as `send`, 0 when closing or closed. */
  ping(data?: string | ArrayBuffer | ArrayBufferView): SendResult {
    return this.sendControl(true, data);
  }

  /** Sends an unsolicited pong (at most 125 bytes); returns as `send`, 0 when closing or closed. */
  pong(data?: string | ArrayBuffer | ArrayBufferView): SendResult {
    return this.sendControl(false, data);
  }

  private sendControl(ping: boolean, data?: string | ArrayBuffer | ArrayBufferView): SendResult {
    const connection = this.session.connection;
    if (connection.readyState !== ReadyState.OPEN || this.session.transportClosed) return 0;
    const payload = data === undefined || typeof data === "string" ? data : viewBytes(data);
    if (!(ping ? connection.ping(payload) : connection.pong(payload))) return 0;
    return this.flushed(payload === undefined ? 0 : typeof payload === "string" ? utf8Length(payload) : payload.length);
  }

  /** Starts the closing handshake. Throws on a code or reason that may not be sent. */
  close(code?: number, reason?: string): void {
    this.session.connection.close(code, reason);
    this.session.flush();
  }

  /** Ends the connection at once, without a closing handshake. */
  terminate(): void {
    this.session.destroy();
  }

  subscribe(topic: string): void {
    if (this.readyState !== ReadyState.OPEN || this.subscriptions.has(topic)) return;
    this.subscriptions.add(topic);
    this.server.subscribe(this, topic);
  }

  unsubscribe(topic: string): void {
    if (this.subscriptionSet === null || !this.subscriptionSet.delete(topic)) return;
    this.server.unsubscribe(this, topic);
  }

  isSubscribed(topic: string): boolean {
    return this.subscriptionSet?.has(topic) ?? false;
  }

  get topics(): string[] {
    return this.subscriptionSet === null ? [] : [...this.subscriptionSet];
  }

  /** Sends to every other subscriber of `topic` (this socket excluded, as in Bun), and to other processes through the backplane. */
  publish(topic: string, data: string | ArrayBuffer | ArrayBufferView): number {
    return this.server.publish(topic, data, this);
  }

  // ---- from the session -------------------------------------------------------------------

  /** @internal */
  onEvent(event: ConnectionEvent): void {
    const server = this.server;
    const handlers = server.handler;
    switch (event.type) {
      case "open":
        this.negotiatedProtocol = event.protocol;
        this.negotiatedExtensions = event.extensions;
        server.opened(this.session, this);
        return;
      case "text":
      case "binary":
        if (handlers.message) {
          try {
            handlers.message(this, event.data, event.type === "binary");
          } catch (error) {
            server.reportError(this, error);
          }
        }
        return;
      case "ping":
        if (handlers.ping) server.call(this, () => handlers.ping!(this, event.data));
        return;
      case "pong":
        if (handlers.pong) server.call(this, () => handlers.pong!(this, event.data));
        return;
      case "error":
        this.reportError(new ConnectionError(event.reason, event.code));
        return;
      case "close":
        this.closeEvent = event;
        this.server.ended(this.session, this);
        this.subscriptionSet?.clear();
        return;
      default:
        return;
    }
  }

  /** @internal */
  onDrain(): void {
    const handlers = this.server.handler;
    if (handlers.drain) this.server.call(this, () => handlers.drain!(this));
  }

  /** @internal The peer's traffic filled the send buffer past the limit; reading is paused. */
  onReadLimit(): void {
    if (this.server.options.closeOnBackpressureLimit) this.close(1008, "send buffer limit exceeded");
  }

  /** @internal The transport closed; the connection reported its close event before this. */
  onTransportClose(error?: Error): void {
    // Usually done at the close event already; not when that event is still queued behind a
    // message being decoded. `ended` is idempotent.
    this.server.ended(this.session, this);
    if (error) this.reportError(new ConnectionError(error.message, 1006, { cause: error }));
    const event = this.closeEvent ?? NO_CLOSE;
    const handlers = this.server.handler;
    if (handlers.close) this.server.call(this, () => handlers.close!(this, event.code, event.reason, event.wasClean, event));
    this.transportClosed = true;
    this.resolveClosed?.();
  }

  private reportError(error: Error): void {
    if (this.errorReported) return;
    this.errorReported = true;
    const handlers = this.server.handler;
    if (handlers.error) this.server.call(this, () => handlers.error!(this, error));
  }

  private canSend(): boolean {
    const connection = this.session.connection;
    if (connection.readyState !== ReadyState.OPEN || this.session.transportClosed) return false;
    const o = this.server.options;
    const pending = connection.pendingBytes + (this.blobQueue?.bytes ?? 0);
    if (this.session.bufferedAtLeast((o.backpressureLimit ?? DEFAULT_BACKPRESSURE_LIMIT) - pending)) {
      if (o.closeOnBackpressureLimit) this.close(1008, "send buffer limit exceeded");
      else this.session.drainWanted = true; // over the limit with messages still being compressed: no drain may come from the transport
      return false;
    }
    return true;
  }

  /** Writes what this call queued and says how it went: -1 when this write left the transport over its high-water mark. */
  private flushed(size: number): SendResult {
    return this.session.write() ? Math.max(size, 1) : -1;
  }

  /** Reads a Blob, keeping every later send behind it. */
  private sendLater(data: SendData, options?: { compress?: boolean }): SendResult {
    (this.blobQueue ??= new BlobQueue()).push(
      data,
      (value) => {
        if (this.canSend()) this.sendNow(value, options);
      },
      (error) => this.reportError(error),
    );
    return -1;
  }
}

/**
 * An upgrade hook answer that rejects browsers from other origins with 403 (RFC 6455 §10.2):
 * undefined (accept) when the request's Origin is one of `allowed` (compared case-insensitively).
 * A request without an Origin is accepted by default, since browsers always send one and other
 * clients (servers, command-line tools) usually don't, so it cannot come from a page of another
 * site; `allowMissing: false` rejects it with 403 as well.
 */
export function checkOrigin(
  request: UpgradeInfo,
  allowed: readonly string[],
  options: { allowMissing?: boolean } = {},
): UpgradeResponse<never> | undefined {
  const origin = request.origin;
  if (origin === null) {
    return options.allowMissing === false ? { accept: false, status: 403, body: "Origin required" } : undefined;
  }
  const normalized = origin.toLowerCase();
  if (allowed.some((o) => o.toLowerCase() === normalized)) return undefined;
  return { accept: false, status: 403, body: "Origin not allowed" };
}

/** Builds a runtime's `serve()`. */
export function createServe(
  runtime: Runtime,
  codec?: DeflateCodec,
): <T = undefined>(options: ServeOptions, handlers: ServerHandlers<T>) => Promise<WebSocketServer<T>> {
  return function serve<T = undefined>(options: ServeOptions, handlers: ServerHandlers<T>): Promise<WebSocketServer<T>> {
    return new WebSocketServer<T>(options, handlers, codec).listen(runtime, options);
  };
}
