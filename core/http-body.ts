/**
 * The body of a non-101 response to the upgrade request (RFC 7230 §3.3.3): how it is delimited,
 * and an incremental reader (Content-Length, chunked, or until the connection closes) that keeps
 * at most a given number of bytes, so a client can report why the server refused it.
 */
import { HeaderList, isDigit, isFieldValueChar, isOws, tokenList, trimOws } from "./http.ts";

const LF = 0x0a;
const CR = 0x0d;

export type BodyFraming =
  | { kind: "none" }
  | { kind: "length"; length: number }
  | { kind: "chunked" }
  | { kind: "until-eof" };

/**
 * How the body of a response to a GET request is delimited (RFC 7230 §3.3.3):
 * 1xx, 204 and 304 have none; Transfer-Encoding ending in chunked is chunked, any other
 * Transfer-Encoding runs until the connection closes; then a valid Content-Length;
 * otherwise until the connection closes.
 */
export function responseBodyFraming(
  status: number,
  headers: HeaderList,
): BodyFraming | { error: string } {
  if (status < 200 || status === 204 || status === 304) return { kind: "none" };
  const transferEncoding = headers.get("transfer-encoding");
  if (transferEncoding !== null) {
    const codings = tokenList(transferEncoding);
    return codings.length > 0 && codings[codings.length - 1]!.toLowerCase() === "chunked"
      ? { kind: "chunked" }
      : { kind: "until-eof" };
  }
  const contentLength = headers.get("content-length");
  if (contentLength === null) return { kind: "until-eof" };
  const length = parseContentLength(contentLength);
  return length === null ? { error: "invalid Content-Length" } : { kind: "length", length };
}

/**
 * Content-Length = 1*DIGIT (RFC 7230 §3.3.2). A list of identical values (from repeated
 * fields) is accepted as that value; anything else is invalid.
 */
export function parseContentLength(value: string): number | null {
  let result: number | null = null;
  for (const item of value.split(",")) {
    const digits = trimOws(item);
    if (digits.length === 0 || digits.length > 15 || !allChars(digits, isDigit)) return null;
    const length = Number(digits);
    if (result !== null && result !== length) return null;
    result = length;
  }
  return result;
}

function allChars(s: string, test: (code: number) => boolean): boolean {
  for (let i = 0; i < s.length; i++) if (!test(s.charCodeAt(i))) return false;
  return true;
}

export type BodyReadStatus = "more" | "done" | { error: string };

/**
 * Collects a response body, keeping at most `maxBodySize` bytes. It reports "done"
 * once the body is complete or the cap is reached (`truncated` tells which), so a peer
 * cannot make us wait for, or hold, more than the cap.
 */
export class BodyReader {
  private readonly framing: BodyFraming;
  private readonly maxBodySize: number;
  private readonly maxLineLength: number;
  private readonly chunks: Uint8Array[] = [];
  private received = 0;
  private chunked: ChunkedDecoder | null;
  truncated = false;

  constructor(framing: BodyFraming, maxBodySize: number, maxLineLength: number) {
    this.framing = framing;
    this.maxBodySize = maxBodySize;
    this.maxLineLength = maxLineLength;
    this.chunked = framing.kind === "chunked" ? new ChunkedDecoder(this.maxLineLength) : null;
  }

  /** "done" immediately for bodies that are empty by definition. */
  start(): BodyReadStatus {
    if (this.framing.kind === "none") return "done";
    if (this.framing.kind === "length" && this.framing.length === 0) return "done";
    return "more";
  }

  push(chunk: Uint8Array): BodyReadStatus {
    if (this.chunked) {
      const status = this.chunked.push(chunk, (data) => this.take(data));
      if (typeof status === "object" || status === "done") return status;
      return this.truncated ? "done" : "more";
    }
    if (this.framing.kind === "length") {
      this.take(chunk.subarray(0, this.framing.length - this.received));
      return this.received >= this.framing.length || this.truncated ? "done" : "more";
    }
    this.take(chunk); // until-eof
    return this.truncated ? "done" : "more";
  }

  /** The connection closed: only a body delimited by EOF is complete now. */
  end(): Exclude<BodyReadStatus, "more"> {
    return this.framing.kind === "until-eof"
      ? "done"
      : { error: "connection closed before the response body was complete" };
  }

  body(): Uint8Array {
    const body = new Uint8Array(Math.min(this.received, this.maxBodySize));
    let offset = 0;
    for (const chunk of this.chunks) {
      body.set(chunk, offset);
      offset += chunk.length;
    }
    return body;
  }

  /** Counts body bytes and keeps a copy of those under the cap. Returns false once the cap is hit. */
  private take(data: Uint8Array): boolean {
    const room = this.maxBodySize - Math.min(this.received, this.maxBodySize);
    if (data.length > room) this.truncated = true;
    if (room > 0 && data.length > 0) this.chunks.push(data.slice(0, room));
    this.received += data.length;
    return !this.truncated;
  }
}

/**
 * Decoder for the chunked transfer coding (RFC 7230 §4.1). Stops at the last chunk:
 * trailers are not needed for a rejected handshake, so they are not read.
 */
class ChunkedDecoder {
  private readonly maxLineLength: number;
  private state: "size" | "extension" | "size-lf" | "data" | "data-cr" | "data-lf" = "size";
  private size = 0;
  private sizeDigits = 0;
  private lineLength = 0;
  private remaining = 0;

  constructor(maxLineLength: number) {
    this.maxLineLength = maxLineLength;
  }

  /** Feeds bytes; `onData` gets chunk data and returns false to stop early. */
  push(chunk: Uint8Array, onData: (data: Uint8Array) => boolean): BodyReadStatus {
    let pos = 0;
    while (pos < chunk.length) {
      if (this.state === "data") {
        const end = Math.min(chunk.length, pos + this.remaining);
        const keepGoing = onData(chunk.subarray(pos, end));
        this.remaining -= end - pos;
        pos = end;
        if (this.remaining === 0) this.state = "data-cr";
        if (!keepGoing) return "more";
        continue;
      }
      const status = this.step(chunk[pos++]!);
      if (status !== "more") return status;
    }
    return "more";
  }

  /** One byte of chunk framing: chunk-size [ chunk-ext ] CRLF, or the CRLF after chunk-data. */
  private step(byte: number): BodyReadStatus {
    switch (this.state) {
      case "size":
      case "extension":
        if (++this.lineLength > this.maxLineLength) return { error: "chunk size line too long" };
        if (byte === CR) {
          if (this.sizeDigits === 0) return { error: "invalid chunk size" };
          this.state = "size-lf";
          return "more";
        }
        if (this.state === "extension") {
          return isFieldValueChar(byte) ? "more" : { error: "invalid chunk extension" };
        }
        return this.sizeDigit(byte);
      case "size-lf":
        if (byte !== LF) return { error: "chunk size line not terminated by CRLF" };
        if (this.size === 0) return "done"; // last-chunk
        this.remaining = this.size;
        this.size = 0;
        this.sizeDigits = 0;
        this.lineLength = 0;
        this.state = "data";
        return "more";
      case "data-cr":
        if (byte !== CR) return { error: "chunk data not followed by CRLF" };
        this.state = "data-lf";
        return "more";
      case "data-lf":
        if (byte !== LF) return { error: "chunk data not followed by CRLF" };
        this.state = "size";
        return "more";
      default:
        return { error: "unreachable" };
    }
  }

  /** chunk-size = 1*HEXDIG; anything after it must start a chunk extension (";" or BWS). */
  private sizeDigit(byte: number): BodyReadStatus {
    const value = hexValue(byte);
    if (value >= 0) {
      if (++this.sizeDigits > 12) return { error: "chunk size too large" };
      this.size = this.size * 16 + value;
      return "more";
    }
    if (this.sizeDigits > 0 && (byte === 0x3b || isOws(byte))) {
      this.state = "extension";
      return "more";
    }
    return { error: "invalid chunk size" };
  }
}

function hexValue(code: number): number {
  if (code >= 0x30 && code <= 0x39) return code - 0x30;
  if (code >= 0x41 && code <= 0x46) return code - 0x41 + 10;
  if (code >= 0x61 && code <= 0x66) return code - 0x61 + 10;
  return -1;
}
