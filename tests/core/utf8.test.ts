import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { isValidUtf8, Utf8Validator } from "../../core/utf8.ts";
import { hex as hexBytes } from "../support/bytes.ts";

const decoder = new TextDecoder("utf-8", { fatal: true });

/** The reference: the WHATWG UTF-8 decoder in fatal mode. */
function referenceValid(bytes: Uint8Array): boolean {
  try {
    decoder.decode(bytes);
    return true;
  } catch {
    return false;
  }
}

const looseDecoder = new TextDecoder("utf-8", { ignoreBOM: true });
const encoder = new TextEncoder();

/**
 * The same WHATWG decoder without `fatal`, for the big generated sets (a thrown error per invalid
 * input costs ~10 µs on some runtimes): where fatal mode throws, replacement mode emits U+FFFD
 * instead of the bad bytes, so the input is valid exactly when decoding and re-encoding gives it
 * back. Cross-checked against fatal mode below.
 */
function fastReferenceValid(bytes: Uint8Array): boolean {
  const again = encoder.encode(looseDecoder.decode(bytes));
  if (again.length !== bytes.length) return false;
  for (let i = 0; i < bytes.length; i++) if (again[i] !== bytes[i]) return false;
  return true;
}

/**
 * Whether `prefix` can still be completed into valid UTF-8. An unfinished character needs at most
 * three more bytes; the byte after a lead byte lies in one of 80–BF, A0–BF, 80–9F, 90–BF, 80–8F,
 * each of which contains 80, 90 or A0, and every later byte may be 80.
 */
const viableCache = new Map<string, boolean>();
function referenceViable(prefix: Uint8Array): boolean {
  const key = hex(prefix);
  let viable = viableCache.get(key);
  if (viable === undefined) viableCache.set(key, (viable = computeViable(prefix)));
  return viable;
}

function computeViable(prefix: Uint8Array): boolean {
  if (fastReferenceValid(prefix)) return true;
  for (const first of [0x80, 0x90, 0xa0]) {
    for (let extra = 0; extra < 3; extra++) {
      const candidate = new Uint8Array(prefix.length + 1 + extra);
      candidate.set(prefix);
      candidate[prefix.length] = first;
      candidate.fill(0x80, prefix.length + 1);
      if (fastReferenceValid(candidate)) return true;
    }
  }
  return false;
}

/** Index of the first byte after which the input can no longer be valid UTF-8; -1 if none. */
function referenceFirstBadByte(bytes: Uint8Array): number {
  for (let k = 0; k < bytes.length; k++) {
    if (!referenceViable(bytes.subarray(0, k + 1))) return k;
  }
  return -1;
}

/** Feeds `bytes` one byte per push; returns the index of the push that returned false, or -1. */
function firstFalsePush(validator: Utf8Validator, bytes: Uint8Array): number {
  for (let i = 0; i < bytes.length; i++) {
    if (!validator.push(bytes.subarray(i, i + 1))) return i;
  }
  return -1;
}

/** Bytes as hex, space-separated, for failure messages and keys. */
const hex = (bytes: ArrayLike<number>): string => hexBytes(bytes, " ");

/** Byte values around every boundary that matters for UTF-8. */
const EDGES = [0x00, 0x41, 0x7f, 0x80, 0x81, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc2, 0xdf, 0xe0, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xff];

/** Generated 3- and 4-byte sequences: every lead byte from C0 up, every second byte, edge values after. */
function* generatedLongSequences(): Generator<Uint8Array> {
  const third = [0x00, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc2, 0xe1, 0xf0, 0xff];
  for (let b0 = 0xc0; b0 <= 0xff; b0++) {
    for (let b1 = 0; b1 <= 0xff; b1++) {
      for (const b2 of third) yield Uint8Array.of(b0, b1, b2);
    }
  }
  const fourth = [0x00, 0x7f, 0x80, 0xbf, 0xc0, 0xf4];
  for (let b0 = 0xf0; b0 <= 0xf7; b0++) {
    for (let b1 = 0; b1 <= 0xff; b1++) {
      for (const b2 of [0x7f, 0x80, 0xbf, 0xc0]) {
        for (const b3 of fourth) yield Uint8Array.of(b0, b1, b2, b3);
      }
    }
  }
}

function encodeCodePoint(cp: number): number[] {
  if (cp < 0x80) return [cp];
  if (cp < 0x800) return [0xc0 | (cp >> 6), 0x80 | (cp & 0x3f)];
  if (cp < 0x10000) return [0xe0 | (cp >> 12), 0x80 | ((cp >> 6) & 0x3f), 0x80 | (cp & 0x3f)];
  return [0xf0 | (cp >> 18), 0x80 | ((cp >> 12) & 0x3f), 0x80 | ((cp >> 6) & 0x3f), 0x80 | (cp & 0x3f)];
}

/** The boundaries the brief names, as raw bit patterns (including the invalid ones the encoder can form). */
const BOUNDARY_SEQUENCES: [string, number[], boolean][] = [
  ["U+007F", [0x7f], true],
  ["U+0080", [0xc2, 0x80], true],
  ["U+07FF", [0xdf, 0xbf], true],
  ["U+0800", [0xe0, 0xa0, 0x80], true],
  ["U+D7FF", [0xed, 0x9f, 0xbf], true],
  ["U+D800 (surrogate)", [0xed, 0xa0, 0x80], false],
  ["U+DBFF (surrogate)", [0xed, 0xaf, 0xbf], false],
  ["U+DC00 (surrogate)", [0xed, 0xb0, 0x80], false],
  ["U+DFFF (surrogate)", [0xed, 0xbf, 0xbf], false],
  ["U+E000", [0xee, 0x80, 0x80], true],
  ["U+FFFD", [0xef, 0xbf, 0xbd], true],
  ["U+FFFF", [0xef, 0xbf, 0xbf], true],
  ["U+10000", [0xf0, 0x90, 0x80, 0x80], true],
  ["U+10FFFF", [0xf4, 0x8f, 0xbf, 0xbf], true],
  ["U+110000", [0xf4, 0x90, 0x80, 0x80], false],
  ["U+1FFFFF", [0xf7, 0xbf, 0xbf, 0xbf], false],
  ["overlong NUL C0 80", [0xc0, 0x80], false],
  ["overlong C1 BF", [0xc1, 0xbf], false],
  ["overlong E0 80 80", [0xe0, 0x80, 0x80], false],
  ["overlong E0 9F BF (U+07FF)", [0xe0, 0x9f, 0xbf], false],
  ["overlong F0 80 80 80", [0xf0, 0x80, 0x80, 0x80], false],
  ["overlong F0 8F BF BF (U+FFFF)", [0xf0, 0x8f, 0xbf, 0xbf], false],
  ["F5 lead byte", [0xf5, 0x80, 0x80, 0x80], false],
  ["FE", [0xfe], false],
  ["FF", [0xff], false],
  ["lone continuation", [0x80], false],
  ["truncated 2-byte", [0xc2], false],
  ["truncated 3-byte", [0xe2, 0x82], false],
  ["truncated 4-byte", [0xf0, 0x9f, 0x98], false],
];

describe("isValidUtf8", () => {
  test("boundary code points and classic invalid forms", () => {
    for (const [name, bytes, valid] of BOUNDARY_SEQUENCES) {
      const data = Uint8Array.from(bytes);
      assert.equal(referenceValid(data), valid, `reference disagrees with the table for ${name}`);
      assert.equal(isValidUtf8(data), valid, name);
    }
  });

  test("the empty input is valid", () => {
    assert.equal(isValidUtf8(new Uint8Array(0)), true);
  });

  test("agrees with TextDecoder(fatal) on every 1-byte sequence", () => {
    for (let b0 = 0; b0 < 256; b0++) {
      const data = Uint8Array.of(b0);
      assert.equal(isValidUtf8(data), referenceValid(data), hex(data));
      assert.equal(isValidUtf8(data), b0 < 0x80, hex(data));
    }
  });

  test("agrees with TextDecoder(fatal) on every 2-byte sequence", () => {
    let valid = 0;
    const data = new Uint8Array(2);
    for (let b0 = 0; b0 < 256; b0++) {
      for (let b1 = 0; b1 < 256; b1++) {
        data[0] = b0;
        data[1] = b1;
        const expected = referenceValid(data);
        if (isValidUtf8(data) !== expected) assert.fail(`${hex(data)}: expected ${expected}`);
        if (expected) valid++;
      }
    }
    // 128*128 ASCII pairs + 30 lead bytes (C2–DF) * 64 continuation bytes.
    assert.equal(valid, 128 * 128 + 30 * 64);
  });

  test("the round-trip reference agrees with TextDecoder(fatal) on a sample of the generated sequences", () => {
    let n = 0;
    for (const long of generatedLongSequences()) {
      if (n++ % 37 !== 0) continue;
      if (fastReferenceValid(long) !== referenceValid(long)) assert.fail(hex(long));
    }
    for (const [name, bytes, valid] of BOUNDARY_SEQUENCES) assert.equal(fastReferenceValid(Uint8Array.from(bytes)), valid, name);
  });

  test("agrees with TextDecoder on generated 3- and 4-byte sequences", () => {
    let count = 0;
    let valid = 0;
    for (const data of generatedLongSequences()) {
      const expected = fastReferenceValid(data);
      if (isValidUtf8(data) !== expected) assert.fail(`${hex(data)}: expected ${expected}`);
      count++;
      if (expected) valid++;
    }
    assert.ok(count > 200_000, `only ${count} sequences`);
    assert.ok(valid > 1000 && valid < count - 1000, `both valid and invalid sequences covered (${valid}/${count})`);
  });

  test("agrees with TextDecoder(fatal) on every code point encoded by bit pattern, surrogates included", () => {
    for (let cp = 0; cp <= 0x10ffff; cp += cp < 0x1_0000 ? 1 : 61) {
      const data = Uint8Array.from(encodeCodePoint(cp));
      const expected = !(cp >= 0xd800 && cp <= 0xdfff);
      if (isValidUtf8(data) !== expected) assert.fail(`U+${cp.toString(16)} (${hex(data)}): expected ${expected}`);
    }
    assert.equal(isValidUtf8(Uint8Array.from(encodeCodePoint(0x10ffff))), true);
  });

  test("agrees with TextDecoder on random mixtures of characters and stray bytes", () => {
    let seed = 2024;
    const next = () => (seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0);
    const pieces = [
      [0x41], [0x7f], [0xc2, 0x80], [0xdf, 0xbf], [0xe0, 0xa0, 0x80], [0xed, 0x9f, 0xbf], [0xef, 0xbf, 0xbf],
      [0xf0, 0x90, 0x80, 0x80], [0xf4, 0x8f, 0xbf, 0xbf], [0xe2, 0x82, 0xac], [0xf0, 0x9f, 0x98, 0x80],
    ];
    for (let round = 0; round < 5000; round++) {
      const bytes: number[] = [];
      const count = 1 + (next() % 8);
      for (let i = 0; i < count; i++) bytes.push(...pieces[next() % pieces.length]);
      if (round % 2 === 1) bytes[next() % bytes.length] = EDGES[next() % EDGES.length]; // corrupt one byte
      const data = Uint8Array.from(bytes);
      assert.equal(isValidUtf8(data), fastReferenceValid(data), hex(data));
    }
  });
});

describe("Utf8Validator", () => {
  test("fails fast: ED A0 80 fails on the A0", () => {
    const v = new Utf8Validator();
    assert.equal(v.push(Uint8Array.of(0xed)), true);
    assert.equal(v.complete, false);
    assert.equal(v.push(Uint8Array.of(0xa0)), false);
    assert.equal(v.push(Uint8Array.of(0x80)), false);
    assert.equal(v.complete, false);
  });

  test("fails fast: F4 90 fails on the 90", () => {
    const v = new Utf8Validator();
    assert.equal(v.push(Uint8Array.of(0xf4)), true);
    assert.equal(v.push(Uint8Array.of(0x90)), false);
  });

  test("fails fast on the named overlong and out-of-range prefixes", () => {
    const cases: [number[], number][] = [
      [[0xc0], 0],
      [[0xc1], 0],
      [[0xe0, 0x80], 1],
      [[0xe0, 0x9f], 1],
      [[0xf0, 0x80], 1],
      [[0xf0, 0x8f], 1],
      [[0xf5], 0],
      [[0xff], 0],
      [[0x41, 0x42, 0x80], 2],
      [[0xe2, 0x82, 0x41], 2],
      [[0xf0, 0x9f, 0x98, 0xc0], 3],
      [[0xe2, 0x82, 0xac, 0xed, 0xbf], 4],
    ];
    for (const [bytes, failAt] of cases) {
      const data = Uint8Array.from(bytes);
      assert.equal(referenceFirstBadByte(data), failAt, `reference for ${hex(data)}`);
      assert.equal(firstFalsePush(new Utf8Validator(), data), failAt, hex(data));
    }
  });

  test("fed byte by byte, returns false exactly at the first byte that cannot lead to valid UTF-8", () => {
    let checked = 0;
    let failures = 0;
    for (const b0 of EDGES) {
      for (let b1 = 0; b1 < 256; b1 += 1) {
        for (const b2 of [0x41, 0x80, 0x9f, 0xa0, 0xbf, 0xc2]) {
          for (const b3 of [0x41, 0x80, 0xbf, 0xe0]) {
            if (b0 < 0xc0 && b1 % 16 !== 0) continue; // ASCII/continuation leads: sample
            const data = Uint8Array.of(b0, b1, b2, b3);
            const expected = referenceFirstBadByte(data);
            const v = new Utf8Validator();
            const actual = firstFalsePush(v, data);
            if (actual !== expected) assert.fail(`${hex(data)}: validator fails at ${actual}, reference at ${expected}`);
            if (expected === -1) assert.equal(v.complete, fastReferenceValid(data), `complete after ${hex(data)}`);
            else assert.equal(v.complete, false, `complete after failing on ${hex(data)}`);
            checked++;
            if (expected !== -1) failures++;
          }
        }
      }
    }
    assert.ok(checked > 10_000 && failures > 1000 && failures < checked, `${failures}/${checked}`);
  });

  test("once failed, stays failed until reset", () => {
    const v = new Utf8Validator();
    assert.equal(v.push(Uint8Array.of(0xff)), false);
    assert.equal(v.push(Uint8Array.of(0x41)), false);
    assert.equal(v.complete, false);
    v.reset();
    assert.equal(v.complete, true);
    assert.equal(v.push(Uint8Array.of(0x41)), true);
    assert.equal(v.complete, true);
  });

  test("reset forgets an unfinished character", () => {
    const v = new Utf8Validator();
    assert.equal(v.push(Uint8Array.of(0xf0, 0x9f)), true);
    assert.equal(v.complete, false);
    v.reset();
    assert.equal(v.complete, true);
    // A continuation byte right after reset is no longer expected.
    assert.equal(v.push(Uint8Array.of(0x98)), false);
    // ...and a narrowed range (E0 wants A0–BF next) does not leak into the next message.
    const w = new Utf8Validator();
    assert.equal(w.push(Uint8Array.of(0xe0)), true);
    w.reset();
    assert.equal(w.push(Uint8Array.of(0xe1, 0x80, 0x80)), true);
    assert.equal(w.complete, true);
  });

  test("complete is false mid-character and true at every character boundary", () => {
    const text = "a\u00e9\u20ac\u{1f600}\u07ff\u0800\uffff\u{10000}\u{10ffff}z";
    const bytes = new TextEncoder().encode(text);
    const boundaries = new Set<number>([0]);
    let offset = 0;
    for (const ch of text) {
      offset += new TextEncoder().encode(ch).length;
      boundaries.add(offset);
    }
    const v = new Utf8Validator();
    assert.equal(v.complete, true);
    for (let i = 0; i < bytes.length; i++) {
      assert.equal(v.push(bytes, i, i + 1), true, `byte ${i}`);
      assert.equal(v.complete, boundaries.has(i + 1), `complete after byte ${i}`);
    }
  });

  test("start and end limit the validated range", () => {
    const bytes = Uint8Array.of(0xff, 0xe2, 0x82, 0xac, 0xff);
    const v = new Utf8Validator();
    assert.equal(v.push(bytes, 1, 4), true);
    assert.equal(v.complete, true);
    assert.equal(v.push(bytes, 1, 3), true);
    assert.equal(v.complete, false);
    assert.equal(v.push(bytes, 3, 4), true);
    assert.equal(v.complete, true);
    assert.equal(v.push(bytes, 4), false);
  });

  test("every valid multi-byte text split at every point into two pushes is valid and complete", () => {
    const texts = [
      "\u00e9",
      "\u20ac",
      "\u{1f600}",
      "h\u00e9llo w\u00f6rld",
      "\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8",
      "\u{1f468}\u200d\u{1f469}\u200d\u{1f467}\u200d\u{1f466}",
      "\u007f\u0080\u07ff\u0800\ud7ff\ue000\uffff\u{10000}\u{10ffff}",
      "mixed: a\u00df\u4e2d\u{1d11e}\u{1f4a9}!",
    ];
    for (const text of texts) {
      const bytes = new TextEncoder().encode(text);
      for (let cut = 0; cut <= bytes.length; cut++) {
        const v = new Utf8Validator();
        assert.equal(v.push(bytes.subarray(0, cut)), true, `${JSON.stringify(text)} first part up to ${cut}`);
        assert.equal(v.push(bytes.subarray(cut)), true, `${JSON.stringify(text)} second part from ${cut}`);
        assert.equal(v.complete, true, `${JSON.stringify(text)} cut at ${cut}`);
        // Same split through start/end offsets on the whole buffer.
        const w = new Utf8Validator();
        assert.equal(w.push(bytes, 0, cut) && w.push(bytes, cut, bytes.length) && w.complete, true);
      }
    }
  });

  test("an invalid byte is found wherever the input is split", () => {
    const good = new TextEncoder().encode("\u20ac\u{1f600}abc\u00e9");
    for (const bad of [[0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xc0, 0xaf], [0x80], [0xf8]]) {
      const data = Uint8Array.from([...good, ...bad, ...good]);
      for (let cut = 0; cut <= data.length; cut++) {
        const v = new Utf8Validator();
        const ok = v.push(data.subarray(0, cut)) && v.push(data.subarray(cut));
        assert.equal(ok, false, `${hex(bad)} cut at ${cut}`);
        assert.equal(v.complete, false);
      }
    }
  });

  test("a text ending inside a character is valid so far but not complete", () => {
    for (const bytes of [[0xc3], [0xe2, 0x82], [0xf0, 0x9f, 0x98], [0x41, 0xf4, 0x8f]]) {
      const v = new Utf8Validator();
      assert.equal(v.push(Uint8Array.from(bytes)), true, hex(bytes));
      assert.equal(v.complete, false, hex(bytes));
      assert.equal(isValidUtf8(Uint8Array.from(bytes)), false, hex(bytes));
    }
  });
});
