/**
 * The WebSocket opening handshake, both roles (RFC 6455 §4).
 *
 * Server: `ServerHandshakeParser` reads and validates the client's upgrade request
 * (§4.2.1); the application then answers with `buildAcceptResponse` (§4.2.2) or
 * `buildRejectResponse`.
 * Client (handshake-client.ts): `generateKey` + `buildClientRequest` write the request (§4.1);
 * `ClientHandshakeParser` reads and validates the server's response (§4.1, step 5 of
 * the client requirements), collecting the body of a refusal for the application.
 *
 * Peer input never throws: problems are returned as `{ ok: false, ... }` values.
 * Local misuse (a bad header we are asked to send, an unoffered subprotocol) throws
 * WebSocketError.
 */

import { base64Decode, base64Encode } from "./base64.ts";
import { EMPTY_BYTES, encodeUtf8 } from "./bytes.ts";
import { WebSocketError } from "./errors.ts";
import { type ExtensionOffer, parseExtensions } from "./extension-header.ts";
import {
  headerEntries,
  type HeaderList,
  type HeadersInit,
  HttpHeadParser,
  type HttpLimits,
  type HttpRequestHead,
  isFieldValueChar,
  isToken,
  listHasToken,
  serializeHead,
  tokenList,
} from "./http.ts";
import { sha1 } from "./sha1.ts";

/** RFC 6455 §1.3, §4.2.2 */
export const WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/** The only version this library speaks (RFC 6455 §4.1, §11.6). */
export const WS_VERSION = 13;

const KEY_BYTES = 16; // RFC 6455 §4.1: a randomly selected 16-byte value, base64-encoded

/** Sec-WebSocket-Accept = base64(SHA-1(key + GUID)) (RFC 6455 §4.2.2, step 5.4). */
export function acceptKey(key: string): string {
  return base64Encode(sha1(encodeUtf8(key + WS_GUID)));
}

/** A fresh Sec-WebSocket-Key: 16 random bytes, base64-encoded (RFC 6455 §4.1). */
export function generateKey(random: (n: number) => Uint8Array = defaultRandom): string {
  const bytes = random(KEY_BYTES);
  if (!(bytes instanceof Uint8Array) || bytes.length !== KEY_BYTES) {
    throw new WebSocketError(
      "ERR_INVALID_ARGUMENT",
      `random source must return ${KEY_BYTES} bytes`,
    );
  }
  return base64Encode(bytes);
}

function defaultRandom(n: number): Uint8Array {
  return globalThis.crypto.getRandomValues(new Uint8Array(n));
}

export function isValidKey(key: string): boolean {
  return base64Decode(key)?.length === KEY_BYTES;
}

// ---------------------------------------------------------------------------
// Server side
// ---------------------------------------------------------------------------

export interface UpgradeRequest {
  method: string;
  /** The request-target exactly as received. */
  target: string;
  /** Path part of the target, not percent-decoded; always starts with "/". */
  path: string;
  /** Query without "?", "" if none. */
  query: string;
  headers: HeaderList;
  host: string;
  origin: string | null;
  key: string;
  version: number;
  /** Offered subprotocols in order, from every Sec-WebSocket-Protocol field. */
  protocols: readonly string[];
  /** Parsed Sec-WebSocket-Extensions. */
  extensions: readonly ExtensionOffer[];
}

export type HandshakeRejection = {
  ok: false;
  status: number;
  reason: string;
  headers: [string, string][];
};

export type ServerHandshakeResult =
  | { ok: true; request: UpgradeRequest; rest: Uint8Array }
  | HandshakeRejection;

function reject(
  status: number,
  reason: string,
  headers: [string, string][] = [],
): HandshakeRejection {
  return { ok: false, status, reason, headers };
}

/**
 * Reads a client's opening handshake. Status codes on failure:
 * 400 malformed or invalid request, 405 not GET (with Allow: GET), 414 request line
 * too long, 426 no Upgrade header (with Upgrade: websocket) or a version other than 13
 * (with Sec-WebSocket-Version: 13), 431 header limits, 505 HTTP version other than 1.x
 * with x >= 1 (HTTP/1.0 included: RFC 6455 §4.2.1 requires HTTP/1.1 or higher).
 * `headers` of a failure are meant for `buildRejectResponse`.
 */
export class ServerHandshakeParser {
  private readonly parser: HttpHeadParser<"request">;

  constructor(limits?: Partial<HttpLimits>) {
    this.parser = new HttpHeadParser("request", limits);
  }

  push(chunk: Uint8Array): ServerHandshakeResult | undefined {
    const result = this.parser.push(chunk);
    if (result === undefined) return undefined;
    if (!result.ok) return reject(result.status, result.reason);
    const request = validateUpgradeRequest(result.head);
    return "ok" in request ? request : { ok: true, request, rest: result.rest };
  }
}

/** Checks a parsed request against RFC 6455 §4.2.1, in the order of that section. */
export function validateUpgradeRequest(head: HttpRequestHead): UpgradeRequest | HandshakeRejection {
  const { headers } = head;

  // §4.2.1 item 1: an HTTP/1.1 or higher GET request with a resource name.
  if (minorVersion(head.version) < 1) {
    return reject(505, `WebSocket requires HTTP/1.1, got ${head.version}`);
  }
  if (head.method !== "GET") {
    const reason = `method ${excerpt(head.method)} not allowed, expected GET`;
    return reject(405, reason, [["Allow", "GET"]]);
  }
  const target = parseRequestTarget(head.target);
  if (target === null) return reject(400, "invalid request target");

  // item 2 (and RFC 7230 §5.4): exactly one Host, non-empty, without whitespace.
  const hosts = headers.getAll("host");
  if (hosts.length === 0) return reject(400, "missing Host header");
  if (hosts.length > 1) return reject(400, "multiple Host headers");
  if (!isVisibleAsciiString(hosts[0]!)) return reject(400, "invalid Host header");

  // item 3: Upgrade includes "websocket"; no Upgrade at all means a plain HTTP
  // request reached a WebSocket endpoint: 426 tells the client what to do (RFC 7231 §6.5.15).
  const upgrade = headers.get("upgrade");
  if (upgrade === null) return reject(426, "missing Upgrade header", [["Upgrade", "websocket"]]);
  if (!listHasToken(upgrade, "websocket")) {
    return reject(400, "Upgrade header does not include websocket");
  }

  // item 4: Connection includes "Upgrade".
  const connection = headers.get("connection");
  if (connection === null) return reject(400, "missing Connection header");
  if (!listHasToken(connection, "upgrade")) {
    return reject(400, "Connection header does not include Upgrade");
  }

  // item 6 before item 5: a client speaking another version may use another key format.
  // §4.2.2 step 4 / §4.4: answer an unsupported version with 426 and the versions we speak.
  const version = headers.get("sec-websocket-version");
  if (version !== String(WS_VERSION)) {
    const reason = version === null
      ? "missing Sec-WebSocket-Version"
      : `unsupported Sec-WebSocket-Version ${excerpt(version)}`;
    return reject(426, reason, [["Sec-WebSocket-Version", String(WS_VERSION)]]);
  }

  // item 5: exactly one Sec-WebSocket-Key that decodes to 16 bytes.
  const keys = headers.getAll("sec-websocket-key");
  if (keys.length === 0) return reject(400, "missing Sec-WebSocket-Key");
  if (keys.length > 1) return reject(400, "multiple Sec-WebSocket-Key headers");
  const key = keys[0]!;
  if (!isValidKey(key)) return reject(400, "Sec-WebSocket-Key is not 16 bytes in base64");

  // item 7 (RFC 6454): Origin is exposed to the application, which decides.
  const origins = headers.getAll("origin");
  if (origins.length > 1) return reject(400, "multiple Origin headers");

  // item 8 and §4.1: subprotocols are unique tokens, possibly over several fields.
  const protocols = offeredProtocols(headers);
  if (typeof protocols === "string") return reject(400, protocols);

  // item 9 and §9.1
  const extensions = parseExtensions(headers.get("sec-websocket-extensions") ?? "");
  if (!extensions.ok) return reject(400, `invalid Sec-WebSocket-Extensions: ${extensions.reason}`);

  return {
    method: head.method,
    target: head.target,
    path: target.path,
    query: target.query,
    headers,
    host: hosts[0]!,
    origin: origins[0] ?? null,
    key,
    version: WS_VERSION,
    protocols,
    extensions: extensions.offers.length === 0 ? NO_OFFERS : extensions.offers,
  };
}

/** Peer text quoted for a failure reason, cut short so a reason stays short. */
function excerpt(text: string): string {
  return JSON.stringify(text.length > 40 ? `${text.slice(0, 40)}…` : text);
}

/** Minor version of "HTTP/1.x" (the parser has already rejected other majors). */
function minorVersion(version: string): number {
  return version.charCodeAt(7) - 0x30;
}

/**
 * Path and query of an origin-form target ("/chat?room=1"), or of an absolute-form
 * one ("http://host/chat") that RFC 6455 §4.2.1 item 1 also allows. Fragments are not
 * part of a request-target (RFC 7230 §5.3), so "#" is rejected.
 */
export function parseRequestTarget(target: string): { path: string; query: string } | null {
  if (target.includes("#")) return null;
  let pathAndQuery = target;
  if (!target.startsWith("/")) {
    const schemeEnd = target.indexOf("://");
    const scheme = target.slice(0, schemeEnd).toLowerCase();
    if (schemeEnd === -1 || !["http", "https", "ws", "wss"].includes(scheme)) return null;
    const authorityStart = schemeEnd + 3;
    const pathStart = firstIndexOf(target, "/?", authorityStart);
    if (pathStart === authorityStart) return null; // empty authority
    pathAndQuery = target.slice(pathStart);
    if (!pathAndQuery.startsWith("/")) pathAndQuery = "/" + pathAndQuery;
  }
  const question = pathAndQuery.indexOf("?");
  if (question === -1) return { path: pathAndQuery, query: "" };
  return { path: pathAndQuery.slice(0, question), query: pathAndQuery.slice(question + 1) };
}

/** Index of the first of `chars` in `text` from `from`, or text.length. */
function firstIndexOf(text: string, chars: string, from: number): number {
  for (let i = from; i < text.length; i++) if (chars.includes(text[i]!)) return i;
  return text.length;
}

/** What most requests offer: one shared empty list (a server keeps each open connection's request). */
const NO_PROTOCOLS: readonly string[] = Object.freeze([]);
const NO_OFFERS: readonly ExtensionOffer[] = Object.freeze([]);

/** Offered subprotocols, or a reason string when the list is malformed (RFC 6455 §4.1 item 10). */
function offeredProtocols(headers: HeaderList): readonly string[] | string {
  const values = headers.getAll("sec-websocket-protocol");
  if (values.length === 0) return NO_PROTOCOLS;
  const protocols: string[] = [];
  const seen = new Set<string>();
  for (const value of values) {
    for (const protocol of tokenList(value)) {
      if (!isToken(protocol)) return "invalid Sec-WebSocket-Protocol: subprotocols must be tokens";
      if (seen.has(protocol)) {
        return `duplicate subprotocol ${excerpt(protocol)} in Sec-WebSocket-Protocol`;
      }
      seen.add(protocol);
      protocols.push(protocol);
    }
  }
  return protocols;
}

export interface AcceptOptions {
  /** The selected subprotocol; must be one the client offered. "" or absent: none. */
  protocol?: string | undefined;
  /** Sec-WebSocket-Extensions response value, already formatted; "" or absent: none. */
  extensions?: string | undefined;
  /** Extra response headers (e.g. Set-Cookie). */
  headers?: HeadersInit | undefined;
}

/** Headers the handshake writes itself; callers may not add them through `headers`. */
const ACCEPT_OWNED = [
  "upgrade",
  "connection",
  "sec-websocket-accept",
  "sec-websocket-protocol",
  "sec-websocket-extensions",
  "content-length",
  "transfer-encoding",
];

/** The 101 response accepting `request` (RFC 6455 §4.2.2 step 5). */
export function buildAcceptResponse(
  request: UpgradeRequest,
  options: AcceptOptions = {},
): Uint8Array {
  const headers: [string, string][] = [
    ["Upgrade", "websocket"],
    ["Connection", "Upgrade"],
    ["Sec-WebSocket-Accept", acceptKey(request.key)],
  ];
  const { protocol, extensions } = options;
  if (protocol !== undefined && protocol !== "") {
    // §4.2.2 step 5.5: the selected value must be one of those the client sent.
    if (!request.protocols.includes(protocol)) {
      throw new WebSocketError(
        "ERR_INVALID_PROTOCOL",
        `subprotocol ${JSON.stringify(protocol)} was not offered by the client`,
      );
    }
    headers.push(["Sec-WebSocket-Protocol", protocol]);
  }
  if (extensions !== undefined && extensions !== "") {
    requireParsableExtensions(extensions);
    headers.push(["Sec-WebSocket-Extensions", extensions]);
  }
  headers.push(...extraHeaders(options.headers, ACCEPT_OWNED));
  return serializeHead("HTTP/1.1 101 Switching Protocols", headers);
}

export interface RejectOptions {
  /** 200..599 */
  status: number;
  /** Defaults to the standard reason phrase. */
  statusText?: string | undefined;
  headers?: HeadersInit | undefined;
  /** A string is sent as UTF-8 with Content-Type text/plain unless headers set one. */
  body?: string | Uint8Array | undefined;
}

const REJECT_OWNED = ["connection", "content-length", "transfer-encoding"];

/**
 * A complete refusal response. Adds Content-Length and Connection: close; the caller
 * closes the connection after writing it. 1xx statuses are refused: they are interim
 * responses (RFC 7231 §6.2), so a client would keep waiting for a final one.
 */
export function buildRejectResponse(options: RejectOptions): Uint8Array {
  const { status } = options;
  if (!Number.isInteger(status) || status < 200 || status > 599) {
    throw new WebSocketError(
      "ERR_INVALID_ARGUMENT",
      `reject status must be an integer in 200..599, got ${status}`,
    );
  }
  const statusText = options.statusText ?? STATUS_TEXT.get(status) ?? "";
  for (let i = 0; i < statusText.length; i++) {
    // reason-phrase = *( HTAB / SP / VCHAR / obs-text ) (RFC 7230 §3.1.2)
    if (!isFieldValueChar(statusText.charCodeAt(i))) {
      throw new WebSocketError(
        "ERR_INVALID_ARGUMENT",
        `invalid character in status text ${JSON.stringify(statusText)}`,
      );
    }
  }

  const body = typeof options.body === "string"
    ? encodeUtf8(options.body)
    : (options.body ?? EMPTY_BYTES);
  const extra = extraHeaders(options.headers, REJECT_OWNED);
  const headers: [string, string][] = [["Connection", "close"]];
  if (status === 204 || status === 304) {
    // RFC 7230 §3.3.2, §3.3.3: these responses never have a body.
    if (body.length > 0) {
      throw new WebSocketError("ERR_INVALID_ARGUMENT", `a ${status} response cannot have a body`);
    }
  } else {
    headers.push(["Content-Length", String(body.length)]);
  }
  if (
    typeof options.body === "string" &&
    !extra.some(([name]) => name.toLowerCase() === "content-type")
  ) {
    headers.push(["Content-Type", "text/plain; charset=utf-8"]);
  }
  headers.push(...extra);

  const head = serializeHead(`HTTP/1.1 ${status} ${statusText}`, headers);
  const response = new Uint8Array(head.length + body.length);
  response.set(head);
  response.set(body, head.length);
  return response;
}

const STATUS_TEXT = new Map<number, string>([
  [200, "OK"],
  [204, "No Content"],
  [301, "Moved Permanently"],
  [302, "Found"],
  [304, "Not Modified"],
  [400, "Bad Request"],
  [401, "Unauthorized"],
  [403, "Forbidden"],
  [404, "Not Found"],
  [405, "Method Not Allowed"],
  [409, "Conflict"],
  [413, "Content Too Large"],
  [414, "URI Too Long"],
  [426, "Upgrade Required"],
  [429, "Too Many Requests"],
  [431, "Request Header Fields Too Large"],
  [500, "Internal Server Error"],
  [501, "Not Implemented"],
  [502, "Bad Gateway"],
  [503, "Service Unavailable"],
  [505, "HTTP Version Not Supported"],
]);

// ---------------------------------------------------------------------------
// Shared by both roles
// ---------------------------------------------------------------------------

export function requireParsableExtensions(value: string): void {
  const parsed = parseExtensions(value);
  if (!parsed.ok) {
    throw new WebSocketError(
      "ERR_INVALID_HEADER",
      `invalid Sec-WebSocket-Extensions value ${JSON.stringify(value)}: ${parsed.reason}`,
    );
  }
}

/** Caller-supplied headers, refusing those the handshake sets itself. Validated on serialization. */
export function extraHeaders(init: HeadersInit | undefined, owned: string[]): [string, string][] {
  const entries = headerEntries(init);
  for (const [name] of entries) {
    if (owned.includes(name.toLowerCase())) {
      throw new WebSocketError(
        "ERR_INVALID_HEADER",
        `header ${name} is set by the handshake and cannot be overridden`,
      );
    }
  }
  return entries;
}

/** Non-empty, and only characters from "!" to "~" (no whitespace, controls or non-ASCII). */
export function isVisibleAsciiString(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) {
    const code = s.charCodeAt(i);
    if (code <= 0x20 || code >= 0x7f) return false;
  }
  return true;
}
