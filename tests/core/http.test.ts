import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { concatBytes } from "../../core/bytes.ts";
import { WebSocketError } from "../../core/errors.ts";
import { BodyReader, type BodyReadStatus, parseContentLength, responseBodyFraming } from "../../core/http-body.ts";
import {
  DEFAULT_HTTP_LIMITS,
  encodeLatin1 as latin1, // one byte per character (the test strings are ASCII or Latin-1)
  HeaderList,
  type HttpHeadKind,
  HttpHeadParser,
  type HttpLimits,
  type HttpParseResult,
  isToken,
  tokenList,
  validateHeader,
} from "../../core/http.ts";

/** Pushes the chunks in order; returns the first result and the index of the chunk that produced it. */
function feed<K extends HttpHeadKind>(
  parser: HttpHeadParser<K>,
  chunks: Uint8Array[],
): { result: HttpParseResult<K> | undefined; at: number } {
  for (let i = 0; i < chunks.length; i++) {
    const result = parser.push(chunks[i]!);
    if (result !== undefined) return { result, at: i };
  }
  return { result: undefined, at: -1 };
}

function parse<K extends HttpHeadKind>(
  kind: K,
  text: string | Uint8Array,
  limits?: Partial<HttpLimits>,
) {
  const bytes = typeof text === "string" ? latin1(text) : text;
  return new HttpHeadParser(kind, limits).push(bytes);
}

function parseRequest(text: string | Uint8Array, limits?: Partial<HttpLimits>) {
  return parse("request", text, limits);
}

function bytewise(data: Uint8Array): Uint8Array[] {
  return Array.from(data, (byte) => Uint8Array.of(byte));
}

function assertError(
  result: HttpParseResult<HttpHeadKind> | undefined,
  status: number,
  reasonPart?: string,
): void {
  assert.ok(result, "expected a result, got undefined (parser wants more bytes)");
  assert.equal(result.ok, false, "expected a parse error");
  if (result.ok) return;
  assert.equal(result.status, status, `reason: ${result.reason}`);
  if (reasonPart !== undefined) assert.match(result.reason, new RegExp(reasonPart));
}

/** A plain comparable form of a successful parse result (fails the test otherwise). */
function summarize(result: HttpParseResult<"request"> | undefined) {
  assert.ok(result?.ok, `expected a head, got ${JSON.stringify(result)}`);
  const { head, rest } = result;
  return {
    method: head.method,
    target: head.target,
    version: head.version,
    headers: head.headers.entries(),
    rest: [...rest],
  };
}

const REQUEST = "GET /chat?room=1 HTTP/1.1\r\n" +
  "Host: server.example.com\r\n" +
  "Upgrade: websocket\r\n" +
  "Connection: Upgrade\r\n" +
  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
  "X-Latin1: caf\u00e9\r\n" +
  "Sec-WebSocket-Version: 13\r\n" +
  "\r\n";
// A masked WebSocket frame (with bytes that are not ASCII) right after the head.
const FRAME = Uint8Array.of(
  0x81,
  0x85,
  0x37,
  0xfa,
  0x21,
  0x3d,
  0x7f,
  0x9f,
  0x4d,
  0x51,
  0x58,
  0x0d,
  0x0a,
  0x0d,
  0x0a,
);

describe("isToken", () => {
  test("accepts every tchar", () => {
    assert.ok(isToken("!#$%&'*+-.^_`|~09azAZ"));
    assert.ok(isToken("permessage-deflate"));
  });
  test("rejects empty strings, separators, whitespace, controls and non-ASCII", () => {
    for (
      const bad of [
        "",
        "a b",
        "a,b",
        "a;b",
        "a=b",
        'a"b',
        "a/b",
        "a:b",
        "a(b",
        "a\tb",
        "a\r\nb",
        "a\u0000",
        "caf\u00e9",
        "\u7f51",
      ]
    ) {
      assert.equal(isToken(bad), false, JSON.stringify(bad));
    }
  });
});

describe("tokenList", () => {
  test("splits on commas, trims SP/HTAB, drops empty elements, keeps case (RFC 7230 §7)", () => {
    assert.deepEqual(tokenList("Upgrade, Keep-Alive"), ["Upgrade", "Keep-Alive"]);
    assert.deepEqual(tokenList(" ,a ,, \tb\t, ,"), ["a", "b"]);
    assert.deepEqual(tokenList(""), []);
    assert.deepEqual(tokenList(" , ,"), []);
  });
  test("does not trim non-HTTP whitespace", () => {
    assert.deepEqual(tokenList("\u00a0a"), ["\u00a0a"]);
  });
  test("100,000 spaces around an element", () => {
    const spaces = " ".repeat(100_000);
    assert.deepEqual(tokenList(`${spaces}chat${spaces},${spaces}`), ["chat"]);
  });
});

describe("HeaderList", () => {
  test("case-insensitive lookup, original case and order kept", () => {
    const headers = new HeaderList([
      ["Set-Thing", "a"],
      ["X-Other", "x"],
      ["set-thing", "b"],
    ]);
    assert.equal(headers.get("SET-THING"), "a, b");
    assert.deepEqual(headers.getAll("set-Thing"), ["a", "b"]);
    assert.equal(headers.has("x-other"), true);
    assert.equal(headers.get("missing"), null);
    assert.deepEqual(headers.getAll("missing"), []);
    assert.equal(headers.has("missing"), false);
    assert.deepEqual(headers.entries(), [
      ["Set-Thing", "a"],
      ["X-Other", "x"],
      ["set-thing", "b"],
    ]);
  });

  test("append and an empty value", () => {
    const headers = new HeaderList();
    headers.append("X-Empty", "");
    assert.equal(headers.get("x-empty"), "");
    assert.equal(headers.size, 1);
  });

  test("names like __proto__ and constructor are plain data", () => {
    const headers = new HeaderList();
    assert.equal(headers.get("__proto__"), null);
    assert.equal(headers.get("constructor"), null);
    assert.equal(headers.has("toString"), false);
    headers.append("__proto__", "p");
    headers.append("constructor", "c");
    assert.equal(headers.get("__proto__"), "p");
    assert.equal(headers.get("constructor"), "c");
    assert.equal(headers.get("hasOwnProperty"), null);
  });

  test("entries() returns copies", () => {
    const headers = new HeaderList([["A", "1"]]);
    headers.entries()[0]![1] = "changed";
    headers.getAll("a").push("extra");
    assert.deepEqual(headers.entries(), [["A", "1"]]);
  });
});

describe("validateHeader", () => {
  test("accepts ordinary headers, HTAB and obs-text in values", () => {
    validateHeader("X-Custom", "a value\twith tab");
    validateHeader("X-Latin1", "caf\u00e9");
    validateHeader("X-Empty", "");
  });

  const bad: [string, string, string][] = [
    ["X-Bad", "a\r\nInjected: yes", "CRLF in value"],
    ["X-Bad", "a\rb", "CR in value"],
    ["X-Bad", "a\nb", "LF in value"],
    ["X-Bad", "a\u0000b", "NUL in value"],
    ["X-Bad", "a\u007fb", "DEL in value"],
    ["X-Bad", "\u7f51", "character above U+00FF"],
    ["X Bad", "v", "space in name"],
    ["X-Bad\r\n", "v", "CRLF in name"],
    ["X:Bad", "v", "colon in name"],
    ["", "v", "empty name"],
  ];
  for (const [name, value, why] of bad) {
    test(`throws ERR_INVALID_HEADER: ${why}`, () => {
      assert.throws(
        () => validateHeader(name, value),
        (error: unknown) => error instanceof WebSocketError && error.code === "ERR_INVALID_HEADER",
      );
    });
  }
});

describe("HttpHeadParser (request)", () => {
  test("parses a head in one chunk and returns the following bytes in rest", () => {
    const result = parseRequest(concatBytes([latin1(REQUEST), FRAME]));
    assert.ok(result?.ok);
    const { head, rest } = result;
    assert.equal(head.method, "GET");
    assert.equal(head.target, "/chat?room=1");
    assert.equal(head.version, "HTTP/1.1");
    assert.equal(head.headers.get("host"), "server.example.com");
    assert.equal(head.headers.get("x-latin1"), "caf\u00e9"); // obs-text decoded as Latin-1
    assert.equal(head.headers.entries().length, 6);
    assert.deepEqual(rest, FRAME);
  });

  test("rest is empty when nothing follows the head", () => {
    const result = parseRequest(REQUEST);
    assert.ok(result?.ok);
    assert.equal(result.rest.length, 0);
  });

  test("rest is a copy, not a view of the caller's buffer", () => {
    const input = concatBytes([latin1(REQUEST), FRAME]);
    const result = parseRequest(input);
    assert.ok(result?.ok);
    input.fill(0);
    assert.deepEqual(result.rest, FRAME);
  });

  test("one byte at a time gives the same result", () => {
    const input = concatBytes([latin1(REQUEST), FRAME]);
    const expected = summarize(parseRequest(input));
    const parser = new HttpHeadParser("request");
    const chunks = bytewise(input);
    const { result, at } = feed(parser, chunks);
    assert.equal(at, REQUEST.length - 1, "result must come with the final LF");
    assert.deepEqual(summarize(result), { ...expected, rest: [] });
    // The frame bytes arrive after the head was returned; they are not the parser's.
  });

  /** What follows the head inside the chunk that completes it: that is what `rest` must hold. */
  function expectedRest(input: Uint8Array, boundaries: number[]): number[] {
    const headEnd = REQUEST.length;
    const completingChunkEnd = boundaries.find((end) => end >= headEnd) ?? input.length;
    return [...input.subarray(headEnd, completingChunkEnd)];
  }

  test("every split point into two chunks gives the same head and intact rest", () => {
    const input = concatBytes([latin1(REQUEST), FRAME]);
    const expected = summarize(parseRequest(input));
    for (let split = 0; split <= input.length; split++) {
      const { result } = feed(new HttpHeadParser("request"), [
        input.subarray(0, split),
        input.subarray(split),
      ]);
      const rest = expectedRest(input, [split]);
      assert.deepEqual(summarize(result), { ...expected, rest }, `split at ${split}`);
      if (split < REQUEST.length) assert.deepEqual(rest, [...FRAME]);
    }
  });

  test("three chunks, over a grid of split points, give the same result", () => {
    const input = concatBytes([latin1(REQUEST), FRAME]);
    const expected = summarize(parseRequest(input));
    for (let a = 0; a <= input.length; a += 5) {
      for (let b = a; b <= input.length; b++) {
        const chunks = [input.subarray(0, a), input.subarray(a, b), input.subarray(b)];
        const { result } = feed(new HttpHeadParser("request"), chunks);
        assert.deepEqual(
          summarize(result),
          { ...expected, rest: expectedRest(input, [a, b]) },
          `splits at ${a}, ${b}`,
        );
      }
    }
  });

  test("trims OWS around values and accepts empty values", () => {
    const result = parseRequest("GET / HTTP/1.1\r\nA: \t spaced \t \r\nB:\r\nC:x\r\n\r\n");
    assert.ok(result?.ok);
    assert.deepEqual(result.head.headers.entries(), [
      ["A", "spaced"],
      ["B", ""],
      ["C", "x"],
    ]);
  });

  test("header names __proto__ and constructor are stored as data", () => {
    const result = parseRequest("GET / HTTP/1.1\r\n__proto__: 1\r\nconstructor: 2\r\n\r\n");
    assert.ok(result?.ok);
    assert.equal(result.head.headers.get("__proto__"), "1");
    assert.equal(result.head.headers.get("constructor"), "2");
    assert.equal(result.head.headers.get("toString"), null);
  });

  test("keeps other methods and HTTP versions for the handshake to judge", () => {
    const result = parseRequest("POST /x HTTP/1.0\r\n\r\n");
    assert.ok(result?.ok);
    assert.equal(result.head.method, "POST");
    assert.equal(result.head.version, "HTTP/1.0");
  });

  const malformed: [string, string, number, string][] = [
    ["bare LF line endings", "GET / HTTP/1.1\nHost: a\n\n", 400, "CRLF"],
    ["bare LF after the headers", "GET / HTTP/1.1\r\nHost: a\r\n\n", 400, "CRLF"],
    [
      "bare CR inside a header value",
      "GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n",
      400,
      "invalid character in value",
    ],
    ["bare CR inside the request line", "GET /\r HTTP/1.1\r\n\r\n", 400, "invalid request target"],
    ["obs-fold continuation line", "GET / HTTP/1.1\r\nX-A: a\r\n  folded\r\n\r\n", 400, "folding"],
    ["obs-fold with a tab", "GET / HTTP/1.1\r\nX-A: a\r\n\tfolded\r\n\r\n", 400, "folding"],
    [
      "space before the colon",
      "GET / HTTP/1.1\r\nHost : a\r\n\r\n",
      400,
      "whitespace between header name and colon",
    ],
    [
      "tab before the colon",
      "GET / HTTP/1.1\r\nHost\t: a\r\n\r\n",
      400,
      "whitespace between header name and colon",
    ],
    ["no colon", "GET / HTTP/1.1\r\nHost a\r\n\r\n", 400, "without a colon"],
    ["empty header name", "GET / HTTP/1.1\r\n: a\r\n\r\n", 400, "empty header name"],
    ["non-token header name", "GET / HTTP/1.1\r\nX(A): a\r\n\r\n", 400, "invalid header name"],
    [
      "NUL in a header value",
      "GET / HTTP/1.1\r\nX: a\u0000b\r\n\r\n",
      400,
      "invalid character in value",
    ],
    [
      "DEL in a header value",
      "GET / HTTP/1.1\r\nX: a\u007fb\r\n\r\n",
      400,
      "invalid character in value",
    ],
    ["non-token method", "G(T / HTTP/1.1\r\n\r\n", 400, "invalid method"],
    ["empty method", " / HTTP/1.1\r\n\r\n", 400, "invalid method"],
    ["double space in the request line", "GET  / HTTP/1.1\r\n\r\n", 400, "invalid request target"],
    ["space inside the target", "GET /a b HTTP/1.1\r\n\r\n", 400, "malformed HTTP version"],
    [
      "non-ASCII byte in the target",
      "GET /caf\u00e9 HTTP/1.1\r\n\r\n",
      400,
      "invalid request target",
    ],
    ["missing version", "GET /\r\n\r\n", 400, "malformed request line"],
    ["trailing space after the version", "GET / HTTP/1.1 \r\n\r\n", 400, "malformed HTTP version"],
    ["lower-case version", "GET / http/1.1\r\n\r\n", 400, "malformed HTTP version"],
    ["two-digit minor version", "GET / HTTP/1.10\r\n\r\n", 400, "malformed HTTP version"],
    ["version without minor", "GET / HTTP/1\r\n\r\n", 400, "malformed HTTP version"],
    [
      "empty line before the request line",
      "\r\nGET / HTTP/1.1\r\n\r\n",
      400,
      "malformed request line",
    ],
    ["HTTP/2.0", "GET / HTTP/2.0\r\n\r\n", 505, "unsupported HTTP version"],
    ["HTTP/0.9", "GET / HTTP/0.9\r\n\r\n", 505, "unsupported HTTP version"],
  ];
  for (const [why, text, status, reason] of malformed) {
    test(`rejects ${why} with ${status}`, () => {
      assertError(parseRequest(text), status, reason);
      // ...and the same when the bytes trickle in one at a time.
      assertError(
        feed(new HttpHeadParser("request"), bytewise(latin1(text))).result,
        status,
        reason,
      );
    });
  }

  test("reports a bad line as soon as it is complete, without waiting for the head to end", () => {
    const parser = new HttpHeadParser("request");
    assert.equal(parser.push(latin1("GET / HTTP/1.1\r\n")), undefined);
    assertError(parser.push(latin1("Bad Header: x\r\n")), 400);
  });

  test("push after a result throws ERR_INVALID_STATE", () => {
    const done = new HttpHeadParser("request");
    assert.ok(done.push(latin1(REQUEST))?.ok);
    assert.throws(
      () => done.push(latin1("more")),
      (e: unknown) => e instanceof WebSocketError && e.code === "ERR_INVALID_STATE",
    );

    const failed = new HttpHeadParser("request");
    assertError(failed.push(latin1("GET / HTTP/1.1\n")), 400);
    assert.throws(
      () => failed.push(latin1("\n")),
      (e: unknown) => e instanceof WebSocketError && e.code === "ERR_INVALID_STATE",
    );
  });

  test("rejects invalid limits as local misuse", () => {
    for (
      const limits of [{ maxLineLength: 0 }, { maxHeaders: -1 }, { maxHeadSize: 1.5 }, {
        maxHeadSize: Number.NaN,
      }]
    ) {
      assert.throws(
        () => new HttpHeadParser("request", limits),
        (e: unknown) => e instanceof WebSocketError && e.code === "ERR_INVALID_ARGUMENT",
      );
    }
  });
});

describe("HttpHeadParser limits", () => {
  test("defaults are 8192 / 100 / 16384", () => {
    assert.deepEqual({ ...DEFAULT_HTTP_LIMITS }, {
      maxLineLength: 8192,
      maxHeaders: 100,
      maxHeadSize: 16384,
    });
  });

  function requestLineOf(length: number): string {
    const fixed = "GET / HTTP/1.1".length;
    return `GET /${"a".repeat(length - fixed)} HTTP/1.1`;
  }

  test("request line of exactly maxLineLength is accepted, one byte more is 414", () => {
    const limits = { maxLineLength: 100 };
    assert.ok(parseRequest(`${requestLineOf(100)}\r\n\r\n`, limits)?.ok);
    assertError(
      parseRequest(`${requestLineOf(101)}\r\n\r\n`, limits),
      414,
      "request line too long",
    );
  });

  test("an over-long request line is refused before its end arrives", () => {
    const parser = new HttpHeadParser("request", { maxLineLength: 100 });
    const line = latin1(requestLineOf(101));
    assert.equal(parser.push(line.subarray(0, 100)), undefined);
    assertError(parser.push(line.subarray(100, 101)), 414);
  });

  test("the default request-line limit with a 1 MB line in one chunk", () => {
    assertError(parseRequest(`GET /${"a".repeat(1_000_000)}`), 414);
  });

  test("a CR at the limit may still be the start of CRLF", () => {
    const parser = new HttpHeadParser("request", { maxLineLength: 100 });
    const bytes = latin1(`${requestLineOf(100)}\r\n\r\n`);
    assert.equal(parser.push(bytes.subarray(0, 101)), undefined); // 100 bytes + CR
    assert.ok(parser.push(bytes.subarray(101))?.ok);
  });

  /** The result of `bytes` pushed in pieces of `size` bytes (Infinity: whole). */
  function inPieces(bytes: Uint8Array, size: number, limits?: Partial<HttpLimits>) {
    const chunks: Uint8Array[] = [];
    for (let at = 0; at < bytes.length; at += Math.min(size, bytes.length)) chunks.push(bytes.subarray(at, at + size));
    const { result } = feed(new HttpHeadParser("request", limits), chunks);
    assert.ok(result && !result.ok, `expected an error, got ${JSON.stringify(result)}`);
    return { status: result.status, reason: result.reason };
  }

  test("the limit reported is the one the bytes cross first, wherever the reads end", () => {
    // A 206-byte request line over maxLineLength 200, with maxHeadSize 150 crossed first.
    const limits = { maxLineLength: 200, maxHeadSize: 150 };
    const line = latin1(`${requestLineOf(204)}\r\n\r\n`);
    const expected = { status: 431, reason: "request head too large" };
    for (const size of [Infinity, 1, 7, 150, 151, 205]) assert.deepEqual(inPieces(line, size, limits), expected, `pieces of ${size}`);
    // Default limits: two 5,000-byte headers, then a 9,000-byte one crosses maxHeadSize first.
    const head = latin1(
      `${requestLineOf(20)}\r\nX-A: ${"a".repeat(4995)}\r\nX-B: ${"b".repeat(4995)}\r\nX-C: ${"c".repeat(8995)}\r\n\r\n`,
    );
    for (const size of [Infinity, 1, 100, 4096]) {
      assert.deepEqual(inPieces(head, size), expected, `pieces of ${size}`);
    }
    // The line limit crossed first: its own status and reason, whole or in pieces.
    const long = latin1(`${requestLineOf(120)}\r\n\r\n`);
    for (const size of [Infinity, 1, 60]) {
      assert.deepEqual(inPieces(long, size, { maxLineLength: 100, maxHeadSize: 150 }), { status: 414, reason: "request line too long" });
    }
  });

  function headerLineOf(length: number): string {
    return `X-Long: ${"v".repeat(length - "X-Long: ".length)}`;
  }

  test("header line of exactly maxLineLength is accepted, one more is 431", () => {
    const limits = { maxLineLength: 64 };
    assert.ok(parseRequest(`GET / HTTP/1.1\r\n${headerLineOf(64)}\r\n\r\n`, limits)?.ok);
    assertError(
      parseRequest(`GET / HTTP/1.1\r\n${headerLineOf(65)}\r\n\r\n`, limits),
      431,
      "header line too long",
    );
  });

  test("an over-long header line trickling in is refused at its (max + 1)th byte", () => {
    const parser = new HttpHeadParser("request", { maxLineLength: 64 });
    assert.equal(parser.push(latin1("GET / HTTP/1.1\r\n")), undefined);
    const line = latin1(headerLineOf(200));
    for (let i = 0; i < 64; i++) {
      assert.equal(parser.push(line.subarray(i, i + 1)), undefined, `byte ${i}`);
    }
    assertError(parser.push(line.subarray(64, 65)), 431);
  });

  test("maxHeaders fields are accepted, one more is 431", () => {
    const fields = (n: number) => Array.from({ length: n }, (_, i) => `X-${i}: ${i}\r\n`).join("");
    const ok = parseRequest(`GET / HTTP/1.1\r\n${fields(100)}\r\n`);
    assert.ok(ok?.ok);
    assert.equal(ok.head.headers.entries().length, 100);
    assertError(
      parseRequest(`GET / HTTP/1.1\r\n${fields(101)}\r\n`),
      431,
      "too many header fields",
    );
  });

  test("10,000 headers: refused with 431 by default, parsed in full when the limits allow", () => {
    const many = `GET / HTTP/1.1\r\n${"X: y\r\n".repeat(10_000)}\r\n`;
    assertError(parseRequest(many), 431);
    const result = parseRequest(many, { maxHeaders: 10_000, maxHeadSize: many.length });
    assert.ok(result?.ok);
    assert.equal(result.head.headers.getAll("x").length, 10_000);
    assertError(
      parseRequest(many, { maxHeaders: 9_999, maxHeadSize: many.length }),
      431,
      "too many",
    );
  });

  test("10,000 headers one byte at a time with generous limits", () => {
    const many = latin1(`GET / HTTP/1.1\r\n${"X-Header: value\r\n".repeat(10_000)}\r\n`);
    const parser = new HttpHeadParser("request", { maxHeaders: 10_000, maxHeadSize: many.length });
    let result;
    for (let i = 0; i < many.length && result === undefined; i++) {
      result = parser.push(many.subarray(i, i + 1));
    }
    assert.ok(result?.ok);
    assert.equal(result.head.headers.size, 10_000);
  });

  test("a head of exactly maxHeadSize bytes is accepted, one byte more is 431", () => {
    const head = `GET / HTTP/1.1\r\nX-Pad: ${"p".repeat(40)}\r\n\r\n`;
    assert.ok(parseRequest(head, { maxHeadSize: head.length })?.ok);
    assertError(parseRequest(head, { maxHeadSize: head.length - 1 }), 431, "head too large");
  });

  test("maxHeadSize is enforced while a line is still incomplete", () => {
    const parser = new HttpHeadParser("request", { maxHeadSize: 64, maxLineLength: 1000 });
    assert.equal(parser.push(latin1("GET / HTTP/1.1\r\n")), undefined); // 16 bytes
    assert.equal(parser.push(latin1(`X: ${"a".repeat(45)}`)), undefined); // 64 bytes so far
    assertError(parser.push(latin1("a")), 431);
  });

  test("many small headers add up to maxHeadSize", () => {
    const head = `GET / HTTP/1.1\r\n${"A: b\r\n".repeat(90)}\r\n`;
    assertError(parseRequest(head, { maxHeadSize: 500 }), 431, "head too large");
  });
});

describe("HttpHeadParser (response)", () => {
  test("parses a status line and headers", () => {
    const result = parse(
      "response",
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
    );
    assert.ok(result?.ok);
    assert.equal(result.head.version, "HTTP/1.1");
    assert.equal(result.head.status, 101);
    assert.equal(result.head.statusText, "Switching Protocols");
    assert.equal(result.head.headers.get("upgrade"), "websocket");
  });

  test("reason phrase may be empty, absent, or contain obs-text", () => {
    for (
      const [line, text] of [
        ["HTTP/1.1 403 ", ""],
        ["HTTP/1.1 403", ""],
        ["HTTP/1.1 403 Verboten \u00e9", "Verboten \u00e9"],
        ["HTTP/1.0 200 OK", "OK"],
      ] as const
    ) {
      const result = parse("response", `${line}\r\n\r\n`);
      assert.ok(result?.ok, line);
      assert.equal(result.head.statusText, text);
    }
  });

  for (
    const line of [
      "HTTP/1.1 20 OK",
      "HTTP/1.1 2000 OK",
      "HTTP/1.1 abc OK",
      "HTTP/1.1 099 Low",
      "HTTP/1.1  200 OK",
      "HTTP/1.1",
      "HTTP/1.1 200 O\u0000K",
      "ICY 200 OK",
    ]
  ) {
    test(`rejects status line ${JSON.stringify(line)}`, () => {
      assertError(parse("response", `${line}\r\n\r\n`), 400);
    });
  }

  test("rejects HTTP/2 responses with 505 and long status lines with 431", () => {
    assertError(parse("response", "HTTP/2.0 200 OK\r\n\r\n"), 505);
    assertError(
      parse("response", `HTTP/1.1 200 ${"x".repeat(100)}\r\n\r\n`, { maxLineLength: 50 }),
      431,
      "status line too long",
    );
  });
});

describe("parseContentLength and responseBodyFraming (RFC 7230 §3.3)", () => {
  test("Content-Length values", () => {
    assert.equal(parseContentLength("0"), 0);
    assert.equal(parseContentLength("42"), 42);
    assert.equal(parseContentLength("42, 42"), 42);
    for (const bad of ["", "-1", "+1", "1e3", "0x10", "4 2", "42, 43", "1,", "9999999999999999"]) {
      assert.equal(parseContentLength(bad), null, JSON.stringify(bad));
    }
  });

  test("framing rules", () => {
    const framing = (status: number, entries: [string, string][]) =>
      responseBodyFraming(status, new HeaderList(entries));
    assert.deepEqual(framing(204, [["Content-Length", "5"]]), { kind: "none" });
    assert.deepEqual(framing(304, []), { kind: "none" });
    assert.deepEqual(framing(403, [["Transfer-Encoding", "chunked"], ["Content-Length", "5"]]), {
      kind: "chunked",
    });
    assert.deepEqual(framing(403, [["Transfer-Encoding", "gzip, Chunked"]]), { kind: "chunked" });
    assert.deepEqual(framing(403, [["Transfer-Encoding", "chunked, gzip"]]), { kind: "until-eof" });
    assert.deepEqual(framing(403, [["Content-Length", "5"]]), { kind: "length", length: 5 });
    assert.deepEqual(framing(403, []), { kind: "until-eof" });
    assert.deepEqual(framing(403, [["Content-Length", "5"], ["Content-Length", "6"]]), {
      error: "invalid Content-Length",
    });
  });
});

describe("BodyReader (chunked)", () => {
  function readChunked(chunks: Uint8Array[], maxBodySize = 1000) {
    const reader = new BodyReader({ kind: "chunked" }, maxBodySize, 100);
    let status: BodyReadStatus = reader.start();
    for (const chunk of chunks) {
      status = reader.push(chunk);
      if (status !== "more") break;
    }
    return { status, body: new TextDecoder().decode(reader.body()), truncated: reader.truncated };
  }

  const encoded = "4\r\nWiki\r\n5;name=value\r\npedia\r\nE \r\n in\r\n\r\nchunks.\r\n0\r\n\r\n";

  test("decodes chunks with extensions, upper-case hex and BWS", () => {
    assert.deepEqual(readChunked([latin1(encoded)]), {
      status: "done",
      body: "Wikipedia in\r\n\r\nchunks.",
      truncated: false,
    });
  });

  test("same result one byte at a time", () => {
    assert.deepEqual(readChunked(bytewise(latin1(encoded))), {
      status: "done",
      body: "Wikipedia in\r\n\r\nchunks.",
      truncated: false,
    });
  });

  test("stops at maxBodySize and reports truncation", () => {
    assert.deepEqual(readChunked([latin1("a\r\n0123456789\r\n")], 4), {
      status: "done",
      body: "0123",
      truncated: true,
    });
  });

  for (
    const [bad, why] of [
      ["x\r\n", "non-hex size"],
      ["\r\n", "empty size"],
      ["4\nWiki\r\n", "bare LF after the size"],
      ["4\r\nWikiX\r\n", "data longer than the size"],
      ["4\r\nWikiX\n0\r\n\r\n", "data not followed by CRLF"],
      ["1000000000000\r\n", "size over 12 hex digits"],
      [`4;${"e".repeat(200)}\r\n`, "size line over maxLineLength"],
    ] as const
  ) {
    test(`reports ${why} as an error`, () => {
      const { status } = readChunked([latin1(bad)]);
      assert.equal(typeof status, "object", `status ${JSON.stringify(status)}`);
    });
  }

  test("EOF before the last chunk is an error; EOF ends an until-eof body", () => {
    const chunked = new BodyReader({ kind: "chunked" }, 100, 100);
    chunked.push(latin1("4\r\nWi"));
    assert.equal(typeof chunked.end(), "object");
    const untilEof = new BodyReader({ kind: "until-eof" }, 100, 100);
    assert.equal(untilEof.push(latin1("all of it")), "more");
    assert.equal(untilEof.end(), "done");
    assert.equal(new TextDecoder().decode(untilEof.body()), "all of it");
  });
});
