import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  encodeFrame,
  type FrameHandler,
  FrameParser,
  frameHeaderSize,
  MERGE_PAYLOAD_MAX,
  Opcode,
  RSV1,
  RSV2,
  RSV3,
  writeAsciiTextFrame,
  writeFrameHeader,
  writeSmallFrame,
} from "../../core/frame.ts";
import { concatBytes } from "../../core/bytes.ts";
import { WebSocketError } from "../../core/errors.ts";
import { hex } from "../support/bytes.ts";
import { createTuning, PORTABLE_TUNING, type Tuning } from "../../core/tuning.ts";

type Record =
  | ["start", number, boolean, number, number]
  | ["payload", string, boolean]
  | ["error", number, string];

const ascii = (text: string) => new TextEncoder().encode(text);
const b = (...values: number[]) => Uint8Array.from(values);
const RFC_KEY = b(0x37, 0xfa, 0x21, 0x3d);

/** A FrameHandler that records every call; `stopAt` makes the n-th call (0-based) return false. */
class Recorder implements FrameHandler {
  records: Record[] = [];
  pieces: Uint8Array[] = [];
  calls = 0;
  private readonly stopAt: number;
  constructor(stopAt = -1) {
    this.stopAt = stopAt;
  }
  onFrameStart(opcode: number, fin: boolean, rsv: number, length: number): boolean {
    this.records.push(["start", opcode, fin, rsv, length]);
    return this.calls++ !== this.stopAt;
  }
  onFramePayload(data: Uint8Array, frameEnd: boolean): boolean {
    this.records.push(["payload", hex(data), frameEnd]);
    this.pieces.push(data);
    return this.calls++ !== this.stopAt;
  }
  onFrameError(closeCode: number, reason: string): void {
    this.records.push(["error", closeCode, reason]);
  }
}

interface Frame {
  opcode: number;
  fin: boolean;
  rsv: number;
  length: number;
  payload: string;
}

/** Parses `bytes` cut into pieces at `cuts`; merges payload pieces per frame. */
function parse(bytes: Uint8Array, expectMasked: boolean, cuts: number[] = [], allowedRsv = 0, tuning: Tuning = PORTABLE_TUNING): {
  frames: Frame[];
  error: [number, string] | null;
  records: Record[];
} {
  const recorder = new Recorder();
  const parser = new FrameParser(recorder, expectMasked, tuning);
  parser.allowedRsv = allowedRsv;
  const copy = bytes.slice(); // the parser unmasks in place
  let from = 0;
  for (const to of [...cuts, copy.length]) {
    parser.push(copy.subarray(from, to));
    from = to;
  }
  const frames: Frame[] = [];
  let error: [number, string] | null = null;
  let open = false;
  for (const r of recorder.records) {
    if (r[0] === "start") {
      assert.equal(open, false, "a frame starts before the previous one ended");
      frames.push({ opcode: r[1], fin: r[2], rsv: r[3], length: r[4], payload: "" });
      open = true;
    } else if (r[0] === "payload") {
      assert.ok(open, "payload outside a frame");
      frames[frames.length - 1].payload += r[1];
      if (r[2]) open = false;
    } else {
      error = [r[1], r[2]];
    }
  }
  return { frames, error, records: recorder.records };
}

function parseByteByByte(bytes: Uint8Array, expectMasked: boolean, allowedRsv = 0) {
  return parse(bytes, expectMasked, Array.from({ length: Math.max(0, bytes.length - 1) }, (_, i) => i + 1), allowedRsv);
}

function pattern(length: number, seed = 1): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = (i * 131 + seed * 17 + (i >> 8)) & 0xff;
  return out;
}

/** Asserts the parser reports `code` for `bytes`, whole and byte by byte, with nothing else after it. */
function assertError(bytes: Uint8Array, expectMasked: boolean, code: number, allowedRsv = 0, label = hex(bytes)): void {
  for (const result of [parse(bytes, expectMasked, [], allowedRsv), parseByteByByte(bytes, expectMasked, allowedRsv)]) {
    assert.deepEqual(result.error?.[0], code, `${label}: close code`);
    assert.equal(typeof result.error?.[1], "string");
    assert.ok(result.error![1].length > 0, `${label}: a reason is given`);
    assert.equal(result.records.at(-1)![0], "error", `${label}: nothing after the error`);
    assert.equal(result.records.filter((r) => r[0] === "error").length, 1, `${label}: one error`);
  }
}

describe("RFC 6455 §5.7 examples", () => {
  const examples: { name: string; bytes: number[]; masked: boolean; frames: Omit<Frame, "rsv">[] }[] = [
    {
      name: "a single-frame unmasked text message",
      bytes: [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f],
      masked: false,
      frames: [{ opcode: 1, fin: true, length: 5, payload: hex(ascii("Hello")) }],
    },
    {
      name: "a single-frame masked text message",
      bytes: [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58],
      masked: true,
      frames: [{ opcode: 1, fin: true, length: 5, payload: hex(ascii("Hello")) }],
    },
    {
      name: "a fragmented unmasked text message",
      bytes: [0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f],
      masked: false,
      frames: [
        { opcode: 1, fin: false, length: 3, payload: hex(ascii("Hel")) },
        { opcode: 0, fin: true, length: 2, payload: hex(ascii("lo")) },
      ],
    },
    {
      name: "an unmasked ping",
      bytes: [0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f],
      masked: false,
      frames: [{ opcode: 9, fin: true, length: 5, payload: hex(ascii("Hello")) }],
    },
    {
      name: "a masked pong",
      bytes: [0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58],
      masked: true,
      frames: [{ opcode: 10, fin: true, length: 5, payload: hex(ascii("Hello")) }],
    },
  ];

  for (const example of examples) {
    test(`parses ${example.name}, whole and split at every point`, () => {
      const bytes = Uint8Array.from(example.bytes);
      const expected = example.frames.map((f) => ({ ...f, rsv: 0 }));
      assert.deepEqual(parse(bytes, example.masked).frames, expected);
      for (let cut = 0; cut <= bytes.length; cut++) {
        const result = parse(bytes, example.masked, [cut]);
        assert.deepEqual(result.frames, expected, `cut at ${cut}`);
        assert.equal(result.error, null);
      }
      assert.deepEqual(parseByteByByte(bytes, example.masked).frames, expected);
    });
  }

  test("encodes the examples byte-exact", () => {
    const hello = ascii("Hello");
    assert.equal(hex(concatBytes(encodeFrame(Opcode.TEXT, hello, true, 0, null))), "810548656c6c6f");
    assert.equal(hex(concatBytes(encodeFrame(Opcode.TEXT, hello, true, 0, RFC_KEY))), "818537fa213d7f9f4d5158");
    assert.equal(hex(concatBytes(encodeFrame(Opcode.TEXT, ascii("Hel"), false, 0, null))), "010348656c");
    assert.equal(hex(concatBytes(encodeFrame(Opcode.CONTINUATION, ascii("lo"), true, 0, null))), "80026c6f");
    assert.equal(hex(concatBytes(encodeFrame(Opcode.PING, hello, true, 0, null))), "890548656c6c6f");
    assert.equal(hex(concatBytes(encodeFrame(Opcode.PONG, hello, true, 0, RFC_KEY))), "8a8537fa213d7f9f4d5158");
    assert.equal(hex(hello), hex(ascii("Hello")), "the caller's payload is not masked in place");
  });

  test("256 bytes binary message in a single unmasked frame: 82 7E 01 00", () => {
    const payload = pattern(256);
    const encoded = concatBytes(encodeFrame(Opcode.BINARY, payload, true, 0, null));
    assert.equal(hex(encoded.subarray(0, 4)), "827e0100");
    assert.equal(encoded.length, 4 + 256);
    assert.equal(hex(encoded.subarray(4)), hex(payload));
    const { frames } = parse(encoded, false);
    assert.deepEqual(frames, [{ opcode: 2, fin: true, rsv: 0, length: 256, payload: hex(payload) }]);
  });

  test("64 KiB binary message in a single unmasked frame: 82 7F 00 00 00 00 00 01 00 00", () => {
    const payload = pattern(65536);
    const chunks = encodeFrame(Opcode.BINARY, payload, true, 0, null);
    assert.equal(hex(chunks[0]), "827f0000000000010000");
    const encoded = concatBytes(chunks);
    assert.equal(encoded.length, 10 + 65536);
    const { frames } = parse(encoded, false);
    assert.equal(frames.length, 1);
    assert.equal(frames[0].length, 65536);
    assert.equal(frames[0].payload, hex(payload));
  });
});

// With a copy limit, short payload pieces (here all up to 128 bytes, whole or cut) are copies.
for (const copyLimit of [0, 128]) describe(`FrameParser: payload lengths${copyLimit ? `, pieces up to ${copyLimit} bytes copied` : ""}`, () => {
  const tuning = createTuning({ payloadCopyLimit: copyLimit });
  for (const length of [0, 1, 125, 126, 127, 128, 129, 65535, 65536, 70_000]) {
    for (const masked of [false, true]) {
      test(`${length} bytes, ${masked ? "masked" : "unmasked"}: 7/16/64-bit length, whole and split`, () => {
        const payload = pattern(length, length);
        const chunks = encodeFrame(Opcode.BINARY, payload, true, 0, masked ? RFC_KEY : null);
        const bytes = concatBytes(chunks);
        const headerSize = frameHeaderSize(length, masked);
        assert.equal(headerSize, (length < 126 ? 2 : length < 65536 ? 4 : 10) + (masked ? 4 : 0));
        assert.equal(bytes.length, headerSize + length);
        assert.equal(bytes[0], 0x82);
        assert.equal(bytes[1] & 0x7f, length < 126 ? length : length < 65536 ? 126 : 127);
        assert.equal((bytes[1] & 0x80) !== 0, masked);
        const expected = [{ opcode: 2, fin: true, rsv: 0, length, payload: hex(payload) }];
        assert.deepEqual(parse(bytes, masked, [], 0, tuning).frames, expected);
        // Split inside the header at every point, and inside the payload at a few.
        const cuts = new Set<number>();
        for (let i = 1; i <= headerSize + 1 && i < bytes.length; i++) cuts.add(i);
        for (const c of [headerSize + 3, headerSize + 4, bytes.length - 1]) if (c > 0 && c < bytes.length) cuts.add(c);
        for (const cut of cuts) assert.deepEqual(parse(bytes, masked, [cut], 0, tuning).frames, expected, `cut at ${cut}`);
        // Masked payload delivered in odd-sized pieces keeps the mask phase.
        const many: number[] = [];
        for (let c = 1; c < bytes.length; c += 1 + (c % 7)) many.push(c);
        assert.deepEqual(parse(bytes, masked, many, 0, tuning).frames, expected, "many cuts");
      });
    }
  }

  test("an empty payload gives one empty piece that ends the frame, even when the chunk ends with the header", () => {
    const recorder = new Recorder();
    const parser = new FrameParser(recorder, false, tuning);
    parser.push(b(0x82, 0x00));
    assert.deepEqual(recorder.records, [["start", 2, true, 0, 0], ["payload", "", true]]);
    parser.push(b(0x89, 0x00, 0x8a, 0x00));
    assert.deepEqual(recorder.records.slice(2), [
      ["start", 9, true, 0, 0],
      ["payload", "", true],
      ["start", 10, true, 0, 0],
      ["payload", "", true],
    ]);
  });

  test("empty chunks anywhere change nothing", () => {
    const bytes = concatBytes([
      ...encodeFrame(Opcode.TEXT, ascii("Hel"), false, 0, RFC_KEY),
      ...encodeFrame(Opcode.PING, new Uint8Array(0), true, 0, RFC_KEY),
      ...encodeFrame(Opcode.CONTINUATION, ascii("lo"), true, 0, RFC_KEY),
    ]);
    const expected = parse(bytes, true, [], 0, tuning).frames;
    assert.equal(expected.length, 3);
    const cuts: number[] = [];
    for (let i = 0; i <= bytes.length; i++) cuts.push(i, i); // every piece is followed by an empty one
    const result = parse(bytes, true, cuts, 0, tuning);
    assert.deepEqual(result.frames, expected);
    assert.equal(result.records.filter((r) => r[0] === "start").length, 3);
  });

  test("an empty masked frame split after its mask key", () => {
    const recorder = new Recorder();
    const parser = new FrameParser(recorder, true, tuning);
    parser.push(b(0x81, 0x80, 1, 2));
    assert.deepEqual(recorder.records, []);
    parser.push(b(3, 4));
    assert.deepEqual(recorder.records, [["start", 1, true, 0, 0], ["payload", "", true]]);
  });

  test("the largest accepted length is 2^53-1", () => {
    const { records } = parse(b(0x82, 0x7f, 0x00, 0x1f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff), false);
    assert.deepEqual(records, [["start", 2, true, 0, Number.MAX_SAFE_INTEGER]]);
  });

});

describe("FrameParser: payload lengths, without copies", () => {
  const tuning = createTuning({ payloadCopyLimit: 0 });
  test("a declared length of 2^32+1 with no payload yet: only a frame start, nothing held", () => {
    const recorder = new Recorder();
    const parser = new FrameParser(recorder, false, tuning);
    parser.push(b(0x82, 0x7f, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01));
    assert.deepEqual(recorder.records, [["start", 2, true, 0, 2 ** 32 + 1]]);
    assert.equal(parser.stopped, false);
    // Payload is passed on as it comes, as views into the chunk, not gathered.
    const chunk = b(1, 2, 3);
    parser.push(chunk);
    assert.deepEqual(recorder.records.at(-1), ["payload", "010203", false]);
    assert.equal(recorder.pieces.at(-1)!.buffer, chunk.buffer);
  });

  test("several frames in one chunk; payload pieces are views into the chunk", () => {
    const chunk = concatBytes([
      ...encodeFrame(Opcode.TEXT, ascii("ab"), false, 0, null),
      ...encodeFrame(Opcode.PING, ascii("p"), true, 0, null),
      ...encodeFrame(Opcode.CONTINUATION, ascii("cd"), true, 0, null),
    ]);
    const recorder = new Recorder();
    new FrameParser(recorder, false, tuning).push(chunk);
    assert.deepEqual(recorder.records, [
      ["start", 1, false, 0, 2],
      ["payload", "6162", true],
      ["start", 9, true, 0, 1],
      ["payload", "70", true],
      ["start", 0, true, 0, 2],
      ["payload", "6364", true],
    ]);
    for (const piece of recorder.pieces) assert.equal(piece.buffer, chunk.buffer);
  });

  test("a masked frame is unmasked in place in the received chunk", () => {
    const chunk = concatBytes(encodeFrame(Opcode.TEXT, ascii("Hello"), true, 0, RFC_KEY));
    const recorder = new Recorder();
    new FrameParser(recorder, true, tuning).push(chunk);
    assert.equal(hex(chunk.subarray(6)), hex(ascii("Hello")));
    assert.equal(recorder.pieces[0].buffer, chunk.buffer);
  });
});

describe("FrameParser: short payloads copied out of the chunk (Tuning.payloadCopyLimit)", () => {
  const tuning = createTuning({ payloadCopyLimit: 4 });
  test("pieces up to the limit are copies, unmasked, and the chunk is left masked; longer ones are views unmasked in place", () => {
    const frames = [ascii(""), ascii("abc"), ascii("abcd"), ascii("abcde"), ascii("Hello, world")];
    const chunk = concatBytes(frames.flatMap((payload, i) => encodeFrame(Opcode.BINARY, payload, true, 0, b(i + 1, 0x80, 0x5a, 0xff))));
    const original = chunk.slice();
    const recorder = new Recorder();
    new FrameParser(recorder, true, tuning).push(chunk);
    assert.deepEqual(recorder.pieces.map((piece) => hex(piece)), frames.map((payload) => hex(payload)));
    const copied = recorder.pieces.map((piece) => piece.buffer !== chunk.buffer);
    assert.deepEqual(copied, [true, true, true, false, false]);
    for (const piece of recorder.pieces.slice(0, 3)) assert.equal(piece.byteOffset, 0);
    // Only the two long payloads changed in the chunk: 5 + 12 bytes, unmasked in place.
    let changed = 0;
    for (let i = 0; i < chunk.length; i++) if (chunk[i] !== original[i]) changed++;
    assert.equal(hex(chunk.subarray(chunk.length - 12)), hex(frames[4]));
    assert.ok(changed > 0 && changed <= 17, `${changed} bytes changed`);
  });

  test("a long payload cut into short pieces: each piece copied, the mask phase carried across", () => {
    const payload = pattern(23, 5);
    const bytes = concatBytes(encodeFrame(Opcode.BINARY, payload, true, 0, RFC_KEY));
    for (let first = 7; first < bytes.length; first++) {
      // Pieces of 1-4 bytes after the header (6 bytes), starting at every phase.
      const cuts: number[] = [];
      for (let c = first; c < bytes.length; c += 1 + (c % 4)) cuts.push(c);
      const recorder = new Recorder();
      const parser = new FrameParser(recorder, true, tuning);
      const copy = bytes.slice();
      let from = 0;
      for (const to of [...cuts, copy.length]) {
        parser.push(copy.subarray(from, to));
        from = to;
      }
      assert.equal(hex(concatBytes(recorder.pieces)), hex(payload), `first cut at ${first}`);
      for (const piece of recorder.pieces) if (piece.length <= 4) assert.notEqual(piece.buffer, copy.buffer);
    }
  });

  test("unmasked frames (to a client) are copied as they are", () => {
    const chunk = concatBytes([...encodeFrame(Opcode.TEXT, ascii("hi"), true, 0, null), ...encodeFrame(Opcode.PING, ascii("ping"), true, 0, null)]);
    const recorder = new Recorder();
    new FrameParser(recorder, false, tuning).push(chunk);
    assert.deepEqual(recorder.records, [["start", 1, true, 0, 2], ["payload", "6869", true], ["start", 9, true, 0, 4], ["payload", "70696e67", true]]);
    for (const piece of recorder.pieces) assert.notEqual(piece.buffer, chunk.buffer);
  });

  test("the limit is a size in bytes: a tuning with another is refused", () => {
    for (const bad of [-1, Number.NaN]) assert.throws(() => createTuning({ payloadCopyLimit: bad }), WebSocketError);
  });
});

/** A Recorder that is offered whole payloads (`takeWholePayload`) and takes those `takes` accepts. */
class WholeTaker extends Recorder {
  offers: { chunk: Uint8Array; start: number; end: number; key: string | null; bytes: string }[] = [];
  private readonly takes: (bytes: Uint8Array) => boolean;
  constructor(takes: (bytes: Uint8Array) => boolean) {
    super();
    this.takes = takes;
  }
  takeWholePayload(chunk: Uint8Array, start: number, end: number, key: Uint8Array | null): boolean {
    this.offers.push({ chunk, start, end, key: key && hex(key), bytes: hex(chunk.subarray(start, end)) });
    return this.takes(chunk.subarray(start, end));
  }
}

for (const copyLimit of [0, 128]) describe(`FrameParser: whole payloads offered to takeWholePayload, still masked${copyLimit ? ", short payloads copied" : ""}`, () => {
  const tuning = createTuning({ payloadCopyLimit: copyLimit });
  const payloads = [ascii(""), ascii("abc"), pattern(130), pattern(300)];

  test("each whole payload is offered in the chunk, masked, with its key; one taken is not delivered", () => {
    const keys = payloads.map((_, i) => b(i + 1, 0x80, 0x5a, 0xff));
    const chunk = concatBytes(payloads.flatMap((payload, i) => encodeFrame(Opcode.BINARY, payload, true, 0, keys[i])));
    const original = chunk.slice();
    const taker = new WholeTaker(() => true);
    new FrameParser(taker, true, tuning).push(chunk);
    assert.equal(taker.offers.length, payloads.length);
    for (const [i, offer] of taker.offers.entries()) {
      assert.equal(offer.chunk, chunk);
      assert.equal(offer.key, hex(keys[i]));
      assert.equal(offer.end - offer.start, payloads[i].length);
      const masked = payloads[i].map((byte, j) => byte ^ keys[i][j & 3]);
      assert.equal(offer.bytes, hex(masked), `payload ${i} as it was sent`);
    }
    assert.deepEqual(chunk, original, "the parser changed nothing in the chunk");
    assert.deepEqual(taker.records.filter((r) => r[0] === "payload"), []);
  });

  test("a payload declined is delivered as usual, unmasked; unmasked frames are offered with no key", () => {
    const chunk = concatBytes(payloads.flatMap((payload) => encodeFrame(Opcode.BINARY, payload, true, 0, RFC_KEY)));
    const declined = new WholeTaker(() => false);
    new FrameParser(declined, true, tuning).push(chunk);
    assert.equal(declined.offers.length, payloads.length);
    assert.deepEqual(declined.pieces.map((piece) => hex(piece)), payloads.map((payload) => hex(payload)));
    const plain = concatBytes(payloads.flatMap((payload) => encodeFrame(Opcode.TEXT, payload, true, 0, null)));
    const unmasked = new WholeTaker((bytes) => bytes.length < 200);
    new FrameParser(unmasked, false, tuning).push(plain);
    assert.deepEqual(unmasked.offers.map((offer) => [offer.key, offer.bytes]), payloads.map((payload) => [null, hex(payload)]));
    assert.deepEqual(unmasked.pieces.map((piece) => hex(piece)), [hex(payloads[3])]);
  });

  test("a payload split across chunks is not offered: its pieces are delivered as usual", () => {
    const bytes = concatBytes(encodeFrame(Opcode.TEXT, ascii("split me"), true, 0, RFC_KEY));
    const taker = new WholeTaker(() => true);
    const parser = new FrameParser(taker, true, tuning);
    parser.push(bytes.slice(0, 9));
    parser.push(bytes.slice(9));
    assert.deepEqual(taker.offers, []);
    assert.equal(hex(concatBytes(taker.pieces)), hex(ascii("split me")));
  });
});

describe("writeSmallFrame and writeAsciiTextFrame: a frame written at an offset of a larger buffer", () => {
  test("the same bytes as encodeFrame's, masked and unmasked, and the end returned; the bytes around are untouched", () => {
    for (const length of [0, 5, 125, 126, MERGE_PAYLOAD_MAX]) {
      for (const key of [null, RFC_KEY]) {
        const text = "abcdefghij".repeat(103).slice(0, length);
        const expected = hex(concatBytes(encodeFrame(Opcode.TEXT, ascii(text), true, 0, key)));
        for (const write of [
          (target: Uint8Array, at: number) => writeAsciiTextFrame(target, at, text, key),
          (target: Uint8Array, at: number) => writeSmallFrame(target, at, Opcode.TEXT, ascii(text), true, 0, key),
        ]) {
          const target = new Uint8Array(1100).fill(0xee);
          const end = write(target, 7);
          assert.equal(hex(target.subarray(7, end)), expected, `${length} ${key ? "masked" : "unmasked"}`);
          assert.ok(target.subarray(0, 7).every((v) => v === 0xee) && target.subarray(end).every((v) => v === 0xee));
        }
      }
    }
  });

  test("writeSmallFrame keeps opcode, FIN and RSV bits; writeAsciiTextFrame returns -1 for text that is not ASCII", () => {
    const target = new Uint8Array(64);
    const end = writeSmallFrame(target, 3, Opcode.BINARY, ascii("xyz"), false, RSV1, null);
    assert.deepEqual(parse(target.subarray(3, end), false, [], RSV1).frames, [{ opcode: Opcode.BINARY, fin: false, rsv: RSV1, length: 3, payload: hex(ascii("xyz")) }]);
    for (const text of ["é", "abcé", "abcd\u0080", "\u{1f600}"]) assert.equal(writeAsciiTextFrame(target, 0, text, RFC_KEY), -1, JSON.stringify(text));
  });
});

describe("FrameParser: per-frame rules and close codes", () => {
  test("64-bit length with the most significant bit set: 1002", () => {
    assertError(b(0x82, 0x7f, 0x80, 0, 0, 0, 0, 0, 0, 1), false, 1002);
    assertError(b(0x82, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff), false, 1002);
  });

  test("64-bit length above 2^53-1: 1009", () => {
    assertError(b(0x82, 0x7f, 0x00, 0x20, 0, 0, 0, 0, 0, 0), false, 1009);
    assertError(b(0x82, 0x7f, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff), false, 1009);
    assertError(b(0x82, 0xff, 0x01, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4), true, 1009);
  });

  test("unmasked frame to a server, masked frame to a client: 1002", () => {
    assertError(b(0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f), true, 1002);
    assertError(b(0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58), false, 1002);
    assertError(b(0x89, 0x00), true, 1002, 0, "empty unmasked ping to a server");
    assertError(b(0x88, 0x80, 1, 2, 3, 4), false, 1002, 0, "empty masked close to a client");
  });

  test("reserved opcodes 3–7 and 0xB–0xF: 1002", () => {
    for (const opcode of [3, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf]) {
      assertError(b(0x80 | opcode, 0x00), false, 1002, 0, `opcode ${opcode}`);
      assertError(b(0x80 | opcode, 0x81, 1, 2, 3, 4, 5), true, 1002, 0, `masked opcode ${opcode}`);
      assertError(b(opcode, 0x00), false, 1002, 0, `opcode ${opcode} without FIN`);
    }
  });

  test("every defined opcode is accepted", () => {
    for (const opcode of [0, 1, 2, 8, 9, 10]) {
      const { frames, error } = parse(b(0x80 | opcode, 0x00), false);
      assert.equal(error, null, `opcode ${opcode}`);
      assert.deepEqual(frames, [{ opcode, fin: true, rsv: 0, length: 0, payload: "" }]);
    }
  });

  test("fragmented control frames: 1002", () => {
    for (const opcode of [8, 9, 10]) assertError(b(opcode, 0x00), false, 1002, 0, `opcode ${opcode} without FIN`);
  });

  test("control payload of 126 bytes: 1002; 125 is fine", () => {
    for (const opcode of [8, 9, 10]) {
      const bytes126 = concatBytes([b(0x80 | opcode, 126, 0, 126), new Uint8Array(126)]);
      assertError(bytes126, false, 1002, 0, `opcode ${opcode}, 126 bytes`);
      // Also when declared with a 64-bit length.
      assertError(b(0x80 | opcode, 127, 0, 0, 0, 0, 0, 0, 0, 126), false, 1002, 0, `opcode ${opcode}, 64-bit 126`);
      const payload = pattern(125);
      const ok = parse(concatBytes(encodeFrame(opcode, payload, true, 0, null)), false);
      assert.equal(ok.error, null);
      assert.deepEqual(ok.frames, [{ opcode, fin: true, rsv: 0, length: 125, payload: hex(payload) }]);
    }
  });

  test("RSV1, RSV2, RSV3 without allowedRsv: 1002", () => {
    for (const rsv of [RSV1, RSV2, RSV3, RSV1 | RSV2, RSV1 | RSV2 | RSV3]) {
      for (const opcode of [0, 1, 2, 8, 9, 10]) {
        assertError(b(0x80 | rsv | opcode, 0x00), false, 1002, 0, `rsv ${rsv.toString(16)} opcode ${opcode}`);
      }
    }
  });

  test("allowedRsv RSV1: accepted on a data message's first frame only", () => {
    // Text and binary, single-frame and the first of several.
    for (const first of [0xc1, 0xc2, 0x41, 0x42]) {
      const { frames, error } = parse(b(first, 0x01, 0x61), false, [], RSV1);
      assert.equal(error, null, hex([first]));
      assert.deepEqual(frames, [{ opcode: first & 0xf, fin: (first & 0x80) !== 0, rsv: RSV1, length: 1, payload: "61" }]);
    }
    // The continuation of a compressed message carries RSV1 = 0 (RFC 7692 §6.1).
    const fragmented = parse(b(0x41, 0x01, 0x61, 0x80, 0x01, 0x62), false, [], RSV1);
    assert.equal(fragmented.error, null);
    assert.equal(fragmented.frames.length, 2);
    // Rejected on continuation frames and on control frames.
    assertError(b(0x41, 0x01, 0x61, 0xc0, 0x01, 0x62), false, 1002, RSV1, "RSV1 on a continuation");
    for (const opcode of [8, 9, 10]) assertError(b(0xc0 | opcode, 0x00), false, 1002, RSV1, `RSV1 on opcode ${opcode}`);
    // Other bits are still rejected when only RSV1 is allowed.
    assertError(b(0xa1, 0x00), false, 1002, RSV1, "RSV2 with only RSV1 allowed");
    assertError(b(0x91, 0x00), false, 1002, RSV1, "RSV3 with only RSV1 allowed");
    assertError(b(0xd1, 0x00), false, 1002, RSV1, "RSV1|RSV3 with only RSV1 allowed");
  });

  test("frames before an error are reported in full; nothing after it", () => {
    const bytes = concatBytes([
      ...encodeFrame(Opcode.TEXT, ascii("ok"), true, 0, null),
      b(0x83, 0x00), // reserved opcode
      ...encodeFrame(Opcode.TEXT, ascii("never"), true, 0, null),
    ]);
    for (const result of [parse(bytes, false), parseByteByByte(bytes, false)]) {
      assert.deepEqual(result.frames, [{ opcode: 1, fin: true, rsv: 0, length: 2, payload: hex(ascii("ok")) }]);
      assert.equal(result.error?.[0], 1002);
    }
  });

  test("the parser stops after an error and ignores later chunks", () => {
    const recorder = new Recorder();
    const parser = new FrameParser(recorder, false);
    parser.push(b(0x83, 0x00, 0x81, 0x01, 0x61));
    assert.equal(parser.stopped, true);
    const after = recorder.records.length;
    parser.push(b(0x81, 0x01, 0x61));
    parser.push(b(0x89, 0x00));
    assert.equal(recorder.records.length, after);
    assert.deepEqual(recorder.records, [["error", 1002, recorder.records[0][2] as string]]);
  });

  test("onFrameStart returning false stops the parser: no payload, later chunks ignored", () => {
    const recorder = new Recorder(0);
    const parser = new FrameParser(recorder, false);
    parser.push(b(0x81, 0x02, 0x61, 0x62, 0x81, 0x00));
    assert.equal(parser.stopped, true);
    parser.push(b(0x81, 0x00));
    assert.deepEqual(recorder.records, [["start", 1, true, 0, 2]]);
  });

  test("onFramePayload returning false stops the parser mid-chunk", () => {
    const recorder = new Recorder(1);
    const parser = new FrameParser(recorder, false);
    parser.push(b(0x82, 0x01, 0x01, 0x82, 0x01, 0x02));
    parser.push(b(0x82, 0x01, 0x03));
    assert.deepEqual(recorder.records, [["start", 2, true, 0, 1], ["payload", "01", true]]);
    assert.equal(parser.stopped, true);
  });

  test("an empty frame's payload callback returning false stops the parser too", () => {
    const recorder = new Recorder(1);
    const parser = new FrameParser(recorder, false);
    parser.push(b(0x89, 0x00, 0x89, 0x00));
    assert.deepEqual(recorder.records, [["start", 9, true, 0, 0], ["payload", "", true]]);
  });

  test("stop() ends parsing, even of a frame in progress", () => {
    const recorder = new Recorder();
    const parser = new FrameParser(recorder, false);
    parser.push(b(0x82, 0x04, 1, 2));
    parser.stop();
    parser.push(b(3, 4, 0x82, 0x00));
    assert.deepEqual(recorder.records, [["start", 2, true, 0, 4], ["payload", "0102", false]]);
    assert.equal(parser.stopped, true);
  });
});

describe("writeFrameHeader and frameHeaderSize", () => {
  test("frameHeaderSize at the length class boundaries", () => {
    const cases: [number, number][] = [[0, 2], [125, 2], [126, 4], [65535, 4], [65536, 10], [2 ** 32 + 1, 10], [Number.MAX_SAFE_INTEGER, 10]];
    for (const [length, size] of cases) {
      assert.equal(frameHeaderSize(length, false), size, `${length} unmasked`);
      assert.equal(frameHeaderSize(length, true), size + 4, `${length} masked`);
    }
  });

  test("writes at an offset and returns the header size; the bytes around are untouched", () => {
    const cases: [number, boolean, string][] = [
      [0, false, "8200"],
      [125, false, "827d"],
      [126, false, "827e007e"],
      [65535, false, "827effff"],
      [65536, false, "827f0000000000010000"],
      [2 ** 32 + 1, false, "827f0000000100000001"],
      [Number.MAX_SAFE_INTEGER, false, "827f001fffffffffffff"],
      [5, true, "828537fa213d"],
      [65536, true, "82ff000000000001000037fa213d"],
    ];
    for (const [length, masked, expected] of cases) {
      const target = new Uint8Array(40).fill(0xee);
      const size = writeFrameHeader(target, 7, Opcode.BINARY, true, 0, length, masked ? RFC_KEY : null);
      assert.equal(size, frameHeaderSize(length, masked), `${length}`);
      assert.equal(hex(target.subarray(7, 7 + size)), expected, `${length} ${masked}`);
      assert.ok(target.subarray(0, 7).every((x) => x === 0xee));
      assert.ok(target.subarray(7 + size).every((x) => x === 0xee));
    }
  });

  test("FIN, RSV bits and opcode in the first byte", () => {
    const target = new Uint8Array(2);
    writeFrameHeader(target, 0, Opcode.TEXT, false, RSV1, 0, null);
    assert.equal(target[0], 0x41);
    writeFrameHeader(target, 0, Opcode.PONG, true, 0, 0, null);
    assert.equal(target[0], 0x8a);
    writeFrameHeader(target, 0, Opcode.CONTINUATION, true, RSV1 | RSV2 | RSV3, 0, null);
    assert.equal(target[0], 0xf0);
  });

  test("headers written for large lengths parse back to the same length", () => {
    for (const length of [65536, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 32 + 1, 2 ** 40 + 12345, Number.MAX_SAFE_INTEGER]) {
      const header = new Uint8Array(10);
      writeFrameHeader(header, 0, Opcode.BINARY, true, 0, length, null);
      assert.deepEqual(parse(header, false).records, [["start", 2, true, 0, length]], `${length}`);
    }
  });
});

describe("encodeFrame chunks", () => {
  test("a small payload is merged with its header into one chunk (up to MERGE_PAYLOAD_MAX)", () => {
    for (const length of [0, 1, 125, 126, MERGE_PAYLOAD_MAX]) {
      for (const key of [null, RFC_KEY]) {
        const payload = pattern(length);
        const before = hex(payload);
        const chunks = encodeFrame(Opcode.BINARY, payload, true, 0, key);
        assert.equal(chunks.length, 1, `${length} ${key ? "masked" : "unmasked"}`);
        assert.equal(chunks[0].length, frameHeaderSize(length, key !== null) + length);
        assert.equal(hex(payload), before, "the caller's payload is untouched");
        assert.deepEqual(parse(chunks[0], key !== null).frames[0].payload, before);
      }
    }
  });

  test("a large unmasked payload is returned uncopied, as the second chunk", () => {
    for (const length of [MERGE_PAYLOAD_MAX + 1, 65536]) {
      const payload = pattern(length);
      const chunks = encodeFrame(Opcode.BINARY, payload, false, RSV1, null);
      assert.equal(chunks.length, 2);
      assert.equal(chunks[1], payload, "the same object");
      assert.equal(chunks[0].length, frameHeaderSize(length, false));
      assert.equal(chunks[0][0], 0x42);
    }
  });

  test("a large masked payload is masked in a copy", () => {
    const payload = pattern(5000);
    const before = hex(payload);
    const chunks = encodeFrame(Opcode.BINARY, payload, true, 0, RFC_KEY);
    assert.equal(chunks.length, 2);
    assert.notEqual(chunks[1], payload);
    assert.notEqual(chunks[1].buffer, payload.buffer);
    assert.equal(hex(payload), before, "the caller's payload is untouched");
    assert.notEqual(hex(chunks[1]), before, "the copy is masked");
    assert.equal(parse(concatBytes(chunks), true).frames[0].payload, before);
  });

  test("a large masked payload marked payloadIsOwned is masked in place, uncopied", () => {
    const payload = pattern(5000);
    const before = hex(payload);
    const chunks = encodeFrame(Opcode.BINARY, payload, true, 0, RFC_KEY, true);
    assert.equal(chunks.length, 2);
    assert.equal(chunks[1], payload);
    assert.notEqual(hex(payload), before);
    assert.equal(parse(concatBytes(chunks), true).frames[0].payload, before);
  });

  test("a masked view into a larger buffer is masked over its own bytes only", () => {
    const buffer = pattern(8000);
    const snapshot = buffer.slice();
    const view = buffer.subarray(1001, 7003);
    const chunks = encodeFrame(Opcode.BINARY, view, true, 0, RFC_KEY, true);
    assert.deepEqual(buffer.subarray(0, 1001), snapshot.subarray(0, 1001));
    assert.deepEqual(buffer.subarray(7003), snapshot.subarray(7003));
    assert.equal(parse(concatBytes(chunks), true).frames[0].payload, hex(snapshot.subarray(1001, 7003)));
  });
});
