import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { base64Decode, base64Encode } from "../../core/base64.ts";

/** Deterministic pseudo-random bytes (a small LCG), so failures are reproducible. */
function bytesOfLength(length: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(length);
  let state = seed >>> 0;
  for (let i = 0; i < length; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    bytes[i] = state >>> 24;
  }
  return bytes;
}

/** The platform's own encoder, as an independent reference. */
function referenceEncode(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes));
}

describe("base64Encode", () => {
  test("RFC 4648 §10 test vectors", () => {
    const vectors: [string, string][] = [
      ["", ""],
      ["f", "Zg=="],
      ["fo", "Zm8="],
      ["foo", "Zm9v"],
      ["foob", "Zm9vYg=="],
      ["fooba", "Zm9vYmE="],
      ["foobar", "Zm9vYmFy"],
    ];
    for (const [plain, encoded] of vectors) {
      assert.equal(base64Encode(new TextEncoder().encode(plain)), encoded);
    }
  });

  test("uses the standard alphabet, including + and /", () => {
    assert.equal(base64Encode(new Uint8Array([0xfb, 0xff, 0xbf])), "+/+/");
  });

  test("matches btoa for every length 0..64", () => {
    for (let length = 0; length <= 64; length++) {
      const bytes = bytesOfLength(length, length + 1);
      assert.equal(base64Encode(bytes), referenceEncode(bytes), `length ${length}`);
    }
  });
});

describe("base64Decode", () => {
  test("round-trips every length 0..64", () => {
    for (let length = 0; length <= 64; length++) {
      const bytes = bytesOfLength(length, 1000 + length);
      const encoded = base64Encode(bytes);
      assert.deepEqual(base64Decode(encoded), bytes, `length ${length}`);
    }
  });

  test("round-trips all 256 byte values", () => {
    const bytes = Uint8Array.from({ length: 256 }, (_, i) => i);
    assert.deepEqual(base64Decode(base64Encode(bytes)), bytes);
  });

  test("decodes the RFC 6455 sample key to 16 bytes", () => {
    const decoded = base64Decode("dGhlIHNhbXBsZSBub25jZQ==");
    assert.ok(decoded);
    assert.equal(new TextDecoder().decode(decoded), "the sample nonce");
  });

  test("empty string decodes to zero bytes", () => {
    assert.deepEqual(base64Decode(""), new Uint8Array(0));
  });

  const invalid: [string, string][] = [
    ["A", "length not a multiple of 4"],
    ["AA", "missing padding"],
    ["AAA", "missing padding"],
    ["Zg=", "short padding"],
    ["AAAAA", "length 5"],
    ["====", "only padding"],
    ["A===", "three padding characters"],
    ["AA=A", "padding in the middle of a quantum"],
    ["=AAA", "padding first"],
    ["Zg==Zg==", "padding before the last quantum"],
    ["AAAA====", "a whole quantum of padding"],
    ["Zm9-", "URL-safe alphabet (-)"],
    ["Zm9_", "URL-safe alphabet (_)"],
    ["Zm 9v", "space"],
    ["Zm9v\n", "trailing newline"],
    [" Zm9v", "leading space"],
    ["Zm9\u00e9", "non-ASCII character"],
    ["Zm9\u0000", "NUL"],
    ["Zh==", "non-zero bits under two padding characters"],
    ["Zm9=", "non-zero bits under one padding character"],
  ];
  for (const [text, why] of invalid) {
    test(`rejects ${JSON.stringify(text)} (${why})`, () => {
      assert.equal(base64Decode(text), null);
    });
  }

  test("accepts the canonical neighbours of the non-canonical inputs", () => {
    assert.deepEqual(base64Decode("Zg=="), new Uint8Array([0x66]));
    assert.deepEqual(base64Decode("Zm8="), new Uint8Array([0x66, 0x6f]));
  });

  test("every accepted string re-encodes to itself and agrees with atob", () => {
    let accepted = 0;
    // All 4-character strings over a small sample alphabet: a mix of valid and invalid ones.
    const sample = "AQgw+/=Z";
    for (const a of sample) {
      for (const b of sample) {
        for (const c of sample) {
          for (const d of sample) {
            const text = a + b + c + d;
            const decoded = base64Decode(text);
            if (decoded === null) continue;
            accepted++;
            assert.equal(base64Encode(decoded), text);
            assert.equal(String.fromCharCode(...decoded), atob(text), text);
          }
        }
      }
    }
    assert.ok(accepted > 100, `expected many valid strings, got ${accepted}`);
  });
});
