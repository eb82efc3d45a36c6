/**
 * Just enough HTTP/1.1 for the WebSocket opening handshake (RFC 6455 §4, RFC 7230):
 * an incremental parser for a request or response head, header utilities and a
 * serializer for the heads we send, plus a response-body reader for rejections.
 *
 * Parsing is strict: lines must end in CRLF. RFC 7230 §3.5 allows recipients to accept
 * a bare LF; we do not, because a WebSocket peer has no excuse to send one and a
 * lenient parser invites request-smuggling disagreements with proxies in front of us.
 * Every limit is checked before bytes are buffered, and every byte is looked at a
 * bounded number of times, so parsing is linear in the input.
 */

import { EMPTY_BYTES } from "./bytes.ts";
import { WebSocketError } from "./errors.ts";

// ---------------------------------------------------------------------------
// Limits
// ---------------------------------------------------------------------------

export interface HttpLimits {
  /** Longest start line or header line, in bytes, not counting CRLF. */
  maxLineLength: number;
  /** Most header fields. */
  maxHeaders: number;
  /** Largest head, in bytes, including every CRLF and the final empty line. */
  maxHeadSize: number;
}

export const DEFAULT_HTTP_LIMITS: HttpLimits = Object.freeze({
  maxLineLength: 8192,
  maxHeaders: 100,
  maxHeadSize: 16384,
});

export function resolveLimits(limits: Partial<HttpLimits> = {}): HttpLimits {
  const resolved: HttpLimits = {
    maxLineLength: limits.maxLineLength ?? DEFAULT_HTTP_LIMITS.maxLineLength,
    maxHeaders: limits.maxHeaders ?? DEFAULT_HTTP_LIMITS.maxHeaders,
    maxHeadSize: limits.maxHeadSize ?? DEFAULT_HTTP_LIMITS.maxHeadSize,
  };
  for (const [name, value] of Object.entries(resolved)) {
    if (!Number.isSafeInteger(value) || value < 1) {
      throw new WebSocketError("ERR_INVALID_ARGUMENT", `${name} must be a positive integer`);
    }
  }
  return resolved;
}

// ---------------------------------------------------------------------------
// Character classes (RFC 7230 §3.2, §3.2.6)
// ---------------------------------------------------------------------------

const HTAB = 0x09;
const LF = 0x0a;
const CR = 0x0d;
const SP = 0x20;
const COLON = 0x3a;

/** tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." / "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA */
const TCHAR = (() => {
  const table = new Uint8Array(128);
  for (const c of "!#$%&'*+-.^_`|~") table[c.charCodeAt(0)] = 1;
  for (let c = 0x30; c <= 0x39; c++) table[c] = 1;
  for (let c = 0x41; c <= 0x5a; c++) table[c] = 1;
  for (let c = 0x61; c <= 0x7a; c++) table[c] = 1;
  return table;
})();

export function isTokenChar(code: number): boolean {
  return code < 128 && TCHAR[code] === 1;
}

/** token = 1*tchar (RFC 7230 §3.2.6). */
export function isToken(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) {
    if (!isTokenChar(s.charCodeAt(i))) return false;
  }
  return true;
}

/** OWS = *( SP / HTAB ) (RFC 7230 §3.2.3). */
export function isOws(code: number): boolean {
  return code === SP || code === HTAB;
}

/** field-content characters: HTAB / SP / VCHAR / obs-text (RFC 7230 §3.2). */
export function isFieldValueChar(code: number): boolean {
  return code === HTAB || (code >= SP && code !== 0x7f && code <= 0xff);
}

/** Removes leading and trailing SP / HTAB only (not the Unicode whitespace `trim` removes). */
export function trimOws(s: string): string {
  let start = 0;
  let end = s.length;
  while (start < end && isOws(s.charCodeAt(start))) start++;
  while (end > start && isOws(s.charCodeAt(end - 1))) end--;
  return s.slice(start, end);
}

/**
 * Elements of a comma-separated list, trimmed, with empty elements dropped
 * (RFC 7230 §7: recipients must accept and ignore empty list elements).
 * Case is kept. Linear in the input.
 */
export function tokenList(value: string): string[] {
  const items: string[] = [];
  for (const part of value.split(",")) {
    const item = trimOws(part);
    if (item !== "") items.push(item);
  }
  return items;
}

/** Whether the comma-separated list `value` has an element equal to `token`, ASCII case-insensitively. */
export function listHasToken(value: string | null, token: string): boolean {
  if (value === null) return false;
  const wanted = token.toLowerCase();
  return tokenList(value).some((item) => item.toLowerCase() === wanted);
}

// ---------------------------------------------------------------------------
// Headers
// ---------------------------------------------------------------------------

/**
 * An ordered header list with case-insensitive lookup that keeps the original case. Names such
 * as `__proto__` are plain data. Nothing is validated here: the parser only appends valid fields, and the serializer
 * validates whatever a caller put in before it is sent.
 */
export class HeaderList {
  /**
   * Names and values, alternating, in original order and case. One flat array: a server keeps
   * every connection's request headers, and a list of pairs plus a Map by name cost several
   * times the strings themselves. Lookups scan it; header counts are small and bounded.
   */
  private fields: string[] = [];

  constructor(entries?: Iterable<[string, string]>) {
    if (entries) { for (const [name, value] of entries) this.append(name, value); }
  }

  /** All values joined with ", " (RFC 7230 §3.2.2), or null if absent. */
  get(name: string): string | null {
    const values = this.getAll(name);
    return values.length === 0 ? null : values.join(", ");
  }

  getAll(name: string): string[] {
    const key = name.toLowerCase();
    const fields = this.fields;
    const values: string[] = [];
    for (let i = 0; i < fields.length; i += 2) {
      if (fields[i].length === key.length && fields[i].toLowerCase() === key) values.push(fields[i + 1]);
    }
    return values;
  }

  has(name: string): boolean {
    const key = name.toLowerCase();
    const fields = this.fields;
    for (let i = 0; i < fields.length; i += 2) {
      if (fields[i].length === key.length && fields[i].toLowerCase() === key) return true;
    }
    return false;
  }

  /** Every field in original order and case. */
  entries(): [string, string][] {
    const out: [string, string][] = [];
    for (let i = 0; i < this.fields.length; i += 2) out.push([this.fields[i], this.fields[i + 1]]);
    return out;
  }

  append(name: string, value: string): void {
    this.fields.push(name, value);
  }

  get size(): number {
    return this.fields.length >> 1;
  }

  /** Drops the spare room appending left: a parsed head is kept as long as its connection. */
  compact(): void {
    this.fields = this.fields.slice();
  }
}

export type HeadersInit = HeaderList | Iterable<[string, string]> | Record<string, string>;

/** Normalizes any HeadersInit to a list of [name, value] pairs, unvalidated. */
export function headerEntries(init: HeadersInit | undefined): [string, string][] {
  if (init === undefined) return [];
  if (init instanceof HeaderList) return init.entries();
  if (Symbol.iterator in init) {
    return [...(init as Iterable<[string, string]>)].map((
      [name, value],
    ) => [String(name), String(value)]);
  }
  return Object.entries(init).map(([name, value]) => [name, String(value)]);
}

/**
 * Checks a header we were asked to send. Throws ERR_INVALID_HEADER when the name is
 * not a token (RFC 7230 §3.2) or the value holds CR, LF, NUL, another control
 * character or a character that does not fit in one byte.
 */
export function validateHeader(name: string, value: string): void {
  if (!isToken(name)) {
    throw new WebSocketError("ERR_INVALID_HEADER", `invalid header name ${JSON.stringify(name)}`);
  }
  for (let i = 0; i < value.length; i++) {
    if (!isFieldValueChar(value.charCodeAt(i))) {
      throw new WebSocketError(
        "ERR_INVALID_HEADER",
        `invalid character ${JSON.stringify(value[i])} in value of header ${name}`,
      );
    }
  }
}

/**
 * Serializes a start line and header fields into a head ending in CRLFCRLF.
 * Headers are validated; the start line must already be valid (our own code builds it).
 */
export function serializeHead(startLine: string, headers: Iterable<[string, string]>): Uint8Array {
  let text = startLine + "\r\n";
  for (const [name, value] of headers) {
    validateHeader(name, value);
    text += `${name}: ${value}\r\n`;
  }
  text += "\r\n";
  return encodeLatin1(text);
}

/** One byte per character; every character must be below 256 (callers validate first). */
export function encodeLatin1(text: string): Uint8Array {
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  return bytes;
}

/** Decodes bytes as ISO-8859-1, each byte one character (header bytes, RFC 7230 §3.2.4). */
export function decodeLatin1(bytes: Uint8Array, start = 0, end = bytes.length): string {
  const STEP = 4096; // keep each apply() call well under engine argument limits
  let text = "";
  for (let i = start; i < end; i += STEP) {
    const slice = bytes.subarray(i, Math.min(end, i + STEP));
    text += String.fromCharCode.apply(null, slice as unknown as number[]);
  }
  return text;
}

/**
 * Start-line parts, header names and values that nearly every upgrade request carries, in the
 * spellings browsers and libraries send. A parsed head uses these shared strings instead of its
 * own copies: a server keeps each open connection's request, and these would be most of it.
 */
const COMMON_STRINGS = new Map<string, string>(
  [
    "GET", "/", "HTTP/1.1", "HTTP/1.0", "13", "websocket", "Websocket", "WebSocket", "Upgrade",
    "upgrade", "keep-alive, Upgrade", "Keep-Alive, Upgrade", "no-cache", "gzip, deflate, br",
    "gzip, deflate, br, zstd", "gzip, deflate", "en-US,en;q=0.9", "*/*",
    "permessage-deflate; client_max_window_bits", "permessage-deflate",
    "Host", "host", "Connection", "connection", "Sec-WebSocket-Key", "sec-websocket-key",
    "Sec-WebSocket-Version", "sec-websocket-version", "Sec-WebSocket-Extensions",
    "sec-websocket-extensions", "Sec-WebSocket-Protocol", "sec-websocket-protocol", "Origin",
    "origin", "User-Agent", "user-agent", "Accept", "accept", "Accept-Encoding", "accept-encoding",
    "Accept-Language", "accept-language", "Cache-Control", "cache-control", "Pragma", "pragma",
    "Cookie", "cookie", "Authorization", "authorization",
  ].map((text) => [text, text]),
);

/** `decodeLatin1`, returning the shared copy of a string in COMMON_STRINGS. */
function decodeShared(bytes: Uint8Array, start: number, end: number): string {
  const text = decodeLatin1(bytes, start, end);
  return COMMON_STRINGS.get(text) ?? text;
}

// ---------------------------------------------------------------------------
// Head parser
// ---------------------------------------------------------------------------

export interface HttpRequestHead {
  method: string;
  target: string;
  version: string;
  headers: HeaderList;
}

export interface HttpResponseHead {
  version: string;
  status: number;
  statusText: string;
  headers: HeaderList;
}

export type HttpHeadKind = "request" | "response";
export type HttpHead<K extends HttpHeadKind> = K extends "request" ? HttpRequestHead
  : HttpResponseHead;

/** status: 400 malformed, 414 request line too long, 431 header line/count/size over limit, 505 version. */
export type HttpParseError = { ok: false; status: number; reason: string };
export type HttpParseSuccess<K extends HttpHeadKind> = {
  ok: true;
  head: HttpHead<K>;
  rest: Uint8Array;
};
export type HttpParseResult<K extends HttpHeadKind> = HttpParseSuccess<K> | HttpParseError;

type StartLine =
  | { kind: "request"; method: string; target: string; version: string }
  | { kind: "response"; version: string; status: number; statusText: string };

function parseError(status: number, reason: string): HttpParseError {
  return { ok: false, status, reason };
}

/**
 * Incremental parser for one HTTP/1.1 request or response head.
 *
 * `push` bytes as they arrive, in chunks of any size. It returns undefined while more
 * bytes are needed, an error as soon as the input is known to be bad or over a limit,
 * or the head plus `rest`: a copy of the bytes that followed the empty line (they
 * belong to the WebSocket stream or a body, not to us). After it has returned a
 * result, further calls throw ERR_INVALID_STATE.
 *
 * Only the unfinished current line is buffered (at most maxLineLength + 1 bytes);
 * complete lines are parsed straight out of the pushed chunk.
 */
export class HttpHeadParser<K extends HttpHeadKind> {
  private readonly kind: K;
  private readonly limits: HttpLimits;
  private partial = EMPTY_BYTES;
  private partialLength = 0;
  private headSize = 0;
  private startLine: StartLine | null = null;
  private readonly headers = new HeaderList();
  private finished = false;

  constructor(kind: K, limits?: Partial<HttpLimits>) {
    this.kind = kind;
    this.limits = resolveLimits(limits);
  }

  push(chunk: Uint8Array): HttpParseResult<K> | undefined {
    if (this.finished) {
      throw new WebSocketError("ERR_INVALID_STATE", "the HTTP head has already been parsed");
    }
    let pos = 0;
    while (pos < chunk.length) {
      const lf = chunk.indexOf(LF, pos);
      if (lf === -1) {
        const error = this.bufferPartial(chunk.subarray(pos));
        return error ? this.finish(error) : undefined;
      }
      const line = this.completeLine(chunk.subarray(pos, lf));
      pos = lf + 1;
      if ("ok" in line) return this.finish(line);
      const outcome = this.parseLine(line);
      if (outcome === "done") {
        return this.finish({ ok: true, head: this.buildHead(), rest: pos === chunk.length ? EMPTY_BYTES : chunk.slice(pos) });
      }
      if (outcome !== undefined) return this.finish(outcome);
    }
    return undefined;
  }

  private finish<R extends HttpParseResult<K>>(result: R): R {
    this.finished = true;
    this.partial = EMPTY_BYTES;
    this.partialLength = 0;
    return result;
  }

  /** Keeps the start of a line whose LF has not arrived yet, after checking the limits. */
  private bufferPartial(piece: Uint8Array): HttpParseError | undefined {
    const length = this.partialLength + piece.length;
    const endsWithCr = piece[piece.length - 1] === CR; // a CR here may be the first half of CRLF
    const error = this.checkLineLimits(endsWithCr ? length - 1 : length, length, piece);
    if (error) return error;
    if (length > this.partial.length) this.growPartial(length);
    this.partial.set(piece, this.partialLength);
    this.partialLength = length;
    return undefined;
  }

  /** Doubles the partial-line buffer (at least to `needed`), never beyond maxLineLength + 1. */
  private growPartial(needed: number): void {
    const capacity = Math.min(
      Math.max(needed, this.partial.length * 2, 256),
      this.limits.maxLineLength + 1,
    );
    const grown = new Uint8Array(capacity);
    grown.set(this.partial.subarray(0, this.partialLength));
    this.partial = grown;
  }

  /**
   * Joins a buffered partial line with the piece before its LF, checks the limits and
   * the CRLF ending, and returns the line's content without CRLF.
   */
  private completeLine(piece: Uint8Array): Uint8Array | HttpParseError {
    const length = this.partialLength + piece.length;
    const lastByte = piece.length > 0
      ? piece[piece.length - 1]
      : this.partial[this.partialLength - 1];
    const endsWithCrlf = length > 0 && lastByte === CR;
    const error = this.checkLineLimits(endsWithCrlf ? length - 1 : length, length + 1, piece);
    if (error) return error;
    // RFC 7230 §3.5 permits accepting a bare LF; we require CRLF (see the module comment).
    if (!endsWithCrlf) return parseError(400, "line not terminated by CRLF");

    this.headSize += length + 1;
    if (this.partialLength === 0) return piece.subarray(0, piece.length - 1);
    const line = new Uint8Array(length);
    line.set(this.partial.subarray(0, this.partialLength));
    line.set(piece, this.partialLength);
    this.partialLength = 0;
    return line.subarray(0, length - 1);
  }

  /**
   * `contentLength`: the line without its terminator; `rawLength`: bytes of this line
   * seen so far, counted towards maxHeadSize together with the earlier lines; `piece`: the
   * line's bytes that follow the buffered partial line.
   */
  private checkLineLimits(contentLength: number, rawLength: number, piece: Uint8Array): HttpParseError | undefined {
    const { maxLineLength, maxHeadSize } = this.limits;
    if (contentLength > maxLineLength && this.headSize + rawLength > maxHeadSize) {
      // Both limits are over: report the one the line crossed first, as a byte-by-byte read
      // would, so that the status and reason do not depend on where reads end (line first on a
      // tie). Byte maxLineLength + 1 crosses the line limit unless it is a CR, which may end it.
      const next = maxLineLength < this.partialLength ? this.partial[maxLineLength] : piece[maxLineLength - this.partialLength];
      const lineCrossedAt = next === CR ? maxLineLength + 2 : maxLineLength + 1;
      if (maxHeadSize - this.headSize + 1 < lineCrossedAt) return parseError(431, `${this.kind} head too large`);
    }
    if (contentLength > maxLineLength) {
      if (this.startLine !== null) return parseError(431, "header line too long");
      return this.kind === "request"
        ? parseError(414, "request line too long")
        : parseError(431, "status line too long");
    }
    if (this.headSize + rawLength > maxHeadSize) {
      return parseError(431, `${this.kind} head too large`);
    }
    return undefined;
  }

  /** Returns "done" at the empty line, an error, or undefined to go on. */
  private parseLine(line: Uint8Array): "done" | HttpParseError | undefined {
    if (this.startLine === null) {
      const parsed = this.kind === "request" ? parseRequestLine(line) : parseStatusLine(line);
      if ("ok" in parsed) return parsed;
      this.startLine = parsed;
      return undefined;
    }
    if (line.length === 0) return "done";
    if (this.headers.size >= this.limits.maxHeaders) {
      return parseError(431, "too many header fields");
    }
    const field = parseHeaderLine(line);
    if ("ok" in field) return field;
    this.headers.append(field[0], field[1]);
    return undefined;
  }

  private buildHead(): HttpHead<K> {
    const start = this.startLine!;
    this.headers.compact();
    if (start.kind === "request") {
      const head: HttpRequestHead = {
        method: start.method,
        target: start.target,
        version: start.version,
        headers: this.headers,
      };
      return head as HttpHead<K>;
    }
    const head: HttpResponseHead = {
      version: start.version,
      status: start.status,
      statusText: start.statusText,
      headers: this.headers,
    };
    return head as HttpHead<K>;
  }
}

/** request-line = method SP request-target SP HTTP-version (RFC 7230 §3.1.1). */
function parseRequestLine(line: Uint8Array): StartLine | HttpParseError {
  const sp1 = line.indexOf(SP);
  const sp2 = sp1 === -1 ? -1 : line.indexOf(SP, sp1 + 1);
  if (sp1 === -1 || sp2 === -1) return parseError(400, "malformed request line");

  // method = token (RFC 7230 §3.1.1)
  if (sp1 === 0 || !allBytes(line, 0, sp1, isTokenChar)) return parseError(400, "invalid method");
  // request-target: visible ASCII, no whitespace (RFC 7230 §5.3, RFC 3986)
  if (sp2 === sp1 + 1 || !allBytes(line, sp1 + 1, sp2, isVisibleAscii)) {
    return parseError(400, "invalid request target");
  }

  const version = parseVersion(line, sp2 + 1, line.length);
  if ("ok" in version) return version;
  return {
    kind: "request",
    method: decodeShared(line, 0, sp1),
    target: decodeShared(line, sp1 + 1, sp2),
    version: version.text,
  };
}

/**
 * status-line = HTTP-version SP status-code SP reason-phrase (RFC 7230 §3.1.2).
 * Like many clients we also accept a status line that stops right after the code.
 */
function parseStatusLine(line: Uint8Array): StartLine | HttpParseError {
  const sp = line.indexOf(SP);
  if (sp === -1) return parseError(400, "malformed status line");
  const version = parseVersion(line, 0, sp);
  if ("ok" in version) return version;

  const codeEnd = sp + 4;
  if (codeEnd > line.length || !allBytes(line, sp + 1, codeEnd, isDigit) || line[sp + 1] === 0x30) {
    return parseError(400, "invalid status code");
  }
  if (codeEnd < line.length && line[codeEnd] !== SP) return parseError(400, "invalid status code");
  const reasonStart = Math.min(codeEnd + 1, line.length);
  // reason-phrase = *( HTAB / SP / VCHAR / obs-text )
  if (!allBytes(line, reasonStart, line.length, isFieldValueChar)) {
    return parseError(400, "invalid reason phrase");
  }
  return {
    kind: "response",
    version: version.text,
    status: Number(decodeLatin1(line, sp + 1, codeEnd)),
    statusText: decodeLatin1(line, reasonStart, line.length),
  };
}

/** HTTP-version = "HTTP/" DIGIT "." DIGIT (RFC 7230 §2.6); only major version 1 is spoken here. */
function parseVersion(
  line: Uint8Array,
  start: number,
  end: number,
): { text: string } | HttpParseError {
  const wellFormed = end - start === 8 && isDigit(line[start + 5]!) && line[start + 6] === 0x2e &&
    isDigit(line[start + 7]!);
  const text = wellFormed ? decodeShared(line, start, end) : "";
  if (!text.startsWith("HTTP/")) return parseError(400, "malformed HTTP version");
  if (text[5] !== "1") return parseError(505, `unsupported HTTP version ${text}`);
  return { text };
}

/**
 * header-field = field-name ":" OWS field-value OWS (RFC 7230 §3.2).
 * Obsolete line folding and whitespace before the colon are rejected with 400
 * (RFC 7230 §3.2.4).
 */
function parseHeaderLine(line: Uint8Array): [string, string] | HttpParseError {
  if (isOws(line[0]!)) return parseError(400, "obsolete line folding is not allowed");
  const colon = line.indexOf(COLON);
  if (colon === -1) return parseError(400, "header line without a colon");
  if (colon === 0) return parseError(400, "empty header name");
  if (isOws(line[colon - 1]!)) return parseError(400, "whitespace between header name and colon");
  if (!allBytes(line, 0, colon, isTokenChar)) return parseError(400, "invalid header name");

  let start = colon + 1;
  let end = line.length;
  while (start < end && isOws(line[start]!)) start++;
  while (end > start && isOws(line[end - 1]!)) end--;
  if (!allBytes(line, start, end, isFieldValueChar)) {
    const name = decodeLatin1(line, 0, Math.min(colon, 64)); // keep the reason short
    return parseError(400, `invalid character in value of header ${name}`);
  }
  return [decodeShared(line, 0, colon), decodeShared(line, start, end)];
}

function allBytes(
  bytes: Uint8Array,
  start: number,
  end: number,
  test: (code: number) => boolean,
): boolean {
  for (let i = start; i < end; i++) if (!test(bytes[i]!)) return false;
  return true;
}

/** DIGIT (RFC 5234 appendix B.1). */
export function isDigit(code: number): boolean {
  return code >= 0x30 && code <= 0x39;
}

function isVisibleAscii(code: number): boolean {
  return code > SP && code < 0x7f;
}
