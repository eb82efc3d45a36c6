import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { WebSocketError } from "../../core/errors.ts";
import {
  type ExtensionOffer,
  formatExtensions,
  parseExtensions,
} from "../../core/extension-header.ts";

function offers(header: string): ExtensionOffer[] {
  const result = parseExtensions(header);
  assert.ok(
    result.ok,
    `expected ${JSON.stringify(header)} to parse, got ${JSON.stringify(result)}`,
  );
  return result.offers;
}

function reasonFor(header: string): string {
  const result = parseExtensions(header);
  assert.equal(result.ok, false, `expected ${JSON.stringify(header)} to be rejected`);
  return result.ok ? "" : result.reason;
}

describe("parseExtensions", () => {
  test("empty and whitespace-only headers give zero offers", () => {
    assert.deepEqual(offers(""), []);
    assert.deepEqual(offers("  \t "), []);
  });

  test("a single extension without parameters", () => {
    assert.deepEqual(offers("permessage-deflate"), [{ name: "permessage-deflate", params: [] }]);
  });

  test("RFC 7692 style offers with several alternatives", () => {
    assert.deepEqual(
      offers(
        "permessage-deflate; client_max_window_bits; server_max_window_bits=10, permessage-deflate",
      ),
      [
        {
          name: "permessage-deflate",
          params: [
            { name: "client_max_window_bits", value: true },
            { name: "server_max_window_bits", value: "10" },
          ],
        },
        { name: "permessage-deflate", params: [] },
      ],
    );
  });

  test("quoted-string values arrive unquoted, escapes resolved", () => {
    assert.deepEqual(offers('x; a="10"; b="t\\o\\k"'), [
      {
        name: "x",
        params: [
          { name: "a", value: "10" },
          { name: "b", value: "tok" },
        ],
      },
    ]);
  });

  test("optional whitespace around , ; and =", () => {
    assert.deepEqual(offers(' a ;\tp = 1 ; q= "2" ,\tb ; r '), [
      {
        name: "a",
        params: [
          { name: "p", value: "1" },
          { name: "q", value: "2" },
        ],
      },
      { name: "b", params: [{ name: "r", value: true }] },
    ]);
  });

  test("empty list elements are ignored (RFC 7230 §7)", () => {
    assert.deepEqual(offers(", a,, ,b ,"), [
      { name: "a", params: [] },
      { name: "b", params: [] },
    ]);
  });

  test("duplicate parameters are kept in order", () => {
    assert.deepEqual(offers("x; p=1; p=2; p"), [
      {
        name: "x",
        params: [
          { name: "p", value: "1" },
          { name: "p", value: "2" },
          { name: "p", value: true },
        ],
      },
    ]);
  });

  test("names like constructor, __proto__ and toString are plain data", () => {
    const parsed = offers(
      "__proto__; constructor=1; __proto__=2; toString, constructor; hasOwnProperty",
    );
    assert.deepEqual(parsed, [
      {
        name: "__proto__",
        params: [
          { name: "constructor", value: "1" },
          { name: "__proto__", value: "2" },
          { name: "toString", value: true },
        ],
      },
      { name: "constructor", params: [{ name: "hasOwnProperty", value: true }] },
    ]);
    assert.equal(Object.getPrototypeOf(parsed[0]), Object.prototype);
    assert.equal(Object.getPrototypeOf(parsed[0]!.params[1]), Object.prototype);
  });

  const invalid: [string, string, RegExp][] = [
    ['x; a="10', "unclosed quoted string", /unclosed/],
    ['x; a="', "unclosed empty quoted string", /unclosed/],
    ['x; a="1 0"', "quoted value that is not a token", /not a token/],
    ['x; a=""', "empty quoted value", /not a token/],
    ['x; a="a,b"', "quoted value with a separator", /not a token/],
    ["x; a=", "missing value after =", /expected value/],
    ["x; a=1 0", "two tokens as a value", /expected ","/],
    ["x; =1", "missing parameter name", /expected parameter name/],
    ["x;", "trailing semicolon", /expected parameter name/],
    ["; a", "parameters without an extension", /expected extension name/],
    ["x y", "two names without a comma", /expected ","/],
    ["x/1", "a separator in a name", /expected ","/],
    ['"x"', "a quoted extension name", /expected extension name/],
    ['x; a="\u0001"', "a control character inside quotes", /invalid character/],
    ["x; a=\u00e9", "non-token character", /expected value/],
    ["x\r\n", "CR LF", /expected ","/],
  ];
  for (const [header, why, reason] of invalid) {
    test(`rejects ${why}: ${JSON.stringify(header)}`, () => {
      assert.match(reasonFor(header), reason);
    });
  }

  test("reasons say where the problem is", () => {
    assert.match(reasonFor("a, b c"), /position 5/);
  });

  test("long inputs finish with the right answer", () => {
    const params = "; p=1".repeat(50_000);
    assert.equal(offers(`x${params}`)[0]!.params.length, 50_000);
    assert.equal(offers(`${" ".repeat(100_000)}x${" ".repeat(100_000)}`).length, 1);
    assert.equal(offers(",".repeat(100_000)).length, 0);
    assert.match(reasonFor(`x; a="${"b".repeat(100_000)}`), /unclosed/);
  });
});

describe("formatExtensions", () => {
  test("formats names, bare parameters and token values", () => {
    assert.equal(
      formatExtensions([
        {
          name: "permessage-deflate",
          params: [{ name: "client_max_window_bits", value: true }, {
            name: "server_max_window_bits",
            value: "10",
          }],
        },
        { name: "x-other", params: [] },
      ]),
      "permessage-deflate; client_max_window_bits; server_max_window_bits=10, x-other",
    );
    assert.equal(formatExtensions([]), "");
  });

  test("round-trips through parseExtensions", () => {
    const original: ExtensionOffer[] = [
      { name: "a", params: [{ name: "p", value: "1" }, { name: "p", value: true }] },
      { name: "__proto__", params: [{ name: "constructor", value: "x" }] },
    ];
    assert.deepEqual(offers(formatExtensions(original)), original);
  });

  const invalid: [ExtensionOffer[], string][] = [
    [[{ name: "bad name", params: [] }], "space in an extension name"],
    [[{ name: "", params: [] }], "empty extension name"],
    [[{ name: "x", params: [{ name: "p;q", value: true }] }], "separator in a parameter name"],
    [
      [{ name: "x", params: [{ name: "p", value: "a b" }] }],
      "value that is not a token (RFC 6455 §9.1: even quoted values must be tokens)",
    ],
    [[{ name: "x", params: [{ name: "p", value: "" }] }], "empty value"],
    [[{ name: "x", params: [{ name: "p", value: "1\r\nInjected: yes" }] }], "CRLF in a value"],
    [[{ name: "x\u0000", params: [] }], "NUL in a name"],
  ];
  for (const [input, why] of invalid) {
    test(`throws ERR_INVALID_HEADER for ${why}`, () => {
      assert.throws(
        () => formatExtensions(input),
        (error: unknown) => error instanceof WebSocketError && error.code === "ERR_INVALID_HEADER",
      );
    });
  }
});
