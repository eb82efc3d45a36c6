import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { concatBytes } from "../../core/bytes.ts";
import { type ErrorCode, WebSocketError } from "../../core/errors.ts";
import {
  acceptKey,
  buildAcceptResponse,
  buildRejectResponse,
  generateKey,
  ServerHandshakeParser,
  type ServerHandshakeResult,
  type UpgradeRequest,
  WS_GUID,
} from "../../core/handshake.ts";
import {
  buildClientRequest,
  ClientHandshakeParser,
  type ClientHandshakeResult,
  type ClientRequestOptions,
} from "../../core/handshake-client.ts";
import { decodeLatin1, encodeLatin1 as latin1, HeaderList, type HttpLimits } from "../../core/http.ts";

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

const KEY = "dGhlIHNhbXBsZSBub25jZQ=="; // RFC 6455 §1.3
const ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";
// An unmasked text frame "Hello" (RFC 6455 §5.7) and a byte that is not ASCII.
const FRAME = Uint8Array.of(0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0xff);

function throwsCode(fn: () => unknown, code: ErrorCode): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof WebSocketError, `expected WebSocketError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    return true;
  });
}

type Fields = [string, string][];

const BASE_FIELDS: Fields = [
  ["Host", "server.example.com"],
  ["Upgrade", "websocket"],
  ["Connection", "Upgrade"],
  ["Sec-WebSocket-Key", KEY],
  ["Sec-WebSocket-Version", "13"],
];

/** BASE_FIELDS with `name` removed (case-insensitively) and `extra` appended. */
function fieldsWith(remove: string[], extra: Fields = []): Fields {
  const lower = remove.map((n) => n.toLowerCase());
  return [...BASE_FIELDS.filter(([name]) => !lower.includes(name.toLowerCase())), ...extra];
}

function requestText(
  options: { method?: string; target?: string; version?: string; fields?: Fields } = {},
): string {
  const { method = "GET", target = "/chat", version = "HTTP/1.1", fields = BASE_FIELDS } = options;
  return `${method} ${target} ${version}\r\n${
    fields.map(([n, v]) => `${n}: ${v}\r\n`).join("")
  }\r\n`;
}

function serverParse(
  input: string | Uint8Array,
  limits?: Partial<HttpLimits>,
): ServerHandshakeResult | undefined {
  return new ServerHandshakeParser(limits).push(typeof input === "string" ? latin1(input) : input);
}

function accepted(
  input: string | Uint8Array,
  limits?: Partial<HttpLimits>,
): { request: UpgradeRequest; rest: Uint8Array } {
  const result = serverParse(input, limits);
  assert.ok(result?.ok, `expected the request to be accepted, got ${JSON.stringify(result)}`);
  return result;
}

function refused(input: string, status: number, reason: RegExp, headers: Fields = []): void {
  const result = serverParse(input);
  assert.ok(result, "expected a result");
  assert.equal(result.ok, false, "expected the request to be refused");
  if (result.ok) return;
  assert.equal(result.status, status, result.reason);
  assert.match(result.reason, reason);
  assert.deepEqual(result.headers, headers);
}

/** The head a server would send: status line, fields, empty line. */
function responseText(status: string, fields: Fields, body = ""): string {
  return `HTTP/1.1 ${status}\r\n${fields.map(([n, v]) => `${n}: ${v}\r\n`).join("")}\r\n${body}`;
}

const SWITCH_FIELDS: Fields = [
  ["Upgrade", "websocket"],
  ["Connection", "Upgrade"],
  ["Sec-WebSocket-Accept", ACCEPT],
];

function clientParser(
  protocols: string[] = [],
  maxBodySize?: number,
  limits?: Partial<HttpLimits>,
): ClientHandshakeParser {
  return new ClientHandshakeParser({
    key: KEY,
    protocols,
    ...(maxBodySize === undefined ? {} : { maxBodySize }),
    ...(limits ? { limits } : {}),
  });
}

function clientParse(
  input: string | Uint8Array,
  protocols: string[] = [],
): ClientHandshakeResult | undefined {
  return clientParser(protocols).push(typeof input === "string" ? latin1(input) : input);
}

function clientFailure(
  input: string,
  reason: RegExp,
  protocols: string[] = [],
): Extract<ClientHandshakeResult, { ok: false }> {
  const result = clientParse(input, protocols);
  assert.ok(result, "expected a result");
  assert.equal(result.ok, false, "expected the response to be refused");
  if (result.ok) throw new Error("unreachable");
  assert.match(result.reason, reason);
  return result;
}

// ---------------------------------------------------------------------------
// Keys
// ---------------------------------------------------------------------------

describe("keys (RFC 6455 §4.1, §4.2.2)", () => {
  test("acceptKey of the RFC 6455 sample key", () => {
    assert.equal(WS_GUID, "258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    assert.equal(acceptKey(KEY), ACCEPT);
  });

  test("generateKey uses the injected random source", () => {
    const key = generateKey((n) => Uint8Array.from({ length: n }, (_, i) => i));
    assert.equal(key, "AAECAwQFBgcICQoLDA0ODw==");
  });

  test("generateKey defaults to crypto.getRandomValues: 16 bytes, different each time", () => {
    const a = generateKey();
    const b = generateKey();
    assert.equal(a.length, 24);
    assert.match(a, /^[A-Za-z0-9+/]{22}==$/);
    assert.notEqual(a, b);
  });

  test("generateKey refuses a random source that returns the wrong size", () => {
    throwsCode(() => generateKey((n) => new Uint8Array(n - 1)), "ERR_INVALID_ARGUMENT");
  });
});

// ---------------------------------------------------------------------------
// Server: reading the request
// ---------------------------------------------------------------------------

describe("ServerHandshakeParser: valid requests (RFC 6455 §4.2.1)", () => {
  test("the RFC 6455 §1.2 sample request", () => {
    const { request, rest } = accepted(
      requestText({
        fields: [
          ...BASE_FIELDS,
          ["Origin", "http://example.com"],
          ["Sec-WebSocket-Protocol", "chat, superchat"],
        ],
      }),
    );
    assert.equal(request.method, "GET");
    assert.equal(request.target, "/chat");
    assert.equal(request.path, "/chat");
    assert.equal(request.query, "");
    assert.equal(request.host, "server.example.com");
    assert.equal(request.origin, "http://example.com");
    assert.equal(request.key, KEY);
    assert.equal(request.version, 13);
    assert.deepEqual(request.protocols, ["chat", "superchat"]);
    assert.deepEqual(request.extensions, []);
    assert.equal(request.headers.get("sec-websocket-version"), "13");
    assert.equal(rest.length, 0);
  });

  test("Origin absent → null", () => {
    assert.equal(accepted(requestText()).request.origin, null);
  });

  test("frame bytes after the head come back in rest", () => {
    const { rest } = accepted(concatBytes([latin1(requestText()), FRAME]));
    assert.deepEqual(rest, FRAME);
  });

  test("same request one byte at a time and at every split point", () => {
    const input = concatBytes([
      latin1(requestText({ fields: [...BASE_FIELDS, ["Sec-WebSocket-Protocol", "chat"]] })),
      FRAME,
    ]);
    const headLength = input.length - FRAME.length;
    const expected = accepted(input).request;

    const parser = new ServerHandshakeParser();
    for (let i = 0; i < headLength - 1; i++) {
      assert.equal(parser.push(input.subarray(i, i + 1)), undefined);
    }
    const last = parser.push(input.subarray(headLength - 1));
    assert.ok(last?.ok);
    assert.deepEqual(last.request.protocols, expected.protocols);
    assert.deepEqual(last.rest, FRAME);

    for (let split = 0; split < headLength; split++) {
      const p = new ServerHandshakeParser();
      assert.equal(p.push(input.subarray(0, split)), undefined);
      const result = p.push(input.subarray(split));
      assert.ok(result?.ok, `split ${split}`);
      assert.deepEqual(result.request.headers.entries(), expected.headers.entries());
      assert.deepEqual(result.rest, FRAME, `split ${split}`);
    }
  });

  test("path and query", () => {
    const cases: [string, string, string][] = [
      ["/chat?room=1&x", "/chat", "room=1&x"],
      ["/?", "/", ""],
      ["/a/b%20c?q=%3F?", "/a/b%20c", "q=%3F?"],
      ["http://example.com/chat?x=1", "/chat", "x=1"],
      ["wss://example.com", "/", ""],
      ["HTTP://example.com:8080?x", "/", "x"],
    ];
    for (const [target, path, query] of cases) {
      const { request } = accepted(requestText({ target }));
      assert.equal(request.target, target);
      assert.deepEqual([request.path, request.query], [path, query], target);
    }
  });

  test("token matching is case-insensitive and works inside lists", () => {
    accepted(
      requestText({
        fields: fieldsWith(["Upgrade", "Connection"], [["Upgrade", "h2c, WebSocket"], [
          "Connection",
          "keep-alive, UPGRADE",
        ]]),
      }),
    );
    accepted(
      requestText({
        fields: fieldsWith(["Connection"], [["Connection", "keep-alive"], [
          "Connection",
          "upgrade",
        ]]),
      }),
    );
  });

  test("subprotocols from several fields, in order; empty elements ignored", () => {
    const { request } = accepted(
      requestText({
        fields: [...BASE_FIELDS, ["Sec-WebSocket-Protocol", "chat, , superchat"], [
          "Sec-WebSocket-Protocol",
          "v2.json",
        ]],
      }),
    );
    assert.deepEqual(request.protocols, ["chat", "superchat", "v2.json"]);
  });

  test("Sec-WebSocket-Protocol with 100,000 spaces completes with the right answer", () => {
    const spaces = " ".repeat(100_000);
    const limits = { maxLineLength: 400_000, maxHeadSize: 800_000 };
    const one = accepted(
      requestText({
        fields: [...BASE_FIELDS, [
          "Sec-WebSocket-Protocol",
          `${spaces}chat${spaces},${spaces}superchat`,
        ]],
      }),
      limits,
    );
    assert.deepEqual(one.request.protocols, ["chat", "superchat"]);
    const blank = accepted(
      requestText({ fields: [...BASE_FIELDS, ["Sec-WebSocket-Protocol", spaces]] }),
      limits,
    );
    assert.deepEqual(blank.request.protocols, []);
    const inner = serverParse(
      requestText({ fields: [...BASE_FIELDS, ["Sec-WebSocket-Protocol", `a${spaces}b`]] }),
      limits,
    );
    assert.ok(inner && !inner.ok);
    assert.equal(inner.status, 400);
  });

  test("extension offers are parsed; several fields are one list", () => {
    const { request } = accepted(
      requestText({
        fields: [
          ...BASE_FIELDS,
          ["Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits"],
          ["Sec-WebSocket-Extensions", "x-custom; constructor=1; __proto__"],
        ],
      }),
    );
    assert.deepEqual(request.extensions, [
      { name: "permessage-deflate", params: [{ name: "client_max_window_bits", value: true }] },
      {
        name: "x-custom",
        params: [{ name: "constructor", value: "1" }, { name: "__proto__", value: true }],
      },
    ]);
  });
});

describe("ServerHandshakeParser: refusals", () => {
  const cases: [string, string, number, RegExp, Fields?][] = [
    ["POST", requestText({ method: "POST" }), 405, /method "POST" not allowed/, [["Allow", "GET"]]],
    ["lower-case get", requestText({ method: "get" }), 405, /not allowed/, [["Allow", "GET"]]],
    ["HTTP/1.0", requestText({ version: "HTTP/1.0" }), 505, /HTTP\/1\.1/],
    ["HTTP/2.0", requestText({ version: "HTTP/2.0" }), 505, /unsupported HTTP version/],
    ["asterisk-form target", requestText({ target: "*" }), 400, /request target/],
    ["authority-form target", requestText({ target: "example.com:443" }), 400, /request target/],
    ["fragment in the target", requestText({ target: "/chat#x" }), 400, /request target/],
    ["ftp URI", requestText({ target: "ftp://example.com/chat" }), 400, /request target/],
    [
      "absolute URI without authority",
      requestText({ target: "http:///chat" }),
      400,
      /request target/,
    ],
    ["missing Host", requestText({ fields: fieldsWith(["Host"]) }), 400, /missing Host/],
    [
      "two Host fields",
      requestText({ fields: [...BASE_FIELDS, ["Host", "other.example"]] }),
      400,
      /multiple Host/,
    ],
    [
      "empty Host",
      requestText({ fields: fieldsWith(["Host"], [["Host", ""]]) }),
      400,
      /invalid Host/,
    ],
    [
      "Host with a space",
      requestText({ fields: fieldsWith(["Host"], [["Host", "a b"]]) }),
      400,
      /invalid Host/,
    ],
    [
      "no Upgrade header at all",
      requestText({ fields: fieldsWith(["Upgrade"]) }),
      426,
      /missing Upgrade/,
      [["Upgrade", "websocket"]],
    ],
    ["a plain HTTP GET", "GET / HTTP/1.1\r\nHost: a\r\n\r\n", 426, /missing Upgrade/, [[
      "Upgrade",
      "websocket",
    ]]],
    [
      "Upgrade: h2c",
      requestText({ fields: fieldsWith(["Upgrade"], [["Upgrade", "h2c"]]) }),
      400,
      /Upgrade header does not include websocket/,
    ],
    [
      "Upgrade: websocket2",
      requestText({ fields: fieldsWith(["Upgrade"], [["Upgrade", "websocket2"]]) }),
      400,
      /Upgrade/,
    ],
    [
      "missing Connection",
      requestText({ fields: fieldsWith(["Connection"]) }),
      400,
      /missing Connection/,
    ],
    [
      "Connection: keep-alive",
      requestText({ fields: fieldsWith(["Connection"], [["Connection", "keep-alive"]]) }),
      400,
      /Connection header does not include Upgrade/,
    ],
    [
      "Connection: upgraded",
      requestText({ fields: fieldsWith(["Connection"], [["Connection", "upgraded"]]) }),
      400,
      /Connection/,
    ],
    [
      "missing Sec-WebSocket-Version",
      requestText({ fields: fieldsWith(["Sec-WebSocket-Version"]) }),
      426,
      /missing Sec-WebSocket-Version/,
      [["Sec-WebSocket-Version", "13"]],
    ],
    [
      "Sec-WebSocket-Version: 8",
      requestText({
        fields: fieldsWith(["Sec-WebSocket-Version"], [["Sec-WebSocket-Version", "8"]]),
      }),
      426,
      /unsupported Sec-WebSocket-Version "8"/,
      [["Sec-WebSocket-Version", "13"]],
    ],
    [
      "two versions",
      requestText({ fields: [...BASE_FIELDS, ["Sec-WebSocket-Version", "8"]] }),
      426,
      /unsupported/,
      [["Sec-WebSocket-Version", "13"]],
    ],
    [
      "missing Sec-WebSocket-Key",
      requestText({ fields: fieldsWith(["Sec-WebSocket-Key"]) }),
      400,
      /missing Sec-WebSocket-Key/,
    ],
    [
      "two Sec-WebSocket-Key fields",
      requestText({ fields: [...BASE_FIELDS, ["Sec-WebSocket-Key", KEY]] }),
      400,
      /multiple Sec-WebSocket-Key/,
    ],
    [
      "key of 15 bytes",
      requestText({
        fields: fieldsWith(["Sec-WebSocket-Key"], [["Sec-WebSocket-Key", "AAAAAAAAAAAAAAAAAAAA"]]),
      }),
      400,
      /16 bytes/,
    ],
    [
      "key of 17 bytes",
      requestText({
        fields: fieldsWith(["Sec-WebSocket-Key"], [[
          "Sec-WebSocket-Key",
          "AAAAAAAAAAAAAAAAAAAAAAA=",
        ]]),
      }),
      400,
      /16 bytes/,
    ],
    [
      "key not base64",
      requestText({
        fields: fieldsWith(["Sec-WebSocket-Key"], [[
          "Sec-WebSocket-Key",
          "not base64 at all!!!!!==",
        ]]),
      }),
      400,
      /16 bytes/,
    ],
    [
      "key without padding",
      requestText({
        fields: fieldsWith(["Sec-WebSocket-Key"], [[
          "Sec-WebSocket-Key",
          "dGhlIHNhbXBsZSBub25jZQ",
        ]]),
      }),
      400,
      /16 bytes/,
    ],
    [
      "empty key",
      requestText({ fields: fieldsWith(["Sec-WebSocket-Key"], [["Sec-WebSocket-Key", ""]]) }),
      400,
      /16 bytes/,
    ],
    [
      "two Origin fields",
      requestText({ fields: [...BASE_FIELDS, ["Origin", "http://a"], ["Origin", "http://b"]] }),
      400,
      /multiple Origin/,
    ],
    [
      "subprotocol with a space",
      requestText({ fields: [...BASE_FIELDS, ["Sec-WebSocket-Protocol", "chat superchat"]] }),
      400,
      /Sec-WebSocket-Protocol/,
    ],
    [
      "subprotocol with a slash",
      requestText({ fields: [...BASE_FIELDS, ["Sec-WebSocket-Protocol", "chat/1"]] }),
      400,
      /Sec-WebSocket-Protocol/,
    ],
    [
      "duplicate subprotocol",
      requestText({
        fields: [...BASE_FIELDS, ["Sec-WebSocket-Protocol", "chat"], [
          "Sec-WebSocket-Protocol",
          "chat",
        ]],
      }),
      400,
      /duplicate subprotocol "chat"/,
    ],
    [
      "malformed extensions",
      requestText({ fields: [...BASE_FIELDS, ["Sec-WebSocket-Extensions", 'x; a="1']] }),
      400,
      /invalid Sec-WebSocket-Extensions: unclosed quoted string/,
    ],
    [
      "quoted non-token extension value",
      requestText({ fields: [...BASE_FIELDS, ["Sec-WebSocket-Extensions", 'x; a="1 2"']] }),
      400,
      /not a token/,
    ],
    ["bare LF head", requestText().replaceAll("\r\n", "\n"), 400, /CRLF/],
    [
      "obs-fold",
      requestText({ fields: [...BASE_FIELDS, ["X-A", "a\r\n folded"]] }),
      400,
      /folding/,
    ],
  ];
  for (const [why, input, status, reason, headers] of cases) {
    test(`${why} → ${status}`, () => refused(input, status, reason, headers));
  }
});

describe("ServerHandshakeParser: limits", () => {
  test("request line over maxLineLength → 414", () => {
    refused(requestText({ target: `/${"a".repeat(9000)}` }), 414, /request line too long/);
  });

  test("one header line over maxLineLength → 431", () => {
    refused(
      requestText({ fields: [...BASE_FIELDS, ["Cookie", "c".repeat(9000)]] }),
      431,
      /header line too long/,
    );
  });

  test("header count over maxHeaders → 431", () => {
    const fields: Fields = [
      ...BASE_FIELDS,
      ...Array.from({ length: 96 }, (_, i): [string, string] => [`X-${i}`, "1"]),
    ];
    accepted(requestText({ fields: fields.slice(0, 100) }));
    refused(requestText({ fields }), 431, /too many header fields/);
  });

  test("10,000 headers → 431", () => {
    refused(
      requestText({
        fields: [
          ...BASE_FIELDS,
          ...Array.from({ length: 10_000 }, (): [string, string] => ["X", "y"]),
        ],
      }),
      431,
      /too many/,
    );
  });

  test("10,000 headers without an Upgrade header, limits raised → 426", () => {
    const many = requestText({
      fields: [
        ...fieldsWith(["Upgrade"]),
        ...Array.from({ length: 10_000 }, (): [string, string] => ["X", "y"]),
      ],
    });
    const result = serverParse(many, { maxHeaders: 20_000, maxHeadSize: 1_000_000 });
    assert.ok(result && !result.ok);
    assert.equal(result.status, 426);
  });

  test("total head over maxHeadSize → 431", () => {
    const fields: Fields = [
      ...BASE_FIELDS,
      ...Array.from({ length: 20 }, (_, i): [string, string] => [`X-${i}`, "v".repeat(1000)]),
    ];
    refused(requestText({ fields }), 431, /head too large/);
  });

  test("custom limits are honoured", () => {
    const input = requestText();
    const result = serverParse(input, { maxHeadSize: input.length - 1 });
    assert.ok(result && !result.ok);
    assert.equal(result.status, 431);
    assert.ok(serverParse(input, { maxHeadSize: input.length })?.ok);
  });
});

// ---------------------------------------------------------------------------
// Server: writing the response
// ---------------------------------------------------------------------------

function sampleRequest(extra: Fields = []): UpgradeRequest {
  return accepted(
    requestText({
      fields: [...BASE_FIELDS, ["Sec-WebSocket-Protocol", "chat, superchat"], ...extra],
    }),
  ).request;
}

describe("buildAcceptResponse (RFC 6455 §4.2.2)", () => {
  test("the RFC 6455 §1.3 sample response", () => {
    const response = buildAcceptResponse(sampleRequest(), { protocol: "chat" });
    assert.equal(
      decodeLatin1(response),
      "HTTP/1.1 101 Switching Protocols\r\n" +
        "Upgrade: websocket\r\n" +
        "Connection: Upgrade\r\n" +
        `Sec-WebSocket-Accept: ${ACCEPT}\r\n` +
        "Sec-WebSocket-Protocol: chat\r\n" +
        "\r\n",
    );
  });

  test("no protocol, extensions and extra headers", () => {
    const response = buildAcceptResponse(sampleRequest(), {
      protocol: "",
      extensions: "permessage-deflate; server_no_context_takeover",
      headers: [["Set-Cookie", "a=1"], ["Set-Cookie", "b=2"]],
    });
    assert.equal(
      decodeLatin1(response),
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
        `Sec-WebSocket-Accept: ${ACCEPT}\r\n` +
        "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover\r\n" +
        "Set-Cookie: a=1\r\nSet-Cookie: b=2\r\n\r\n",
    );
  });

  test("headers may be a HeaderList or a record", () => {
    const fromList = decodeLatin1(
      buildAcceptResponse(sampleRequest(), { headers: new HeaderList([["X-A", "1"]]) }),
    );
    const fromRecord = decodeLatin1(buildAcceptResponse(sampleRequest(), { headers: { "X-A": "1" } }));
    assert.equal(fromList, fromRecord);
    assert.match(fromList, /\r\nX-A: 1\r\n\r\n$/);
  });

  test("a subprotocol the client did not offer throws ERR_INVALID_PROTOCOL", () => {
    throwsCode(
      () => buildAcceptResponse(sampleRequest(), { protocol: "other" }),
      "ERR_INVALID_PROTOCOL",
    );
    throwsCode(
      () => buildAcceptResponse(sampleRequest(), { protocol: "Chat" }),
      "ERR_INVALID_PROTOCOL",
    );
  });

  test("headers with CR, LF or NUL throw ERR_INVALID_HEADER", () => {
    for (
      const headers of [
        [["X-A", "1\r\nInjected: yes"]],
        [["X-A", "1\n"]],
        [["X-A", "1\u0000"]],
        [["X A", "1"]],
        [["X-A\r\n", "1"]],
      ] as Fields[]
    ) {
      throwsCode(() => buildAcceptResponse(sampleRequest(), { headers }), "ERR_INVALID_HEADER");
    }
  });

  test("extensions with CRLF or bad syntax throw ERR_INVALID_HEADER", () => {
    throwsCode(
      () => buildAcceptResponse(sampleRequest(), { extensions: "x\r\nInjected: yes" }),
      "ERR_INVALID_HEADER",
    );
    throwsCode(
      () => buildAcceptResponse(sampleRequest(), { extensions: 'x; a="' }),
      "ERR_INVALID_HEADER",
    );
  });

  test("headers the handshake owns cannot be overridden", () => {
    for (
      const name of [
        "Connection",
        "upgrade",
        "Sec-WebSocket-Accept",
        "Sec-WebSocket-Protocol",
        "Content-Length",
      ]
    ) {
      throwsCode(
        () => buildAcceptResponse(sampleRequest(), { headers: [[name, "x"]] }),
        "ERR_INVALID_HEADER",
      );
    }
  });
});

describe("buildRejectResponse", () => {
  test("text body: Content-Length in bytes, Content-Type, Connection: close", () => {
    assert.equal(
      decodeLatin1(buildRejectResponse({ status: 403, body: "d\u00e9ni" })),
      "HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Length: 5\r\n" +
        "Content-Type: text/plain; charset=utf-8\r\n\r\nd\u00c3\u00a9ni",
    );
  });

  test("bytes body, custom status text and headers", () => {
    const response = buildRejectResponse({
      status: 401,
      statusText: "Who Are You",
      headers: {
        "WWW-Authenticate": 'Basic realm="ws"',
        "Content-Type": "application/octet-stream",
      },
      body: Uint8Array.of(1, 2, 3),
    });
    assert.deepEqual(
      response,
      concatBytes([
        latin1(
          "HTTP/1.1 401 Who Are You\r\nConnection: close\r\nContent-Length: 3\r\n" +
            'WWW-Authenticate: Basic realm="ws"\r\nContent-Type: application/octet-stream\r\n\r\n',
        ),
        Uint8Array.of(1, 2, 3),
      ]),
    );
  });

  test("a string body keeps a caller's Content-Type", () => {
    const response = decodeLatin1(
      buildRejectResponse({
        status: 400,
        headers: [["content-type", "text/html"]],
        body: "<b>no</b>",
      }),
    );
    assert.doesNotMatch(response, /text\/plain/);
    assert.match(response, /content-type: text\/html\r\n/);
  });

  test("no body, unknown status: empty reason phrase, Content-Length 0", () => {
    assert.equal(
      decodeLatin1(buildRejectResponse({ status: 499 })),
      "HTTP/1.1 499 \r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
    );
  });

  test("a server refusal, written and then read by the client", () => {
    const refusal = serverParse(requestText({ fields: fieldsWith(["Upgrade"]) }));
    assert.ok(refusal && !refusal.ok);
    const response = buildRejectResponse({
      status: refusal.status,
      headers: refusal.headers,
      body: refusal.reason,
    });
    const result = clientParser().push(response);
    assert.ok(result && !result.ok);
    assert.equal(result.status, 426);
    assert.equal(result.statusText, "Upgrade Required");
    assert.equal(result.headers?.get("upgrade"), "websocket");
    assert.equal(new TextDecoder().decode(result.body), "missing Upgrade header");
  });

  test("204 has no Content-Length and cannot carry a body", () => {
    assert.equal(
      decodeLatin1(buildRejectResponse({ status: 204 })),
      "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n",
    );
    throwsCode(() => buildRejectResponse({ status: 204, body: "x" }), "ERR_INVALID_ARGUMENT");
  });

  test("status must be an integer in 200..599", () => {
    for (const status of [101, 100, 199, 600, 99, 0, -1, 200.5, Number.NaN]) {
      throwsCode(() => buildRejectResponse({ status }), "ERR_INVALID_ARGUMENT");
    }
  });

  test("status text with CR/LF throws, headers with CR/LF throw", () => {
    throwsCode(
      () => buildRejectResponse({ status: 400, statusText: "Bad\r\nX-Injected: 1" }),
      "ERR_INVALID_ARGUMENT",
    );
    throwsCode(
      () => buildRejectResponse({ status: 400, headers: [["X", "a\rb"]] }),
      "ERR_INVALID_HEADER",
    );
    throwsCode(
      () => buildRejectResponse({ status: 400, headers: [["Content-Length", "0"]] }),
      "ERR_INVALID_HEADER",
    );
  });
});

// ---------------------------------------------------------------------------
// Client: writing the request
// ---------------------------------------------------------------------------

function clientRequest(overrides: Partial<ClientRequestOptions> = {}): Uint8Array {
  return buildClientRequest({ host: "server.example.com", path: "/chat", key: KEY, ...overrides });
}

describe("buildClientRequest (RFC 6455 §4.1)", () => {
  test("the RFC 6455 §1.2 sample request", () => {
    const request = clientRequest({
      protocols: ["chat", "superchat"],
      origin: "http://example.com",
    });
    assert.equal(
      decodeLatin1(request),
      "GET /chat HTTP/1.1\r\n" +
        "Host: server.example.com\r\n" +
        "Upgrade: websocket\r\n" +
        "Connection: Upgrade\r\n" +
        `Sec-WebSocket-Key: ${KEY}\r\n` +
        "Sec-WebSocket-Version: 13\r\n" +
        "Sec-WebSocket-Protocol: chat, superchat\r\n" +
        "Origin: http://example.com\r\n" +
        "\r\n",
    );
  });

  test("minimal request, extensions, query and extra headers", () => {
    assert.equal(
      decodeLatin1(
        clientRequest({
          host: "[::1]:8080",
          path: "/x?y=1",
          extensions: "permessage-deflate; client_max_window_bits",
          headers: { Authorization: "Bearer t" },
        }),
      ),
      "GET /x?y=1 HTTP/1.1\r\nHost: [::1]:8080\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
        `Sec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 13\r\n` +
        "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\nAuthorization: Bearer t\r\n\r\n",
    );
  });

  test("the server parser accepts what the client writes", () => {
    const { request } = accepted(
      clientRequest({
        protocols: ["a", "b"],
        extensions: "x; p=1",
        origin: "https://o.example",
        headers: [["Cookie", "c=1"]],
      }),
    );
    assert.deepEqual(request.protocols, ["a", "b"]);
    assert.deepEqual(request.extensions, [{ name: "x", params: [{ name: "p", value: "1" }] }]);
    assert.equal(request.origin, "https://o.example");
    assert.equal(request.headers.get("cookie"), "c=1");
  });

  test("subprotocols must be unique tokens: ERR_INVALID_PROTOCOL", () => {
    for (
      const protocols of [["a b"], ["chat\r\n"], ["chat\n"], ["chat\u0000"], [""], ["a,b"], [
        "chat",
        "chat",
      ], ["caf\u00e9"]]
    ) {
      throwsCode(() => clientRequest({ protocols }), "ERR_INVALID_PROTOCOL");
    }
  });

  test("Origin with CR, LF or NUL: ERR_INVALID_HEADER", () => {
    for (const origin of ["http://a\r\nX: 1", "http://a\n", "http://a\r", "http://a\u0000"]) {
      throwsCode(() => clientRequest({ origin }), "ERR_INVALID_HEADER");
    }
  });

  test("extra header names and values with CR, LF or NUL: ERR_INVALID_HEADER", () => {
    for (
      const headers of [[["X\r\nY", "1"]], [["X Y", "1"]], [["X", "1\r\n"]], [["X", "\u0000"]], [[
        "",
        "1",
      ]]] as Fields[]
    ) {
      throwsCode(() => clientRequest({ headers }), "ERR_INVALID_HEADER");
    }
  });

  test("Host must be non-empty visible ASCII: ERR_INVALID_HEADER", () => {
    for (const host of ["", "a b", "a\r\nX: 1", "a\u0000", "caf\u00e9.example"]) {
      throwsCode(() => clientRequest({ host }), "ERR_INVALID_HEADER");
    }
  });

  test("path must be an origin-form target: ERR_INVALID_ARGUMENT", () => {
    for (const path of ["", "chat", "/a b", "/a\r\nX: 1", "/a#frag", "/caf\u00e9"]) {
      throwsCode(() => clientRequest({ path }), "ERR_INVALID_ARGUMENT");
    }
  });

  test("key must be 16 bytes in base64: ERR_INVALID_ARGUMENT", () => {
    for (const key of ["", "short", "AAAAAAAAAAAAAAAAAAAA", `${KEY}\r\n`]) {
      throwsCode(() => clientRequest({ key }), "ERR_INVALID_ARGUMENT");
    }
  });

  test("handshake headers cannot be overridden; Origin only once", () => {
    for (
      const name of [
        "Host",
        "sec-websocket-key",
        "Sec-WebSocket-Version",
        "Upgrade",
        "Connection",
        "Sec-WebSocket-Protocol",
      ]
    ) {
      throwsCode(() => clientRequest({ headers: [[name, "x"]] }), "ERR_INVALID_HEADER");
    }
    throwsCode(
      () => clientRequest({ origin: "http://a", headers: [["Origin", "http://b"]] }),
      "ERR_INVALID_HEADER",
    );
    assert.match(
      decodeLatin1(clientRequest({ headers: [["Origin", "http://b"]] })),
      /\r\nOrigin: http:\/\/b\r\n/,
    );
  });

  test("an extension offer with CRLF or bad syntax: ERR_INVALID_HEADER", () => {
    throwsCode(() => clientRequest({ extensions: "x\r\nInjected: 1" }), "ERR_INVALID_HEADER");
    throwsCode(() => clientRequest({ extensions: "x; a=" }), "ERR_INVALID_HEADER");
  });
});

// ---------------------------------------------------------------------------
// Client: reading the response
// ---------------------------------------------------------------------------

describe("ClientHandshakeParser: 101 responses (RFC 6455 §4.1)", () => {
  test("accepts the server's own response, with protocol, extensions and rest", () => {
    const request = accepted(
      clientRequest({ protocols: ["chat", "superchat"], extensions: "permessage-deflate" }),
    ).request;
    const response = buildAcceptResponse(request, {
      protocol: "superchat",
      extensions: "permessage-deflate; server_no_context_takeover",
    });
    const result = clientParse(concatBytes([response, FRAME]), ["chat", "superchat"]);
    assert.ok(result?.ok, JSON.stringify(result));
    assert.equal(result.protocol, "superchat");
    assert.deepEqual(result.extensions, [{
      name: "permessage-deflate",
      params: [{ name: "server_no_context_takeover", value: true }],
    }]);
    assert.equal(result.headers.get("sec-websocket-accept"), ACCEPT);
    assert.deepEqual(result.rest, FRAME);
  });

  test("no subprotocol → protocol ''", () => {
    const result = clientParse(responseText("101 Switching Protocols", SWITCH_FIELDS), ["chat"]);
    assert.ok(result?.ok);
    assert.equal(result.protocol, "");
    assert.deepEqual(result.extensions, []);
  });

  test("case-insensitive Upgrade and Connection tokens", () => {
    const fields: Fields = [["Upgrade", "WebSocket"], ["Connection", "keep-alive, UPGRADE"], [
      "Sec-WebSocket-Accept",
      ACCEPT,
    ]];
    assert.ok(clientParse(responseText("101 Switching Protocols", fields))?.ok);
  });

  test("one byte at a time and at every split point", () => {
    const input = concatBytes([
      latin1(
        responseText("101 Switching Protocols", [...SWITCH_FIELDS, [
          "Sec-WebSocket-Protocol",
          "chat",
        ]]),
      ),
      FRAME,
    ]);
    const headLength = input.length - FRAME.length;
    for (let split = 0; split < headLength; split++) {
      const parser = clientParser(["chat"]);
      assert.equal(parser.push(input.subarray(0, split)), undefined);
      const result = parser.push(input.subarray(split));
      assert.ok(result?.ok, `split ${split}`);
      assert.equal(result.protocol, "chat");
      assert.deepEqual(result.rest, FRAME);
    }
    const parser = clientParser(["chat"]);
    for (let i = 0; i < headLength - 1; i++) {
      assert.equal(parser.push(input.subarray(i, i + 1)), undefined);
    }
    const result = parser.push(input.subarray(headLength - 1, headLength));
    assert.ok(result?.ok);
    assert.equal(result.rest.length, 0);
  });

  test("interim 1xx responses are skipped (RFC 7231 §6.2)", () => {
    const input = responseText("100 Continue", []) + responseText("102 Processing", [["X", "1"]]) +
      responseText("101 Switching Protocols", SWITCH_FIELDS);
    const result = clientParse(concatBytes([latin1(input), FRAME]));
    assert.ok(result?.ok);
    assert.deepEqual(result.rest, FRAME);
  });

  test("wrong Sec-WebSocket-Accept", () => {
    const fields: Fields = [["Upgrade", "websocket"], ["Connection", "Upgrade"], [
      "Sec-WebSocket-Accept",
      acceptKey("AAAAAAAAAAAAAAAAAAAAAA=="),
    ]];
    const failure = clientFailure(
      responseText("101 Switching Protocols", fields),
      /Sec-WebSocket-Accept does not match/,
    );
    assert.equal(failure.status, 101);
    assert.equal(failure.headers?.get("upgrade"), "websocket");
  });

  const failures: [string, Fields, RegExp, string[]?][] = [
    [
      "missing Sec-WebSocket-Accept",
      [["Upgrade", "websocket"], ["Connection", "Upgrade"]],
      /missing Sec-WebSocket-Accept/,
    ],
    [
      "two Sec-WebSocket-Accept fields",
      [...SWITCH_FIELDS, ["Sec-WebSocket-Accept", ACCEPT]],
      /Sec-WebSocket-Accept/,
    ],
    ["accept of the key itself", [["Upgrade", "websocket"], ["Connection", "Upgrade"], [
      "Sec-WebSocket-Accept",
      KEY,
    ]], /Sec-WebSocket-Accept/],
    [
      "missing Upgrade",
      [["Connection", "Upgrade"], ["Sec-WebSocket-Accept", ACCEPT]],
      /missing Upgrade/,
    ],
    ["Upgrade: h2c", [["Upgrade", "h2c"], ["Connection", "Upgrade"], [
      "Sec-WebSocket-Accept",
      ACCEPT,
    ]], /Upgrade header is not websocket/],
    ["Upgrade: websocket, h2c", [["Upgrade", "websocket, h2c"], ["Connection", "Upgrade"], [
      "Sec-WebSocket-Accept",
      ACCEPT,
    ]], /Upgrade header is not websocket/],
    [
      "missing Connection",
      [["Upgrade", "websocket"], ["Sec-WebSocket-Accept", ACCEPT]],
      /Connection/,
    ],
    ["Connection: close", [["Upgrade", "websocket"], ["Connection", "close"], [
      "Sec-WebSocket-Accept",
      ACCEPT,
    ]], /Connection/],
    [
      "a subprotocol that was not offered",
      [...SWITCH_FIELDS, ["Sec-WebSocket-Protocol", "other"]],
      /subprotocol/,
      ["chat"],
    ],
    [
      "a subprotocol when none was offered",
      [...SWITCH_FIELDS, ["Sec-WebSocket-Protocol", "chat"]],
      /subprotocol/,
      [],
    ],
    [
      "two subprotocols in one field",
      [...SWITCH_FIELDS, ["Sec-WebSocket-Protocol", "chat, superchat"]],
      /subprotocol/,
      ["chat", "superchat"],
    ],
    [
      "two subprotocol fields",
      [...SWITCH_FIELDS, ["Sec-WebSocket-Protocol", "chat"], ["Sec-WebSocket-Protocol", "chat"]],
      /subprotocol/,
      ["chat"],
    ],
    ["an empty subprotocol", [...SWITCH_FIELDS, ["Sec-WebSocket-Protocol", ""]], /subprotocol/, [
      "chat",
    ]],
    ["a malformed extensions header", [...SWITCH_FIELDS, [
      "Sec-WebSocket-Extensions",
      "permessage-deflate; x=",
    ]], /invalid Sec-WebSocket-Extensions/],
  ];
  for (const [why, fields, reason, protocols] of failures) {
    test(`fails on ${why}`, () => {
      const failure = clientFailure(
        responseText("101 Switching Protocols", fields),
        reason,
        protocols,
      );
      assert.equal(failure.status, 101);
    });
  }

  test("extensions that were not offered are returned for the connection to judge", () => {
    const result = clientParse(
      responseText("101 Switching Protocols", [...SWITCH_FIELDS, [
        "Sec-WebSocket-Extensions",
        "x-unoffered",
      ]]),
    );
    assert.ok(result?.ok);
    assert.deepEqual(result.extensions, [{ name: "x-unoffered", params: [] }]);
  });

  test("malformed or oversized response heads", () => {
    assert.match(
      clientFailure(
        "HTTP/1.1 101 Switching Protocols\nUpgrade: websocket\n\n",
        /invalid HTTP response/,
      ).reason,
      /CRLF/,
    );
    assert.equal(
      clientFailure(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade : websocket\r\n\r\n",
        /invalid HTTP response/,
      ).status,
      undefined,
    );
    clientFailure("SSH-2.0-OpenSSH_9.0\r\n", /invalid HTTP response/);
    const huge = responseText("101 Switching Protocols", [...SWITCH_FIELDS, [
      "X",
      "x".repeat(100),
    ]]);
    const result = clientParser([], undefined, { maxLineLength: 50 }).push(latin1(huge));
    assert.ok(result && !result.ok);
    assert.match(result.reason, /header line too long/);
  });
});

describe("ClientHandshakeParser: refusals and their bodies", () => {
  function readAll(
    parser: ClientHandshakeParser,
    input: string | Uint8Array,
  ): ClientHandshakeResult | undefined {
    return parser.push(typeof input === "string" ? latin1(input) : input);
  }

  function bodyText(result: ClientHandshakeResult | undefined): string {
    assert.ok(result && !result.ok);
    assert.ok(result.body, "expected a body");
    return new TextDecoder().decode(result.body);
  }

  test("non-101 with a Content-Length body", () => {
    const result = clientParse(
      responseText("403 Forbidden", [["Content-Length", "9"], ["X-Reason", "origin"]], "forbidden"),
    );
    assert.ok(result && !result.ok);
    assert.equal(result.status, 403);
    assert.equal(result.statusText, "Forbidden");
    assert.equal(result.headers?.get("x-reason"), "origin");
    assert.match(result.reason, /403 Forbidden/);
    assert.equal(bodyText(result), "forbidden");
  });

  test("Content-Length body over several pushes; bytes beyond it are ignored", () => {
    const parser = clientParser();
    assert.equal(
      readAll(parser, responseText("404 Not Found", [["Content-Length", "10"]], "0123")),
      undefined,
    );
    assert.equal(readAll(parser, "45"), undefined);
    assert.equal(bodyText(readAll(parser, "6789 and more")), "0123456789");
  });

  test("Content-Length: 0 and 204 finish at once", () => {
    assert.equal(
      bodyText(clientParse(responseText("400 Bad Request", [["Content-Length", "0"]]))),
      "",
    );
    assert.equal(bodyText(clientParse(responseText("204 No Content", []))), "");
  });

  test("a body larger than maxBodySize is truncated without waiting for the rest", () => {
    const parser = clientParser([], 5);
    const result = readAll(
      parser,
      responseText("500 Internal Server Error", [["Content-Length", "1000000"]], "0123456789"),
    );
    assert.equal(bodyText(result), "01234");
    assert.equal(result?.ok, false);
  });

  test("chunked body (Transfer-Encoding wins over Content-Length)", () => {
    const body = "5\r\nHello\r\n7;ext=1\r\n, world\r\n0\r\n\r\n";
    const input = responseText("503 Service Unavailable", [["Transfer-Encoding", "chunked"], [
      "Content-Length",
      "3",
    ]], body);
    assert.equal(bodyText(clientParse(input)), "Hello, world");
  });

  test("chunked body one byte at a time", () => {
    const input = latin1(
      responseText(
        "401 Unauthorized",
        [["Transfer-Encoding", "chunked"]],
        "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
      ),
    );
    const parser = clientParser();
    let result: ClientHandshakeResult | undefined;
    let at = -1;
    for (let i = 0; i < input.length && result === undefined; i++) {
      result = parser.push(input.subarray(i, i + 1));
      at = i;
    }
    assert.equal(bodyText(result), "abcde");
    assert.equal(at, input.length - 3, "the result comes right after the last chunk's size line");
  });

  test("a malformed chunked body still reports the refusal", () => {
    const result = clientParse(
      responseText("403 Forbidden", [["Transfer-Encoding", "chunked"]], "zz\r\n"),
    );
    assert.ok(result && !result.ok);
    assert.equal(result.status, 403);
    assert.match(result.reason, /invalid chunk size/);
  });

  test("body read until EOF", () => {
    const parser = clientParser();
    assert.equal(
      readAll(parser, responseText("302 Found", [["Location", "/elsewhere"]], "moved ")),
      undefined,
    );
    assert.equal(readAll(parser, "away"), undefined);
    const result = parser.end();
    assert.equal(bodyText(result), "moved away");
    assert.ok(!result.ok);
    assert.equal(result.status, 302);
    assert.equal(result.headers?.get("location"), "/elsewhere");
  });

  test("until-EOF body stops at maxBodySize", () => {
    const parser = clientParser([], 4);
    assert.equal(
      bodyText(readAll(parser, responseText("400 Bad Request", [], "abcdefgh"))),
      "abcd",
    );
  });

  test("EOF in the middle of a Content-Length body reports the partial body", () => {
    const parser = clientParser();
    assert.equal(
      readAll(parser, responseText("403 Forbidden", [["Content-Length", "100"]], "part")),
      undefined,
    );
    const result = parser.end();
    assert.ok(!result.ok);
    assert.equal(result.status, 403);
    assert.match(result.reason, /closed before the response body was complete/);
    assert.equal(bodyText(result), "part");
  });

  test("an invalid Content-Length is reported with the status", () => {
    const result = clientParse(
      responseText("403 Forbidden", [["Content-Length", "12abc"]], "body"),
    );
    assert.ok(result && !result.ok);
    assert.equal(result.status, 403);
    assert.match(result.reason, /invalid Content-Length/);
    assert.equal(bodyText(result), "");
  });

  test("EOF mid-head and before any byte", () => {
    const parser = clientParser();
    assert.equal(readAll(parser, "HTTP/1.1 101 Switching Protocols\r\nUpgr"), undefined);
    const result = parser.end();
    assert.deepEqual(result, { ok: false, reason: "connection closed during handshake" });
    assert.equal(clientParser().end().ok, false);
  });

  test("after a result, push and end throw ERR_INVALID_STATE", () => {
    const parser = clientParser();
    assert.ok(parser.push(latin1(responseText("101 Switching Protocols", SWITCH_FIELDS))));
    throwsCode(() => parser.push(FRAME), "ERR_INVALID_STATE");
    throwsCode(() => parser.end(), "ERR_INVALID_STATE");
  });

  test("constructor checks its options", () => {
    throwsCode(() => new ClientHandshakeParser({ key: "nope" }), "ERR_INVALID_ARGUMENT");
    throwsCode(
      () => new ClientHandshakeParser({ key: KEY, maxBodySize: -1 }),
      "ERR_INVALID_ARGUMENT",
    );
    throwsCode(
      () => new ClientHandshakeParser({ key: KEY, limits: { maxHeaders: 0 } }),
      "ERR_INVALID_ARGUMENT",
    );
  });
});
