/**
 * The client's side of the opening handshake (RFC 6455 §4.1): the upgrade request, and the
 * parser that validates the server's response (step 5 of the client requirements), collecting
 * the body of a refusal for the application. Peer input never throws; local misuse throws
 * WebSocketError.
 */
import { WebSocketError } from "./errors.ts";
import { type ExtensionOffer, parseExtensions } from "./extension-header.ts";
import {
  WS_VERSION,
  acceptKey,
  extraHeaders,
  isValidKey,
  isVisibleAsciiString,
  requireParsableExtensions,
} from "./handshake.ts";
import { BodyReader, type BodyReadStatus, responseBodyFraming } from "./http-body.ts";
import {
  type HeaderList,
  type HeadersInit,
  HttpHeadParser,
  type HttpLimits,
  type HttpResponseHead,
  isToken,
  listHasToken,
  resolveLimits,
  serializeHead,
  tokenList,
} from "./http.ts";

export interface ClientRequestOptions {
  /** Host header value, e.g. "example.com:8080" or "[::1]:80". */
  host: string;
  /** Path and query, e.g. "/chat?room=1". */
  path: string;
  /** From generateKey(). */
  key: string;
  protocols?: string[] | undefined;
  /** Sec-WebSocket-Extensions offer, already formatted. */
  extensions?: string | undefined;
  origin?: string | undefined;
  headers?: HeadersInit | undefined;
}

const REQUEST_OWNED = [
  "host",
  "upgrade",
  "connection",
  "sec-websocket-key",
  "sec-websocket-version",
  "sec-websocket-protocol",
  "sec-websocket-extensions",
  "content-length",
  "transfer-encoding",
];

/** The client's opening handshake (RFC 6455 §4.1). Throws WebSocketError on bad options. */
export function buildClientRequest(options: ClientRequestOptions): Uint8Array {
  const { host, path, key, origin } = options;
  requireRequestPath(path);
  if (!isVisibleAsciiString(host)) {
    throw new WebSocketError("ERR_INVALID_HEADER", `invalid Host ${JSON.stringify(host)}`);
  }
  if (!isValidKey(key)) {
    throw new WebSocketError(
      "ERR_INVALID_ARGUMENT",
      "key must be 16 bytes in base64 (use generateKey)",
    );
  }

  const headers: [string, string][] = [
    ["Host", host],
    ["Upgrade", "websocket"],
    ["Connection", "Upgrade"],
    ["Sec-WebSocket-Key", key],
    ["Sec-WebSocket-Version", String(WS_VERSION)],
  ];
  const protocols = options.protocols ?? [];
  requireProtocolList(protocols);
  if (protocols.length > 0) headers.push(["Sec-WebSocket-Protocol", protocols.join(", ")]);
  if (options.extensions !== undefined && options.extensions !== "") {
    requireParsableExtensions(options.extensions);
    headers.push(["Sec-WebSocket-Extensions", options.extensions]);
  }
  const owned = origin === undefined ? REQUEST_OWNED : [...REQUEST_OWNED, "origin"];
  if (origin !== undefined) headers.push(["Origin", origin]);
  headers.push(...extraHeaders(options.headers, owned));
  return serializeHead(`GET ${path} HTTP/1.1`, headers);
}

/** origin-form request-target: "/" then visible ASCII, no fragment (RFC 7230 §5.3.1). */
function requireRequestPath(path: string): void {
  if (!path.startsWith("/") || !isVisibleAsciiString(path) || path.includes("#")) {
    const rule = 'must start with "/" and be percent-encoded ASCII without "#"';
    throw new WebSocketError(
      "ERR_INVALID_ARGUMENT",
      `invalid path ${JSON.stringify(path)}: ${rule}`,
    );
  }
}

/** RFC 6455 §4.1 item 10: subprotocols are unique tokens. */
function requireProtocolList(protocols: string[]): void {
  const seen = new Set<string>();
  for (const protocol of protocols) {
    if (typeof protocol !== "string" || !isToken(protocol)) {
      throw new WebSocketError(
        "ERR_INVALID_PROTOCOL",
        `invalid subprotocol ${JSON.stringify(protocol)}: not an RFC 7230 token`,
      );
    }
    if (seen.has(protocol)) {
      throw new WebSocketError(
        "ERR_INVALID_PROTOCOL",
        `duplicate subprotocol ${JSON.stringify(protocol)}`,
      );
    }
    seen.add(protocol);
  }
}

export type ClientHandshakeResult =
  | {
    ok: true;
    headers: HeaderList;
    protocol: string;
    extensions: ExtensionOffer[];
    rest: Uint8Array;
  }
  | {
    ok: false;
    reason: string;
    status?: number;
    statusText?: string;
    headers?: HeaderList;
    body?: Uint8Array;
  };

export interface ClientHandshakeOptions {
  key: string;
  protocols?: string[] | undefined;
  limits?: Partial<HttpLimits> | undefined;
  /** Most bytes of a refusal's body kept (default 65536); the rest is dropped. */
  maxBodySize?: number | undefined;
}

const DEFAULT_MAX_BODY_SIZE = 65536;

/** A non-101 final response whose body is being collected. */
interface Refusal {
  head: HttpResponseHead;
  reader: BodyReader;
  /** Set when the body's framing headers were invalid: the body is then left unread. */
  framingError: string | null;
}

/**
 * Reads the server's response to our opening handshake.
 *
 * A 101 is validated (RFC 6455 §4.1, client requirements step 5). Interim 1xx
 * responses are skipped (RFC 7231 §6.2). Any other status is a refusal: its body is
 * read by Content-Length, chunked coding or until EOF (`end()`), keeping at most
 * `maxBodySize` bytes, and reported with status, statusText, headers and body.
 * After a result has been returned, further calls throw ERR_INVALID_STATE.
 */
export class ClientHandshakeParser {
  private readonly expectedAccept: string;
  private readonly protocols: string[];
  private readonly limits: HttpLimits;
  private readonly maxBodySize: number;
  private headParser: HttpHeadParser<"response">;
  private refusal: Refusal | null = null;
  private finished = false;

  constructor(options: ClientHandshakeOptions) {
    if (!isValidKey(options.key)) {
      throw new WebSocketError("ERR_INVALID_ARGUMENT", "key must be 16 bytes in base64");
    }
    this.expectedAccept = acceptKey(options.key);
    this.protocols = options.protocols ?? [];
    this.limits = resolveLimits(options.limits);
    this.maxBodySize = options.maxBodySize ?? DEFAULT_MAX_BODY_SIZE;
    if (!Number.isSafeInteger(this.maxBodySize) || this.maxBodySize < 0) {
      throw new WebSocketError(
        "ERR_INVALID_ARGUMENT",
        "maxBodySize must be a non-negative integer",
      );
    }
    this.headParser = new HttpHeadParser("response", this.limits);
  }

  push(chunk: Uint8Array): ClientHandshakeResult | undefined {
    this.requireUnfinished();
    if (this.refusal) return this.continueBody(this.refusal.reader.push(chunk));

    let input = chunk;
    for (;;) {
      const parsed = this.headParser.push(input);
      if (parsed === undefined) return undefined;
      if (!parsed.ok) {
        return this.finish({ ok: false, reason: `invalid HTTP response: ${parsed.reason}` });
      }
      const { head, rest } = parsed;
      if (head.status === 101) return this.finish(this.validateSwitch(head, rest));
      if (head.status >= 200) return this.startRefusal(head, rest);
      // RFC 7231 §6.2: an interim 1xx response; the real one follows.
      this.headParser = new HttpHeadParser("response", this.limits);
      input = rest;
    }
  }

  /** The peer closed the connection. */
  end(): ClientHandshakeResult {
    this.requireUnfinished();
    if (!this.refusal) {
      return this.finish({ ok: false, reason: "connection closed during handshake" });
    }
    return this.refusalResult(this.refusal.reader.end());
  }

  private requireUnfinished(): void {
    if (this.finished) {
      throw new WebSocketError(
        "ERR_INVALID_STATE",
        "the handshake response has already been handled",
      );
    }
  }

  private finish(result: ClientHandshakeResult): ClientHandshakeResult {
    this.finished = true;
    return result;
  }

  /** RFC 6455 §4.1, client requirements step 5, items 2–6. */
  private validateSwitch(head: HttpResponseHead, rest: Uint8Array): ClientHandshakeResult {
    const { headers } = head;
    const fail = (reason: string): ClientHandshakeResult => ({
      ok: false,
      reason,
      status: head.status,
      statusText: head.statusText,
      headers,
    });

    const upgrade = tokenList(headers.get("upgrade") ?? "");
    if (upgrade.length === 0) return fail("missing Upgrade header in 101 response");
    if (upgrade.length !== 1 || upgrade[0]!.toLowerCase() !== "websocket") {
      return fail("Upgrade header is not websocket");
    }
    if (!listHasToken(headers.get("connection"), "upgrade")) {
      return fail("Connection header does not include Upgrade");
    }

    const accepts = headers.getAll("sec-websocket-accept");
    if (accepts.length === 0) return fail("missing Sec-WebSocket-Accept");
    if (accepts.length > 1 || accepts[0] !== this.expectedAccept) {
      return fail("Sec-WebSocket-Accept does not match the key");
    }

    const protocol = this.selectedProtocol(headers);
    if (protocol === null) {
      return fail("server selected a subprotocol that was not offered, or more than one");
    }

    // Whether each extension was offered is checked by the connection (§4.1 item 5).
    const extensions = parseExtensions(headers.get("sec-websocket-extensions") ?? "");
    if (!extensions.ok) return fail(`invalid Sec-WebSocket-Extensions: ${extensions.reason}`);

    return { ok: true, headers, protocol, extensions: extensions.offers, rest };
  }

  /** §4.1 item 6: absent (""), or exactly one value among those offered (null otherwise). */
  private selectedProtocol(headers: HeaderList): string | null {
    const values = headers.getAll("sec-websocket-protocol");
    if (values.length === 0) return "";
    if (values.length > 1 || !this.protocols.includes(values[0]!)) return null;
    return values[0]!;
  }

  private startRefusal(
    head: HttpResponseHead,
    rest: Uint8Array,
  ): ClientHandshakeResult | undefined {
    const framing = responseBodyFraming(head.status, head.headers);
    const reader = new BodyReader(
      "error" in framing ? { kind: "none" } : framing,
      this.maxBodySize,
      this.limits.maxLineLength,
    );
    this.refusal = { head, reader, framingError: "error" in framing ? framing.error : null };
    const status = reader.start();
    if (status !== "more" || rest.length === 0) return this.continueBody(status);
    return this.continueBody(reader.push(rest));
  }

  private continueBody(status: BodyReadStatus): ClientHandshakeResult | undefined {
    return status === "more" ? undefined : this.refusalResult(status);
  }

  private refusalResult(status: Exclude<BodyReadStatus, "more">): ClientHandshakeResult {
    const { head, reader } = this.refusal!;
    const bodyError = typeof status === "object" ? status.error : this.refusal!.framingError;
    let reason = `server refused the upgrade with status ${head.status}`;
    if (head.statusText !== "") reason += ` ${head.statusText}`;
    if (bodyError !== null) reason += ` (${bodyError})`;
    return this.finish({
      ok: false,
      reason,
      status: head.status,
      statusText: head.statusText,
      headers: head.headers,
      body: reader.body(),
    });
  }
}
