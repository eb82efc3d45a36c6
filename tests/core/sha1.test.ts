import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { sha1 } from "../../core/sha1.ts";
import { hex, utf8 } from "../support/bytes.ts";

describe("sha1", () => {
  // RFC 3174 §7.3 test vectors (and the FIPS 180 empty-message digest).
  test("abc", () => {
    assert.equal(hex(sha1(utf8("abc"))), "a9993e364706816aba3e25717850c26c9cd0d89d");
  });

  test("empty input", () => {
    assert.equal(hex(sha1(new Uint8Array(0))), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
  });

  test("two-block message (RFC 3174 TEST2)", () => {
    assert.equal(
      hex(sha1(utf8("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"))),
      "84983e441c3bd26ebaae4aa1f95129e5e54670f1",
    );
  });

  test("one million 'a' (RFC 3174 TEST3)", () => {
    assert.equal(
      hex(sha1(new Uint8Array(1_000_000).fill(0x61))),
      "34aa973cd4c4daa4f61eeb2bdbad27316534016f",
    );
  });

  test("RFC 3174 TEST4: 80 repetitions of a 8-byte pattern", () => {
    assert.equal(
      hex(sha1(utf8("01234567".repeat(80)))),
      "dea356a2cddd90c7a7ecedc5ebb563934f460452",
    );
  });

  test("returns 20 bytes", () => {
    assert.equal(sha1(utf8("x")).length, 20);
  });

  test("padding boundaries: 55, 56, 63, 64 and 65 bytes", () => {
    // Digests checked against coreutils sha1sum.
    const expected: [number, string][] = [
      [55, "c1c8bbdc22796e28c0e15163d20899b65621d65a"],
      [56, "c2db330f6083854c99d4b5bfb6e8f29f201be699"],
      [63, "03f09f5b158a7a8cdad920bddc29b81c18a551f5"],
      [64, "0098ba824b5c16427bd7a1122a5a442a25ec644d"],
      [65, "11655326c708d70319be2610e8a57d9a5b959d3b"],
    ];
    for (const [length, digest] of expected) {
      assert.equal(hex(sha1(new Uint8Array(length).fill(0x61))), digest, `length ${length}`);
    }
  });

  test("RFC 6455 §1.3 example: key + GUID", () => {
    const digest = sha1(utf8("dGhlIHNhbXBsZSBub25jZQ==258EAFA5-E914-47DA-95CA-C5AB0DC85B11"));
    assert.equal(hex(digest), "b37a4f2cc0624f1690f64606cf385945b2bec4ea");
  });
});
