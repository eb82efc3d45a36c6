/**
 * The server role's opening handshake (RFC 6455 §4.2): reads the upgrade request, lets the owner
 * accept or reject it, negotiates extensions, and holds bytes that arrive before the answer.
 */
import { CloseCode, WebSocketError } from "./errors.ts";
import type { ServerExtensionFactory } from "./extension.ts";
import { formatExtensions } from "./extension-header.ts";
import { negotiateExtensions } from "./extension-pipeline.ts";
import { Connection } from "./connection.ts";
import { ReadyState } from "./events.ts";
import type { ConnectionOptions } from "./options.ts";
import {
  type AcceptOptions,
  type RejectOptions,
  ServerHandshakeParser,
  type UpgradeRequest,
  buildAcceptResponse,
  buildRejectResponse,
} from "./handshake.ts";
import { DEFAULT_HTTP_LIMITS } from "./http.ts";

const NO_SERVER_FACTORIES: readonly ServerExtensionFactory[] = Object.freeze([]);

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
    this.handshake = new ServerHandshakeParser(this.options.httpLimits);
    this.factories = options.extensions ?? NO_SERVER_FACTORIES;
  }

  /** The upgrade request, once it has arrived. */
  get upgradeRequest(): UpgradeRequest | null {
    return this.request;
  }

  override receive(chunk: Uint8Array): void {
    if (this.readyState !== ReadyState.CONNECTING) {
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
    const negotiated = options.extensions === false ? [] : negotiateExtensions(this.factories, request.extensions);
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
    if (this.readyState !== ReadyState.CONNECTING || this.request === null || this.closeExpected) {
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
    if (this.earlySize > (this.options.httpLimits?.maxHeadSize ?? DEFAULT_HTTP_LIMITS.maxHeadSize)) {
      this.rejectWith({ status: 400, body: "data sent before the handshake completed" }, "data sent before the handshake completed");
      return;
    }
    (this.early ??= []).push(chunk);
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
