/**
 * The core fuzzer (tests/fuzz/README.md): seeded random, near-valid and hostile frame streams fed
 * to both roles after a real handshake, whole, one byte at a time and in random pieces. Nothing
 * may throw out of `receive`/`tick`/`receiveEof`; every chunking must give the same events and
 * output; what a connection holds stays bounded by its limits; and ws's Receiver must reach the
 * same verdict on the same bytes, or differ only as tests/fuzz/differences.ts records.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { concatBytes } from "../../core/bytes.ts";
import { FrameParser } from "../../core/frame.ts";
import { hex } from "../support/bytes.ts";
import { type Case, checkCase, heldBound, makeCase, orderProblem, report, settings, shrink } from "./fuzz.ts";
import { KNOWN_DIFFERENCES } from "./differences.ts";
import { cutsFor, feed, heldBytes, normalize, type Normalized, openConnection, type Role } from "./core-runner.ts";
import { Random } from "./random.ts";
import { BREAKS, controlFrame, type FrameSpec, randomText, serialize } from "./streams.ts";

/** Cases run by `npm test`; ANYWS_FUZZ_ITERATIONS runs more (or fewer), from ANYWS_FUZZ_SEED on. */
const DEFAULT_ITERATIONS = 1000;

describe("core fuzzer", () => {
  test("random streams in every chunking, both roles, against ws's Receiver", () => {
    const { iterations, seed } = settings(DEFAULT_ITERATIONS);
    const explained = new Map<string, number>();
    const kinds = new Map<string, number>();
    const verdicts = new Map<string, number>();
    for (let i = 0; i < iterations; i++) {
      const c: Case = makeCase(seed + i);
      const problem = checkCase(c, { differential: true, explained, verdicts });
      if (problem) assert.fail(report(shrink(problem, { differential: true })));
      const kind = `${c.role} ${c.kind}${c.rule ? ` ${c.rule}` : ""}`;
      kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
    }
    // The generators must keep producing what the checks are about: every broken rule in both
    // roles, and streams that end open, closed and failed with each of the usual codes.
    if (iterations >= DEFAULT_ITERATIONS) {
      for (const role of ["server", "client"]) {
        for (const rule of BREAKS) assert.ok(kinds.has(`${role} near-valid ${rule}`), `no ${role} case breaks ${rule}`);
        for (const kind of ["valid", "random-frames", "mutated", "random-bytes"]) assert.ok(kinds.has(`${role} ${kind}`), `no ${role} ${kind} case`);
      }
      for (const key of ["open", "close", "fail 1002", "fail 1007", "fail 1009"]) assert.ok(verdicts.has(key), `no case ends ${key}: ${JSON.stringify([...verdicts])}`);
      // Each recorded difference must still be one the fuzzer meets; an entry never used is stale.
      for (const d of KNOWN_DIFFERENCES) if (!d.deflateOnly) assert.ok(explained.has(d.id), `known difference "${d.id}" explained no case`);
    }
  });

  test("with time passing between reads (keepalive, idle and close timeouts), nothing throws and events and frames stay in order", () => {
    const { iterations, seed } = settings(DEFAULT_ITERATIONS);
    for (let i = 0; i < Math.ceil(iterations / 5); i++) {
      const c = makeCase(seed + i);
      const random = new Random(c.seed ^ 0x68e31da4);
      const options = {
        ...c.limits,
        keepaliveInterval: random.pick([0, 5, 50]),
        pongTimeout: random.pick([1, 20]),
        idleTimeout: random.pick([0, 10, 100]),
        closeTimeout: random.pick([1, 30]),
      };
      const connection = openConnection(c.role, options, c.seed);
      const events: Normalized[] = [];
      const output: Uint8Array[] = [];
      const where = `seed ${c.seed}, ${c.role}, options ${JSON.stringify(options)}, bytes ${hex(c.bytes)}`;
      let now = 0;
      let from = 0;
      const step = (what: () => void) => {
        try {
          what();
        } catch (error) {
          assert.fail(`${(error as Error).stack} (${where})`);
        }
        for (const event of connection.pollEvents()) events.push(normalize(event));
        for (const chunk of connection.pollOutput()) output.push(chunk.slice());
      };
      for (const to of [...cutsFor("random", c.bytes.length, random), c.bytes.length]) {
        now += random.int(20);
        step(() => connection.tick(now));
        if (to > from) step(() => connection.receive(c.bytes.slice(from, to)));
        from = to;
      }
      step(() => connection.tick(now + 1e6));
      step(() => connection.receiveEof());
      assert.equal(orderProblem(events), null, where);
      // What it wrote parses as frames (masked by a client, RFC 6455 §5.3): no data frame (it
      // sent none), at most one close frame.
      const frames: number[] = [];
      const parser = new FrameParser({
        onFrameStart: (opcode) => (frames.push(opcode), true),
        onFramePayload: () => true,
        onFrameError: (code, reason) => assert.fail(`output does not parse: ${code} ${reason} (${where})`),
      }, c.role === "client");
      parser.push(concatBytes(output));
      assert.ok(frames.every((opcode) => opcode >= 0x8), `data frames written: ${frames} (${where})`);
      assert.ok(frames.filter((opcode) => opcode === 0x8).length <= 1, `more than one close frame: ${frames} (${where})`);
    }
  });

  for (const role of ["server", "client"] as const) {
    test(`${role}: bytes held stay bounded by the limits over a long valid stream in small reads`, () => {
      const limits = { maxMessageSize: 1000, maxFragments: 8 };
      const { bytes, messages } = longStream(role, 11, 200_000, limits);
      const random = new Random(12);
      // Pieces of 1 to 64 bytes: thousands of reads and frames.
      const small: number[] = [];
      for (let at = random.range(1, 64); at < bytes.length; at += random.range(1, 64)) small.push(at);
      const connection = openConnection(role, limits, 11);
      const outcome = feed(connection, bytes, small, true, false);
      assert.equal(outcome.threw, null);
      assert.equal(outcome.events.filter((e) => e.type === "text" || e.type === "binary").length, messages, "every message delivered");
      assert.ok(!outcome.events.some((e) => e.type === "error"), "no error");
      const bound = heldBound(limits, bytes.length, 64);
      assert.ok(outcome.maxHeld <= bound, `held ${outcome.maxHeld} bytes over ${bytes.length} bytes in ${small.length + 1} reads; bound ${bound}`);
      assert.ok(heldBytes(connection) <= bound);
    });
  }
});

/** Valid frames of at least `size` bytes within `limits`, towards `role`: messages, fragments, control frames. */
function longStream(role: Role, seed: number, size: number, limits: { maxMessageSize: number; maxFragments: number }): { bytes: Uint8Array; messages: number } {
  const random = new Random(seed);
  const masked = role === "server";
  const frames: FrameSpec[] = [];
  let total = 0;
  let messages = 0;
  while (total < size) {
    const n = random.chance(0.1) ? limits.maxMessageSize : random.int(limits.maxMessageSize);
    const text = random.chance(0.5);
    const payload = text ? randomText(random, Math.max(0, n - 4)) : random.bytes(n);
    const parts = random.range(1, limits.maxFragments);
    const points = [0, ...Array.from({ length: parts - 1 }, () => random.int(payload.length + 1)), payload.length].sort((a, b) => a - b);
    for (let i = 0; i < parts; i++) {
      frames.push({ fin: i === parts - 1, rsv: 0, opcode: i === 0 ? (text ? 1 : 2) : 0, masked, payload: payload.subarray(points[i], points[i + 1]) });
      if (random.chance(0.3)) frames.push(controlFrame(random, masked));
    }
    messages++;
    total += payload.length + 10 * parts;
  }
  return { bytes: serialize(frames, random), messages };
}
