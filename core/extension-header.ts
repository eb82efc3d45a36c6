/**
 * The Sec-WebSocket-Extensions header (RFC 6455 §9.1):
 *
 *   Sec-WebSocket-Extensions = extension-list
 *   extension-list = 1#extension
 *   extension = extension-token *( ";" extension-param )
 *   extension-param = token [ "=" (token | quoted-string) ]
 *       ; a quoted-string value must be a token once unquoted
 *
 * with token and quoted-string from RFC 7230 §3.2.6. Optional whitespace is allowed
 * around "," (RFC 7230 §7) and, as RFC 6455's implied-LWS grammar permits, around ";"
 * and "=". Empty list elements are ignored (RFC 7230 §7). The scanner visits each
 * character once and builds no objects keyed by peer strings.
 */

import { WebSocketError } from "./errors.ts";
import { isOws, isToken, isTokenChar } from "./http.ts";

export interface ExtensionParam {
  name: string;
  /** `true` when the parameter has no value; quoted-string values arrive unquoted. */
  value: string | true;
}

export interface ExtensionOffer {
  name: string;
  /** In header order; duplicates are kept for the extension to judge. */
  params: ExtensionParam[];
}

export type ParseExtensionsResult = { ok: true; offers: ExtensionOffer[] } | {
  ok: false;
  reason: string;
};

const COMMA = 0x2c;
const SEMICOLON = 0x3b;
const EQUALS = 0x3d;
const DQUOTE = 0x22;
const BACKSLASH = 0x5c;

class SyntaxFailure {
  readonly reason: string;
  constructor(reason: string) {
    this.reason = reason;
  }
}

/** Parses a Sec-WebSocket-Extensions value. An empty value gives zero offers. */
export function parseExtensions(header: string): ParseExtensionsResult {
  const scanner = new Scanner(header);
  const offers: ExtensionOffer[] = [];
  try {
    for (;;) {
      scanner.skipOws();
      if (scanner.atEnd()) break;
      if (scanner.accept(COMMA)) continue; // empty list element
      offers.push(parseOffer(scanner));
      scanner.skipOws();
      if (!scanner.atEnd() && !scanner.accept(COMMA)) {
        scanner.fail('expected "," between extensions');
      }
    }
  } catch (error) {
    if (error instanceof SyntaxFailure) return { ok: false, reason: error.reason };
    throw error;
  }
  return { ok: true, offers };
}

/** extension = extension-token *( ";" extension-param ) */
function parseOffer(scanner: Scanner): ExtensionOffer {
  const name = scanner.token("extension name");
  const params: ExtensionParam[] = [];
  for (;;) {
    scanner.skipOws();
    if (!scanner.accept(SEMICOLON)) break;
    scanner.skipOws();
    params.push(parseParam(scanner));
  }
  return { name, params };
}

/** extension-param = token [ "=" (token | quoted-string) ] */
function parseParam(scanner: Scanner): ExtensionParam {
  const name = scanner.token("parameter name");
  scanner.skipOws();
  if (!scanner.accept(EQUALS)) return { name, value: true };
  scanner.skipOws();
  if (!scanner.peek(DQUOTE)) return { name, value: scanner.token(`value for parameter ${name}`) };
  const value = scanner.quotedString();
  // RFC 6455 §9.1: the unquoted value MUST conform to the token ABNF.
  if (!isToken(value)) scanner.fail(`quoted value of parameter ${name} is not a token`);
  return { name, value };
}

class Scanner {
  private readonly text: string;
  private pos = 0;

  constructor(text: string) {
    this.text = text;
  }

  atEnd(): boolean {
    return this.pos >= this.text.length;
  }

  peek(code: number): boolean {
    return this.text.charCodeAt(this.pos) === code;
  }

  accept(code: number): boolean {
    if (!this.peek(code)) return false;
    this.pos++;
    return true;
  }

  skipOws(): void {
    while (isOws(this.text.charCodeAt(this.pos))) this.pos++;
  }

  /** token = 1*tchar (RFC 7230 §3.2.6) */
  token(what: string): string {
    const start = this.pos;
    while (isTokenChar(this.text.charCodeAt(this.pos))) this.pos++;
    if (this.pos === start) this.fail(`expected ${what}`);
    return this.text.slice(start, this.pos);
  }

  /**
   * quoted-string = DQUOTE *( qdtext / quoted-pair ) DQUOTE
   * quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text )   (RFC 7230 §3.2.6)
   * Returns the unescaped content.
   */
  quotedString(): string {
    this.pos++; // opening DQUOTE
    let value = "";
    let segmentStart = this.pos;
    while (this.pos < this.text.length) {
      const code = this.text.charCodeAt(this.pos);
      if (code === DQUOTE) {
        value += this.text.slice(segmentStart, this.pos);
        this.pos++;
        return value;
      }
      if (code === BACKSLASH) {
        value += this.text.slice(segmentStart, this.pos);
        const escaped = this.text.charCodeAt(this.pos + 1);
        if (!isQuotedPairChar(escaped)) this.fail("invalid escape in quoted string");
        segmentStart = this.pos + 1; // keep the escaped character, drop the backslash
        this.pos += 2;
        continue;
      }
      if (!isQdtext(code)) this.fail("invalid character in quoted string");
      this.pos++;
    }
    return this.fail("unclosed quoted string");
  }

  fail(reason: string): never {
    throw new SyntaxFailure(`${reason} at position ${this.pos}`);
  }
}

/** qdtext = HTAB / SP / "!" / %x23-5B / %x5D-7E / obs-text */
function isQdtext(code: number): boolean {
  return code === 0x09 || code === 0x20 || code === 0x21 ||
    (code >= 0x23 && code <= 0x7e && code !== BACKSLASH) || (code >= 0x80 && code <= 0xff);
}

function isQuotedPairChar(code: number): boolean {
  return code === 0x09 || (code >= 0x20 && code <= 0x7e) || (code >= 0x80 && code <= 0xff);
}

/**
 * Formats offers (or a server's accepted extensions) as a header value.
 * Names and values must be tokens: RFC 6455 §9.1 requires even a quoted value to be a
 * token once unquoted, so quoting could never make a non-token value valid. Anything
 * else throws ERR_INVALID_HEADER.
 */
export function formatExtensions(offers: readonly ExtensionOffer[]): string {
  return offers.map(formatOffer).join(", ");
}

function formatOffer(offer: ExtensionOffer): string {
  requireToken(offer.name, "extension name");
  let text = offer.name;
  for (const param of offer.params) {
    requireToken(param.name, `parameter name of extension ${offer.name}`);
    text += `; ${param.name}`;
    if (param.value === true) continue;
    requireToken(param.value, `value of parameter ${param.name}`);
    text += `=${param.value}`;
  }
  return text;
}

function requireToken(value: string, what: string): void {
  if (typeof value !== "string" || !isToken(value)) {
    throw new WebSocketError(
      "ERR_INVALID_HEADER",
      `invalid ${what} ${JSON.stringify(value)}: not an RFC 7230 token`,
    );
  }
}
