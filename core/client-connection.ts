/**
 * The client role's opening handshake (RFC 6455 §4.1): writes the upgrade request at once, with
 * the extensions it offers, then checks the server's response.
 */
import { CloseCode } from "./errors.ts";
import type { ClientExtensionFactory } from "./extension.ts";
import { type ExtensionOffer, formatExtensions } from "./extension-header.ts";
import { acceptExtensions } from "./extension-pipeline.ts";
import { Connection } from "./connection.ts";
import { type ConnectionEvent, ReadyState } from "./events.ts";
import type { ConnectionOptions } from "./options.ts";
import { generateKey } from "./handshake.ts";
import { type ClientHandshakeResult, ClientHandshakeParser, buildClientRequest } from "./handshake-client.ts";
import type { HeadersInit } from "./http.ts";

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
      limits: this.options.httpLimits,
      maxBodySize: options.maxResponseBodySize,
    });
  }

  override receive(chunk: Uint8Array): void {
    if (this.readyState !== ReadyState.CONNECTING) {
      super.receive(chunk);
      return;
    }
    if (this.handshake === null || chunk.length === 0) return;
    const result = this.handshake.push(chunk);
    if (result !== undefined) this.handshakeDone(result);
  }

  override receiveEof(): void {
    if (this.readyState === ReadyState.CONNECTING && this.handshake !== null) this.handshakeDone(this.handshake.end());
    super.receiveEof();
  }

  private handshakeDone(result: ClientHandshakeResult): void {
    this.handshake = null;
    if (!result.ok) {
      const { reason, status, statusText, headers, body } = result;
      this.handshakeFailed({ reason, status, statusText, headers, body });
      return;
    }
    const accepted = acceptExtensions(this.factories, result.extensions);
    if (typeof accepted === "string") {
      this.handshakeFailed({ reason: accepted, status: 101, headers: result.headers });
      return;
    }
    this.extensions = accepted;
    const header = result.extensions.length ? formatExtensions(result.extensions) : "";
    this.open(result.protocol, header, result.headers);
    if (result.rest.length !== 0) super.receive(result.rest);
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
