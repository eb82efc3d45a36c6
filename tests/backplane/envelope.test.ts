/** The backplane's envelope: bytes as the format says, and every malformed input refused. */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { decodeEnvelope, encodeEnvelope, ENVELOPE_VERSION } from "../../adapters/shared/backplane.ts";

const origin = Uint8Array.from({ length: 16 }, (_, i) => 0xa0 + i);

describe("backplane envelope", () => {
  test("a text envelope, byte by byte", () => {
    const bytes = encodeEnvelope(origin, 0x0a0b0c0d0e0f, 0x0102030405, "rö", "hé");
    assert.deepEqual([...bytes], [
      2, 0x00, ...origin,
      0, 0, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, // run, 64-bit big-endian
      0, 0, 0, 0x01, 0x02, 0x03, 0x04, 0x05, // sequence, 64-bit big-endian
      0, 0, 0, 3, 0x72, 0xc3, 0xb6, // topic: length, UTF-8
      0x68, 0xc3, 0xa9, // payload: UTF-8
    ]);
    const envelope = decodeEnvelope(bytes);
    assert.equal(ENVELOPE_VERSION, 2);
    assert.deepEqual(envelope.origin, origin);
    assert.equal(envelope.run, 0x0a0b0c0d0e0f);
    assert.equal(envelope.sequence, 0x0102030405);
    assert.equal(envelope.topic, "rö");
    assert.equal(envelope.binary, false);
    assert.equal(new TextDecoder().decode(envelope.payload), "hé");
  });

  test("binary payloads of 0 B to 1 MiB and the largest safe sequence number round-trip", () => {
    for (const size of [0, 1, 125, 65_536, 1024 * 1024]) {
      const payload = Uint8Array.from({ length: size }, (_, i) => (i * 31) & 0xff);
      const envelope = decodeEnvelope(encodeEnvelope(origin, Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER, "", payload));
      assert.equal(envelope.binary, true);
      assert.equal(envelope.run, Number.MAX_SAFE_INTEGER);
      assert.equal(envelope.sequence, Number.MAX_SAFE_INTEGER);
      assert.equal(envelope.topic, "");
      assert.deepEqual(envelope.payload, payload);
    }
    // Bytes flagged as text stay bytes: the flag says how local subscribers get them.
    const asText = decodeEnvelope(encodeEnvelope(origin, 1, 1, "t", new Uint8Array([0x61]), false));
    assert.equal(asText.binary, false);
    assert.deepEqual([...asText.payload], [0x61]);
  });

  test("a lone surrogate is encoded as the core encodes text (U+FFFD)", () => {
    const envelope = decodeEnvelope(encodeEnvelope(origin, 1, 1, "t", "a\ud800b"));
    assert.deepEqual([...envelope.payload], [0x61, 0xef, 0xbf, 0xbd, 0x62]);
  });

  test("malformed envelopes are refused with a RangeError", () => {
    const good = encodeEnvelope(origin, 3, 7, "topic", "x");
    const cases: [string, Uint8Array][] = [
      ["too short", good.subarray(0, 37)],
      ["version 1", Uint8Array.from(good, (b, i) => (i === 0 ? 1 : b))],
      ["unknown version", Uint8Array.from(good, (b, i) => (i === 0 ? 3 : b))],
      ["unknown flag", Uint8Array.from(good, (b, i) => (i === 1 ? 0x02 : b))],
      ["run above 2^53 - 1", Uint8Array.from(good, (b, i) => (i === 19 ? 0x20 : b))],
      ["sequence above 2^53 - 1", Uint8Array.from(good, (b, i) => (i === 27 ? 0x20 : b))],
      ["topic past the end", Uint8Array.from(good, (b, i) => (i === 37 ? 200 : b))],
      ["topic not UTF-8", Uint8Array.from(good, (b, i) => (i === 38 ? 0xff : b))],
    ];
    for (const [what, bytes] of cases) assert.throws(() => decodeEnvelope(bytes), RangeError, what);
    assert.throws(() => encodeEnvelope(origin, 1, -1, "t", "x"), RangeError);
    assert.throws(() => encodeEnvelope(origin, 1, 2 ** 53, "t", "x"), RangeError);
    assert.throws(() => encodeEnvelope(origin, -1, 1, "t", "x"), RangeError);
    assert.throws(() => encodeEnvelope(origin, 2 ** 53, 1, "t", "x"), RangeError);
    assert.throws(() => encodeEnvelope(origin.subarray(1), 1, 1, "t", "x"), RangeError);
  });
});
