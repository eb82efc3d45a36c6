/**
 * Chunking invariance: the same received bytes give the same events and the same output bytes
 * whether they arrive as one chunk, one byte at a time, or cut at random points.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { concatBytes } from "../../core/bytes.ts";
import { MAX_PENDING_PONGS } from "../../core/connection.ts";
import type { Connection, ConnectionEvent, ConnectionOptions } from "../../core/mod.ts";
import { encodeFrame, FrameParser, type FrameHandler, Opcode } from "../../core/frame.ts";
import { hex } from "../support/bytes.ts";
import { createPair, drainOutput } from "../support/core-pair.ts";
import { createTuning } from "../../core/tuning.ts";
import { testAsciiDecoder, TuningScope } from "../support/core-settings.ts";

/** The tuning of the connections and parsers the tests below create. */
const tuning = new TuningScope();

// ---- Deterministic randomness ------------------------------------------------------------

/** mulberry32: a small seeded PRNG. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A `random` option that yields the same bytes for every connection built with the same seed. */
function seededRandom(seed: number): (target: Uint8Array) => void {
  const next = prng(seed);
  return (target) => {
    for (let i = 0; i < target.length; i++) target[i] = (next() * 256) | 0;
  };
}

const encoder = new TextEncoder();

// ---- Frame sequences ---------------------------------------------------------------------

interface WireFrame {
  opcode: number;
  fin: boolean;
  payload: Uint8Array;
  rsv?: number;
}

/** Events as plain data, comparable with deepEqual. */
type Normalized = Record<string, unknown>;

function normalize(event: ConnectionEvent): Normalized {
  const out: Normalized = {};
  for (const [key, value] of Object.entries(event)) {
    out[key] = value instanceof Uint8Array ? hex(value) : value;
  }
  return out;
}

interface Scenario {
  name: string;
  frames: WireFrame[];
  /** Events expected, in order. */
  events: Normalized[];
  /** Frames the receiver writes back (pongs, close), in order. */
  replies: WireFrame[];
}

const CHARS = ["a", "Z", " ", "~", "\ufeff", "\u00e9", "\u00df", "\u07ff", "\u0800", "\u20ac", "\u65e5", "\uffff", "\u{10000}", "\u{1f600}", "\u{10ffff}"];

function randomText(next: () => number, byteTarget: number): string {
  let text = "";
  let bytes = 0;
  while (bytes < byteTarget) {
    // Mostly ASCII so sizes land near the target, with multi-byte characters sprinkled in.
    const ch = next() < 0.7 ? String.fromCharCode(0x20 + ((next() * 95) | 0)) : CHARS[(next() * CHARS.length) | 0];
    text += ch;
    bytes += encoder.encode(ch).length;
  }
  return text;
}

function randomBytes(next: () => number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = (next() * 256) | 0;
  return out;
}

/** A message size: empty, small, around the 7/16-bit boundary, medium, or (rarely) 64-bit. */
function randomSize(next: () => number, allowLarge: boolean): number {
  const r = next();
  if (r < 0.1) return 0;
  if (r < 0.45) return 1 + ((next() * 125) | 0);
  if (r < 0.6) return [125, 126, 127][(next() * 3) | 0];
  if (r < 0.9 || !allowLarge) return 128 + ((next() * 3000) | 0);
  return [65535, 65536, 65537, 70_000][(next() * 4) | 0];
}

function controlFrame(next: () => number, events: Normalized[], replies: WireFrame[]): WireFrame {
  const payload = randomBytes(next, next() < 0.3 ? 0 : next() < 0.9 ? 1 + ((next() * 20) | 0) : 125);
  if (next() < 0.6) {
    events.push({ type: "ping", data: hex(payload) });
    replies.push({ opcode: Opcode.PONG, fin: true, payload });
    return { opcode: Opcode.PING, fin: true, payload };
  }
  events.push({ type: "pong", data: hex(payload) });
  return { opcode: Opcode.PONG, fin: true, payload };
}

/** Sorted cut points (duplicates allowed: empty fragments) splitting `length` bytes into `parts`. */
function cutPoints(next: () => number, length: number, parts: number): number[] {
  const cuts: number[] = [];
  for (let i = 1; i < parts; i++) cuts.push((next() * (length + 1)) | 0);
  return cuts.sort((a, b) => a - b);
}

/** Adds one data message (maybe fragmented, with control frames between its fragments). */
function addMessage(next: () => number, s: Scenario, allowLarge: boolean): void {
  const text = next() < 0.55;
  const size = randomSize(next, allowLarge);
  let payload: Uint8Array;
  if (text) {
    const value = randomText(next, size);
    payload = encoder.encode(value);
    s.events.push({ type: "text", data: value });
  } else {
    payload = randomBytes(next, size);
    s.events.push({ type: "binary", data: hex(payload) });
  }
  const event = s.events.pop()!; // the message event comes after any control frame inside it
  const parts = next() < 0.5 ? 1 : 2 + ((next() * 5) | 0);
  const cuts = [0, ...cutPoints(next, payload.length, parts), payload.length];
  for (let i = 0; i < parts; i++) {
    s.frames.push({
      opcode: i === 0 ? (text ? Opcode.TEXT : Opcode.BINARY) : Opcode.CONTINUATION,
      fin: i === parts - 1,
      payload: payload.subarray(cuts[i], cuts[i + 1]), // may split a character between frames
    });
    if (i < parts - 1 && next() < 0.4) s.frames.push(controlFrame(next, s.events, s.replies));
  }
  s.events.push(event);
}

/** The close event after the peer's close frame, which our reply echoes the code of. */
function peerClose(code: number, reason: string): Normalized {
  const sent = { code, reason: "" };
  return { type: "close", code, reason, wasClean: true, sent, received: { code, reason }, initiator: "remote" };
}

function closeFrame(next: () => number, s: Scenario): void {
  const r = next();
  if (r < 0.2) {
    s.frames.push({ opcode: Opcode.CLOSE, fin: true, payload: new Uint8Array(0) });
    s.events.push(peerClose(1005, ""));
    s.replies.push({ opcode: Opcode.CLOSE, fin: true, payload: new Uint8Array(0) });
    return;
  }
  const code = [1000, 1001, 1003, 1011, 3000, 4999][(next() * 6) | 0];
  const reason = r < 0.5 ? "" : randomText(next, (next() * 60) | 0);
  const reasonBytes = encoder.encode(reason);
  const payload = new Uint8Array(2 + reasonBytes.length);
  payload[0] = code >> 8;
  payload[1] = code & 0xff;
  payload.set(reasonBytes, 2);
  s.frames.push({ opcode: Opcode.CLOSE, fin: true, payload });
  s.events.push(peerClose(code, reason));
  // RFC 6455 §5.5.1: the reply echoes the status code.
  s.replies.push({ opcode: Opcode.CLOSE, fin: true, payload: payload.slice(0, 2) });
}

function generateScenario(seed: number, allowLarge: boolean): Scenario {
  const next = prng(seed);
  const s: Scenario = { name: `seed ${seed}`, frames: [], events: [], replies: [] };
  const count = 2 + ((next() * 10) | 0);
  for (let i = 0; i < count; i++) {
    if (next() < 0.2) s.frames.push(controlFrame(next, s.events, s.replies));
    else addMessage(next, s, allowLarge);
  }
  closeFrame(next, s);
  return s;
}

/** Serializes frames as a client (masked, seeded keys) or a server (unmasked) would. */
function toWire(frames: WireFrame[], masked: boolean, seed: number): Uint8Array {
  const next = prng(seed ^ 0x5eed);
  const chunks: Uint8Array[] = [];
  for (const f of frames) {
    const key = masked ? randomBytes(next, 4) : null;
    chunks.push(...encodeFrame(f.opcode, f.payload, f.fin, f.rsv ?? 0, key));
  }
  return concatBytes(chunks);
}

// ---- Feeding ------------------------------------------------------------------------------

type Role = "server" | "client";

/** A connection of `role`, open, with its opening handshake's events and output drained. */
function openConnection(role: Role, options: ConnectionOptions = {}): Connection {
  const pair = createPair({ client: { random: seededRandom(42), ...options }, server: options, tuning: tuning.current });
  assert.equal(pair.server.readyState, 1, "server open");
  assert.equal(pair.client.readyState, 1, "client open");
  assert.ok(pair.serverEvents.some((e) => e.type === "open"));
  assert.ok(pair.clientEvents.some((e) => e.type === "open"));
  const connection = role === "server" ? pair.server : pair.client;
  connection.pollEvents();
  assert.equal(drainOutput(connection).length, 0);
  return connection;
}

interface Outcome {
  events: Normalized[];
  output: string;
}

/**
 * Feeds fresh copies of `bytes`, cut at `cuts`, into a fresh open connection. The output is
 * polled once, at the end: while it waits, pongs to later pings replace the automatic pong in it
 * (RFC 6455 §5.5.3), so what is written depends on when it is polled, not on the chunking.
 */
function feed(role: Role, bytes: Uint8Array, cuts: number[], options?: ConnectionOptions): Outcome {
  const connection = openConnection(role, options);
  const events: Normalized[] = [];
  let from = 0;
  for (const to of [...cuts, bytes.length]) {
    if (to === from) continue;
    connection.receive(bytes.slice(from, to)); // a fresh copy: receive() may unmask in place
    // Normalize at once: events may hold views of the chunk just received.
    // Polled until none are left, as an owner does: a failure or close frame that came after
    // events takes effect once they were polled.
    for (let polled = connection.pollEvents(); polled.length !== 0; polled = connection.pollEvents()) {
      for (const event of polled) events.push(normalize(event));
    }
    from = to;
  }
  const output = hex(concatBytes(connection.pollOutput()));
  return { events: options?.streamThreshold !== undefined ? mergeFragments(events) : events, output };
}

/**
 * `replies` as written when polled once: past MAX_PENDING_PONGS pongs, the last pong answers the
 * last ping, in the place of the first pong it replaced.
 */
function coalescePongs(replies: WireFrame[]): WireFrame[] {
  const pongs = replies.filter((r) => r.opcode === Opcode.PONG);
  if (pongs.length <= MAX_PENDING_PONGS) return replies;
  const replaced = new Set(pongs.slice(MAX_PENDING_PONGS - 1));
  const at = replies.indexOf(pongs[MAX_PENDING_PONGS - 1]);
  return replies.flatMap((r, i) => (i === at ? [pongs.at(-1)!] : replaced.has(r) ? [] : [r]));
}

/**
 * Streamed messages arrive as `fragment` events whose boundaries depend on the chunking; they are
 * merged into one `text`/`binary` event marked `streamed`, where their last part arrived.
 */
function mergeFragments(events: Normalized[]): Normalized[] {
  const out: Normalized[] = [];
  let parts: string[] | null = null;
  for (const e of events) {
    if (e.type !== "fragment") {
      out.push(e);
      continue;
    }
    parts ??= [];
    parts.push(e.data as string);
    if (e.fin) {
      out.push({ type: e.binary ? "binary" : "text", data: parts.join(""), streamed: true });
      parts = null;
    }
  }
  assert.equal(parts, null, "a streamed message was left unfinished");
  return out;
}

function randomCuts(length: number, seed: number): number[] {
  const next = prng(seed);
  const cuts: number[] = [];
  let at = 0;
  for (;;) {
    // Mostly short pieces (headers split often), sometimes long ones.
    at += next() < 0.7 ? 1 + ((next() * 9) | 0) : 1 + ((next() * 3000) | 0);
    if (at >= length) return cuts;
    cuts.push(at);
  }
}

function everyByte(length: number): number[] {
  return Array.from({ length: Math.max(0, length - 1) }, (_, i) => i + 1);
}

/** Decodes what the connection wrote back (masked when the client wrote it). */
function parseReplies(outputHex: string, masked: boolean): { opcode: number; fin: boolean; payload: string }[] {
  const frames: { opcode: number; fin: boolean; payload: string }[] = [];
  const handler: FrameHandler = {
    onFrameStart(opcode, fin) {
      frames.push({ opcode, fin, payload: "" });
      return true;
    },
    onFramePayload(data) {
      frames[frames.length - 1].payload += hex(data);
      return true;
    },
    onFrameError(code, reason) {
      assert.fail(`reply does not parse: ${code} ${reason}`);
    },
  };
  const bytes = Uint8Array.from((outputHex.match(/../g) ?? []).map((h) => parseInt(h, 16)));
  new FrameParser(handler, masked, tuning.current).push(bytes);
  return frames;
}

/** Runs `bytes` whole, byte by byte and at random cuts; all must agree. Returns the outcome. */
function assertInvariant(role: Role, bytes: Uint8Array, label: string, seeds: number[], options?: ConnectionOptions): Outcome {
  const whole = feed(role, bytes, [], options);
  const single = feed(role, bytes, everyByte(bytes.length), options);
  assert.deepEqual(single.events, whole.events, `${label}: events, one byte at a time vs one chunk`);
  assert.equal(single.output, whole.output, `${label}: output, one byte at a time vs one chunk`);
  for (const seed of seeds) {
    const random = feed(role, bytes, randomCuts(bytes.length, seed), options);
    assert.deepEqual(random.events, whole.events, `${label}: events, random cuts (seed ${seed}) vs one chunk`);
    assert.equal(random.output, whole.output, `${label}: output, random cuts (seed ${seed}) vs one chunk`);
  }
  return whole;
}

function assertScenario(role: Role, s: Scenario, seed: number): void {
  const masked = role === "server"; // frames towards a server are masked
  const bytes = toWire(s.frames, masked, seed);
  const outcome = assertInvariant(role, bytes, `${role} ${s.name}`, [seed, seed + 1000, seed + 2000]);
  assert.deepEqual(outcome.events, s.events, `${role} ${s.name}: the expected messages`);
  const replies = parseReplies(outcome.output, !masked);
  const expected = coalescePongs(s.replies);
  assert.deepEqual(
    replies,
    expected.map((r) => ({ opcode: r.opcode, fin: true, payload: hex(r.payload) })),
    `${role} ${s.name}: the pong and the close reply`,
  );
  if (role === "server") {
    // A server's frames are unmasked: its output is exactly the replies, serialized.
    assert.equal(outcome.output, hex(toWire(expected, false, 0)));
  }
}

// ---- Tests --------------------------------------------------------------------------------

const SEEDS = Array.from({ length: 30 }, (_, i) => i + 1);

// With an ASCII decoder installed, whole short text frames skip the payload view (core/connection.ts);
// with a copy limit, short payload pieces are copies, not views (core/frame.ts).
const ENGINE_VARIANTS = [
  { name: "", ascii: false, copyLimit: 0 },
  { name: ", with an ASCII decoder", ascii: true, copyLimit: 0 },
  { name: ", short payloads copied", ascii: false, copyLimit: 128 },
];
for (const v of ENGINE_VARIANTS) describe(`chunking invariance, client → server (masked)${v.name}`, () => tuning.within(createTuning({ asciiDecoder: v.ascii ? testAsciiDecoder : null, payloadCopyLimit: v.copyLimit }), () => {
  test("generated sequences (small and medium messages)", () => {
    let frames = 0;
    for (const seed of SEEDS) {
      const s = generateScenario(seed, false);
      frames += s.frames.length;
      assertScenario("server", s, seed);
    }
    assert.ok(frames > 150, `${frames} frames`);
  });

  test("generated sequences with 64-bit lengths", () => {
    let large = 0;
    for (const seed of [101, 102, 103, 104]) {
      const s = generateScenario(seed, true);
      large += s.frames.filter((f) => f.payload.length >= 65536).length; // frames with a 64-bit length
      assertScenario("server", s, seed);
    }
    assert.ok(large >= 2, `${large} frames with a 64-bit length`);
  });

  test("hand-made sequence: every length class, empty frames, a character split across fragments", () => {
    const euro = encoder.encode("\u20ac\u{1f600}");
    const frames: WireFrame[] = [
      { opcode: Opcode.TEXT, fin: true, payload: new Uint8Array(0) },
      { opcode: Opcode.BINARY, fin: true, payload: new Uint8Array(0) },
      { opcode: Opcode.TEXT, fin: false, payload: Uint8Array.of(0xef, 0xbb) }, // a BOM is kept, not stripped
      { opcode: Opcode.CONTINUATION, fin: true, payload: Uint8Array.of(0xbf, 0x41) },
      { opcode: Opcode.TEXT, fin: false, payload: euro.subarray(0, 1) },
      { opcode: Opcode.PING, fin: true, payload: new Uint8Array(0) },
      { opcode: Opcode.CONTINUATION, fin: false, payload: new Uint8Array(0) },
      { opcode: Opcode.CONTINUATION, fin: false, payload: euro.subarray(1, 5) },
      { opcode: Opcode.PONG, fin: true, payload: Uint8Array.of(1, 2, 3) },
      { opcode: Opcode.CONTINUATION, fin: true, payload: euro.subarray(5) },
      { opcode: Opcode.BINARY, fin: true, payload: new Uint8Array(125).fill(1) },
      { opcode: Opcode.BINARY, fin: true, payload: new Uint8Array(126).fill(2) },
      { opcode: Opcode.BINARY, fin: true, payload: new Uint8Array(65535).fill(3) },
      { opcode: Opcode.BINARY, fin: true, payload: new Uint8Array(65536).fill(4) },
      { opcode: Opcode.CLOSE, fin: true, payload: Uint8Array.of(0x03, 0xe8, 0x6f, 0x6b) },
    ];
    const s: Scenario = {
      name: "hand-made",
      frames,
      events: [
        { type: "text", data: "" },
        { type: "binary", data: "" },
        { type: "text", data: "\ufeffA" },
        { type: "ping", data: "" },
        { type: "pong", data: "010203" },
        { type: "text", data: "\u20ac\u{1f600}" },
        { type: "binary", data: "01".repeat(125) },
        { type: "binary", data: "02".repeat(126) },
        { type: "binary", data: "03".repeat(65535) },
        { type: "binary", data: "04".repeat(65536) },
        peerClose(1000, "ok"),
      ],
      replies: [
        { opcode: Opcode.PONG, fin: true, payload: new Uint8Array(0) },
        { opcode: Opcode.CLOSE, fin: true, payload: Uint8Array.of(0x03, 0xe8) },
      ],
    };
    assertScenario("server", s, 7);
  });

  test("bytes after the close frame are ignored in every chunking", () => {
    const s = generateScenario(77, false);
    const bytes = concatBytes([toWire(s.frames, true, 77), toWire([{ opcode: Opcode.TEXT, fin: true, payload: encoder.encode("late") }], true, 1)]);
    const outcome = assertInvariant("server", bytes, "after close", [1, 2]);
    assert.deepEqual(outcome.events, s.events);
  });
}));

for (const copyLimit of [0, 128]) describe(`chunking invariance, server → client (unmasked)${copyLimit ? ", short payloads copied" : ""}`, () => tuning.within(createTuning({ payloadCopyLimit: copyLimit }), () => {
  test("generated sequences (small and medium messages)", () => {
    for (const seed of SEEDS) assertScenario("client", generateScenario(seed + 500, false), seed + 500);
  });

  test("generated sequences with 64-bit lengths", () => {
    for (const seed of [201, 202, 203, 204]) assertScenario("client", generateScenario(seed, true), seed);
  });
}));

describe("chunking invariance with streaming (streamThreshold)", () => {
  const threshold = 100;
  const size = (e: Normalized) => (e.type === "binary" ? (e.data as string).length / 2 : encoder.encode(e.data as string).length);
  for (const role of ["server", "client"] as const) {
    test(`${role}: streamed messages reassemble to the same bytes in every chunking`, () => {
      let streamed = 0;
      for (const seed of [901, 902, 903, 904, 905, 906, 907, 908]) {
        const s = generateScenario(seed, false);
        const bytes = toWire(s.frames, role === "server", seed);
        const outcome = assertInvariant(role, bytes, `${role} streaming seed ${seed}`, [seed], { streamThreshold: threshold });
        const expected = s.events.map((e) =>
          (e.type === "text" || e.type === "binary") && size(e) > threshold ? { ...e, streamed: true } : e
        );
        assert.deepEqual(outcome.events, expected, `${role} streaming seed ${seed}`);
        streamed += expected.filter((e) => e.streamed).length;
      }
      assert.ok(streamed >= 5, `${streamed} streamed messages`);
    });
  }
});

// ---- Invalid sequences ------------------------------------------------------------------

interface BadCase {
  name: string;
  /** Frames before the bad one: all valid, their events expected in full. */
  before: Scenario;
  /** The offending frames, then more frames that must be ignored. */
  bad: WireFrame[];
  code: number;
  /** Events from the offending frames before the failure (a ping inside the bad message). */
  extraEvents?: Normalized[];
  extraReplies?: WireFrame[];
}

function validPrefix(seed: number): Scenario {
  const next = prng(seed);
  const s: Scenario = { name: `prefix ${seed}`, frames: [], events: [], replies: [] };
  for (let i = 0; i < 4; i++) {
    if (next() < 0.3) s.frames.push(controlFrame(next, s.events, s.replies));
    else addMessage(next, s, false);
  }
  return s;
}

const text = (value: string | Uint8Array, fin = true, opcode: number = Opcode.TEXT): WireFrame => ({
  opcode,
  fin,
  payload: typeof value === "string" ? encoder.encode(value) : value,
});
const cont = (value: string | Uint8Array, fin = true) => text(value, fin, Opcode.CONTINUATION);
const bytesOf = (...parts: (string | number[])[]) =>
  concatBytes(parts.map((p) => (typeof p === "string" ? encoder.encode(p) : Uint8Array.from(p))));
const TRAILER: WireFrame[] = [
  text("ignored"),
  { opcode: Opcode.PING, fin: true, payload: Uint8Array.of(9) },
  { opcode: Opcode.CLOSE, fin: true, payload: Uint8Array.of(0x03, 0xe8) },
];

function badCases(seed: number): BadCase[] {
  return [
    {
      name: "surrogate in the middle of a single-frame text message",
      before: validPrefix(seed),
      bad: [text(bytesOf("hello ", [0xed, 0xa0, 0x80], " world")), ...TRAILER],
      code: 1007,
    },
    {
      name: "invalid UTF-8 in the second fragment, after an interleaved ping",
      before: validPrefix(seed + 1),
      bad: [
        text(bytesOf("abc", [0xe2]), false),
        { opcode: Opcode.PING, fin: true, payload: Uint8Array.of(7, 7) },
        cont(bytesOf([0x82, 0xac], "ok", [0xf4, 0x90, 0x80, 0x80], "tail")),
        ...TRAILER,
      ],
      code: 1007,
      extraEvents: [{ type: "ping", data: "0707" }],
      extraReplies: [{ opcode: Opcode.PONG, fin: true, payload: Uint8Array.of(7, 7) }],
    },
    {
      name: "a character split across fragments that turns out overlong",
      before: validPrefix(seed + 2),
      bad: [text(bytesOf("x", [0xf0]), false), cont(Uint8Array.of(0x8f, 0xbf, 0xbf)), ...TRAILER],
      code: 1007,
    },
    {
      name: "a lone continuation byte in a long text frame (16-bit length)",
      before: validPrefix(seed + 3),
      bad: [text(bytesOf("a".repeat(300), [0x80], "b".repeat(300))), ...TRAILER],
      code: 1007,
    },
    {
      name: "reserved opcode mid-stream",
      before: validPrefix(seed + 4),
      bad: [{ opcode: 0x3, fin: true, payload: bytesOf("x") }, ...TRAILER],
      code: 1002,
    },
    {
      name: "reserved opcode between fragments",
      before: validPrefix(seed + 5),
      bad: [text("part", false), { opcode: 0xb, fin: true, payload: new Uint8Array(0) }, cont("rest"), ...TRAILER],
      code: 1002,
    },
    {
      name: "RSV1 without an extension",
      before: validPrefix(seed + 6),
      bad: [{ opcode: Opcode.BINARY, fin: true, rsv: 0x40, payload: bytesOf("x") }, ...TRAILER],
      code: 1002,
    },
    {
      name: "continuation without a message",
      before: validPrefix(seed + 7),
      bad: [cont("orphan"), ...TRAILER],
      code: 1002,
    },
    {
      name: "new data frame inside a fragmented message",
      before: validPrefix(seed + 8),
      bad: [text("one", false), text("two"), ...TRAILER],
      code: 1002,
    },
    {
      name: "fragmented ping",
      before: validPrefix(seed + 9),
      bad: [{ opcode: Opcode.PING, fin: false, payload: bytesOf("p") }, ...TRAILER],
      code: 1002,
    },
    {
      name: "close frame with an invalid code",
      before: validPrefix(seed + 10),
      bad: [{ opcode: Opcode.CLOSE, fin: true, payload: Uint8Array.of(0x03, 0xed) }, ...TRAILER],
      code: 1002,
    },
    {
      name: "close frame with invalid UTF-8 in its reason",
      before: validPrefix(seed + 11),
      bad: [{ opcode: Opcode.CLOSE, fin: true, payload: Uint8Array.of(0x03, 0xe8, 0xc0, 0xaf) }, ...TRAILER],
      code: 1007,
    },
  ];
}

function assertBadCase(role: Role, c: BadCase, seed: number): void {
  const masked = role === "server";
  const frames = [...c.before.frames, ...c.bad];
  const bytes = toWire(frames, masked, seed);
  const label = `${role}: ${c.name}`;
  const outcome = assertInvariant(role, bytes, label, [seed, seed + 1]);
  const last = outcome.events.at(-1)!;
  assert.equal(last.type, "error", `${label}: ends with an error event`);
  assert.equal(last.code, c.code, `${label}: close code`);
  assert.deepEqual(outcome.events.slice(0, -1), [...c.before.events, ...(c.extraEvents ?? [])], `${label}: the events before the error`);
  // The pong for the last ping before the error, then a close frame with the code and the reason.
  const replies = parseReplies(outcome.output, !masked);
  const close = replies.at(-1)!;
  assert.equal(close.opcode, Opcode.CLOSE, `${label}: a close frame is sent`);
  assert.equal(close.payload.slice(0, 4), c.code.toString(16).padStart(4, "0"), `${label}: the close frame's code`);
  assert.deepEqual(
    replies.slice(0, -1),
    coalescePongs([...c.before.replies, ...(c.extraReplies ?? [])]).map((r) => ({ opcode: r.opcode, fin: true, payload: hex(r.payload) })),
    `${label}: replies before the close frame`,
  );
}

describe("chunking invariance of failures", () => {
  for (const role of ["server", "client"] as const) {
    test(`${role}: invalid sequences fail identically in every chunking`, () => {
      for (const seed of [11, 12, 13]) {
        for (const c of badCases(seed * 100)) assertBadCase(role, c, seed);
      }
    });
  }

  test("server: a text message that ends inside a character", () => {
    for (const tail of [[0xc3], [0xe2, 0x82], [0xf0, 0x9f, 0x98]]) {
      const c: BadCase = {
        name: `text ending with ${hex(tail)}`,
        before: validPrefix(300),
        bad: [text(bytesOf("abc", tail)), ...TRAILER],
        code: 1007,
      };
      assertBadCase("server", c, 5);
    }
  });

  test("server: a fragmented text message whose last fragment ends inside a character", () => {
    const c: BadCase = {
      name: "fragmented text ending with e2 82",
      before: validPrefix(301),
      bad: [text("abc", false), cont(bytesOf("d", [0xe2, 0x82])), ...TRAILER],
      code: 1007,
    };
    assertBadCase("server", c, 6);
  });
});
