/**
 * The core fuzzer: builds a case from a seed, runs it through the checks, shrinks what fails.
 * Used by the test files in this directory (tests/fuzz/README.md tells how to run it longer).
 */
import { concatBytes } from "../../core/bytes.ts";
import process from "node:process";
import type { ConnectionOptions } from "../../core/mod.ts";
import { hex } from "../support/bytes.ts";
import { type CoreOutcome, cutsFor, feed, type Normalized, openConnection, outputDifference, type Role, tuningOf, verdictOf } from "./core-runner.ts";
import { type Compared, KNOWN_DIFFERENCES, upToVerdict } from "./differences.ts";
import { Random } from "./random.ts";
import { type Break, BREAKS, type FrameSpec, type Limits, mutateBytes, nearValidFrames, randomFrames, serialize, validFrames } from "./streams.ts";
import { runWs, wsVersion } from "./ws-runner.ts";

export type Kind = "valid" | "near-valid" | "random-frames" | "mutated" | "random-bytes";

export interface Case {
  seed: number;
  role: Role;
  kind: Kind;
  rule?: Break;
  limits: Limits;
  bytes: Uint8Array;
}

/** The case a seed stands for. */
export function makeCase(seed: number): Case {
  const random = new Random(seed);
  const role: Role = random.chance(0.5) ? "server" : "client";
  const masked = role === "server"; // RFC 6455 §5.1: frames towards a server are masked
  const limits: Limits = {};
  // Not 0: ws reads maxPayload 0 as "no limit".
  if (random.chance(0.5)) limits.maxMessageSize = random.pick([1, 16, 125, 126, 1000, 4096]);
  if (random.chance(0.3)) limits.maxFragments = random.range(1, 20);
  if (random.chance(0.2)) limits.streamThreshold = random.pick([0, 1, 10, 100]);
  const r = random.next();
  const kind: Kind = r < 0.2 ? "valid" : r < 0.6 ? "near-valid" : r < 0.75 ? "random-frames" : r < 0.95 ? "mutated" : "random-bytes";
  let rule: Break | undefined;
  let frames: FrameSpec[];
  let bytes: Uint8Array;
  if (kind === "random-bytes") {
    bytes = random.bytes(random.int(200));
  } else {
    if (kind === "near-valid") {
      rule = random.pick(BREAKS);
      frames = nearValidFrames(random, masked, limits, rule);
    } else if (kind === "random-frames") {
      frames = randomFrames(random, masked);
    } else {
      frames = validFrames(random, masked, limits);
    }
    bytes = serialize(frames, random);
    if (kind === "mutated") bytes = mutateBytes(random, bytes);
    if (rule === "truncated" && bytes.length > 0) bytes = bytes.slice(0, random.int(bytes.length));
  }
  return { seed, role, kind, rule, limits, bytes };
}

/** A check that failed, with what it takes to reproduce it. */
export interface Problem {
  check: "throws" | "order" | "chunking" | "bounded" | "differential";
  message: string;
  case: Case;
  /** The chunking that shows it: cut points, "every byte", or "whole". */
  split: string;
}

/** Byte-by-byte runs are made for streams up to this size: they cost a `receive` per byte. */
const BYTEWISE_MAX = 4096;

export function coreOptions(limits: Limits): ConnectionOptions {
  return { ...limits };
}

export function runCore(c: Case, cuts: readonly number[], measure = false): CoreOutcome {
  const connection = openConnection(c.role, coreOptions(c.limits), c.seed);
  return feed(connection, c.bytes, cuts, measure, c.limits.streamThreshold !== undefined);
}

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** What differs between two outcomes of `role`, or null (pongs compared as `outputDifference` says). */
export function compareOutcomes(a: CoreOutcome, b: CoreOutcome, role: Role): string | null {
  if (!same(a.events, b.events)) return `events differ:\n  whole: ${JSON.stringify(a.events).slice(0, 1500)}\n  split: ${JSON.stringify(b.events).slice(0, 1500)}`;
  if (!same(a.endEvents, b.endEvents)) return `events at the end differ:\n  whole: ${JSON.stringify(a.endEvents)}\n  split: ${JSON.stringify(b.endEvents)}`;
  const pings = a.events.filter((e) => e.type === "ping").map((e) => e.data as string);
  const output = outputDifference(a.output, b.output, role, pings);
  if (output) return `${output}:\n  whole: ${a.output.slice(0, 600)}\n  split: ${b.output.slice(0, 600)}`;
  return null;
}

/** What is wrong with the order of a connection's events: after an `error` only `close`, after `close` nothing. */
export function orderProblem(events: readonly Normalized[]): string | null {
  const error = events.findIndex((e) => e.type === "error");
  const close = events.findIndex((e) => e.type === "close");
  if (close >= 0 && close !== events.length - 1) return `events after the close event: ${JSON.stringify(events.slice(close + 1)).slice(0, 500)}`;
  if (error >= 0 && events.slice(error + 1).some((e) => e.type !== "close")) return `events after the error event: ${JSON.stringify(events.slice(error + 1)).slice(0, 500)}`;
  return null;
}

/** Held bytes allowed for a connection with these limits fed chunks of at most `maxChunk` bytes. */
export function heldBound(limits: Limits, streamLength: number, maxChunk: number): number {
  const message = Math.min(limits.maxMessageSize ?? Infinity, streamLength);
  // A fixed part (masking-key pool, header scratch), the message being assembled (packed into a
  // buffer that doubles as it grows), and the chunks views of its pieces keep alive.
  return 16 * 1024 + 3 * Math.max(message, 4096) + 34 * maxChunk;
}

export interface CheckOptions {
  /** Compare with ws's Receiver. */
  differential: boolean;
  /** Counts, by id, the known differences that explained a case. */
  explained?: Map<string, number>;
  /** Counts the verdicts of the whole-stream runs ("open", "close", "fail 1002", ...). */
  verdicts?: Map<string, number>;
}

/** Runs every check on `c`; returns the first problem found, or null. */
export function checkCase(c: Case, options: CheckOptions): Problem | null {
  const problem = (check: Problem["check"], message: string, split: string): Problem => ({ check, message, case: c, split });
  const whole = runCore(c, []);
  if (whole.threw) return problem("throws", whole.threw, "whole");
  if (options.verdicts) {
    const v = verdictOf(whole.events);
    const key = v.kind === "fail" ? `fail ${v.code}` : v.kind;
    options.verdicts.set(key, (options.verdicts.get(key) ?? 0) + 1);
  }
  const disorder = orderProblem([...whole.events, ...whole.endEvents]);
  if (disorder) return problem("order", disorder, "whole");
  const random = new Random(c.seed ^ 0x5bd1e995);
  const chunkings: [string, number[]][] = [];
  if (c.bytes.length <= BYTEWISE_MAX) chunkings.push(["every byte", cutsFor("bytes", c.bytes.length)]);
  for (let i = 0; i < 2; i++) {
    const cuts = cutsFor("random", c.bytes.length, random);
    chunkings.push([`cuts ${JSON.stringify(cuts)}`, cuts]);
  }
  for (const [split, cuts] of chunkings) {
    // Held bytes are measured in the random pieces (a walk per read would dominate byte by byte).
    const outcome = runCore(c, cuts, split !== "every byte");
    if (outcome.threw) return problem("throws", outcome.threw, split);
    const difference = compareOutcomes(whole, outcome, c.role);
    if (difference) return problem("chunking", difference, split);
    let maxChunk = 0;
    let from = 0;
    for (const to of [...cuts, c.bytes.length]) {
      maxChunk = Math.max(maxChunk, to - from);
      from = to;
    }
    const bound = heldBound(c.limits, c.bytes.length, maxChunk);
    if (outcome.maxHeld > bound) return problem("bounded", `held ${outcome.maxHeld} bytes, bound ${bound}`, split);
    const { bytes, chunk } = outcome.worstOutput;
    if (bytes > 3 * chunk + 256) return problem("bounded", `one receive of ${chunk} bytes wrote ${bytes} bytes`, split);
  }
  if (options.differential) {
    const difference = differential(c, whole, options.explained);
    if (difference) return problem("differential", difference, "whole");
  }
  return null;
}

/** Compares the core's verdict and events with ws's; null when they agree or a known difference explains it. */
export function differential(c: Case, whole: CoreOutcome, explained?: Map<string, number>): string | null {
  const ws = runWs(c.role, c.bytes, [], c.limits);
  const theirs = upToVerdict(ws.events);
  let core = whole;
  let bytes = c.bytes;
  if (verdictOf(core.events).kind === "open" && ws.verdict.kind === "fail") {
    // ws judges a header on its first two bytes; the core reads the whole header (up to 14
    // bytes) first. Zeros complete any header without changing what was wrong with it.
    bytes = concatBytes([c.bytes, new Uint8Array(14)]);
    core = runCore({ ...c, bytes }, []);
  }
  const ours = comparable(core.events);
  const coreVerdict = verdictOf(core.events);
  if (same(coreVerdict, ws.verdict) && same(ours, theirs)) return null;
  const compared: Compared = { role: c.role, bytes, limits: c.limits, core, ws, ours, theirs };
  const known = KNOWN_DIFFERENCES.find((d) => d.matches(compared));
  if (known) {
    explained?.set(known.id, (explained.get(known.id) ?? 0) + 1);
    return null;
  }
  return `anyws and ws ${wsVersion} disagree:\n  anyws: ${JSON.stringify(coreVerdict)} after ${JSON.stringify(ours).slice(0, 1500)}\n  ws:    ${JSON.stringify(ws.verdict)} (${ws.errorCode}) after ${JSON.stringify(theirs).slice(0, 1500)}`;
}

/** The core's events up to its verdict, as ws reports them: no reason for an error, no `wasClean`. */
export function comparable(events: readonly Normalized[]): Normalized[] {
  return upToVerdict(events).map((e) => {
    if (e.type === "error") return { type: "error", code: e.code };
    if (e.type === "close") return { type: "close", code: e.code, reason: e.reason };
    return e;
  });
}

/**
 * The smallest stream found (by removing byte ranges) on which `check` still reports a problem
 * of the same kind. Bounded in attempts: a reproduction, not necessarily a minimum.
 */
export function shrink(problem: Problem, options: CheckOptions, attempts = 400): Problem {
  let best = problem;
  const fails = (bytes: Uint8Array): Problem | null => {
    const found = checkCase({ ...best.case, bytes }, { differential: options.differential });
    return found !== null && found.check === problem.check && signature(found) === signature(problem) ? found : null;
  };
  // Whole frames first (from the last), then byte ranges of halving size.
  for (let bounds = frameBounds(best.case.bytes), i = bounds.length - 2; i >= 0 && attempts > 0; i--, attempts--) {
    const bytes = concatBytes([best.case.bytes.subarray(0, bounds[i]), best.case.bytes.subarray(bounds[i + 1])]);
    const found = fails(bytes);
    if (found) {
      best = found;
      bounds = frameBounds(best.case.bytes);
      i = Math.min(i, bounds.length - 1);
    }
  }
  let size = Math.max(1, best.case.bytes.length >> 1);
  while (size >= 1 && attempts > 0) {
    let progressed = false;
    for (let at = 0; at + size <= best.case.bytes.length && attempts > 0; at += size) {
      attempts--;
      const bytes = concatBytes([best.case.bytes.subarray(0, at), best.case.bytes.subarray(at + size)]);
      const found = fails(bytes);
      if (found) {
        best = found;
        progressed = true;
        at -= size;
      }
    }
    if (!progressed) size >>= 1;
  }
  return best;
}

/** Where each frame of `bytes` starts, by its headers, and the end of the last whole one. */
function frameBounds(bytes: Uint8Array): number[] {
  const bounds = [0];
  let at = 0;
  while (at + 2 <= bytes.length) {
    const short = bytes[at + 1] & 0x7f;
    const header = (short < 126 ? 2 : short === 126 ? 4 : 10) + (bytes[at + 1] & 0x80 ? 4 : 0);
    if (at + header > bytes.length) break;
    let length = short;
    if (short === 126) length = (bytes[at + 2] << 8) | bytes[at + 3];
    if (short === 127) length = bytes[at + 2] | bytes[at + 3] | bytes[at + 4] | bytes[at + 5] ? Infinity : ((bytes[at + 6] << 24) | (bytes[at + 7] << 16) | (bytes[at + 8] << 8) | bytes[at + 9]) >>> 0;
    if (at + header + length > bytes.length) break;
    at += header + length;
    bounds.push(at);
  }
  if (at < bytes.length) bounds.push(bytes.length);
  return bounds;
}

/** What a shrunk problem must keep: the check, and for a disagreement both verdicts. */
function signature(problem: Problem): string {
  return problem.check === "differential" ? problem.message.replace(/ after .*/g, "") : problem.check;
}

/** A problem as it is printed: enough to reproduce it by hand. */
export function report(problem: Problem): string {
  const c = problem.case;
  return [
    `fuzz ${problem.check} problem, seed ${c.seed} (ANYWS_FUZZ_SEED=${c.seed} ANYWS_FUZZ_ITERATIONS=1 replays the case)`,
    `  role: ${c.role} (the bytes are what its peer sent), kind: ${c.kind}${c.rule ? ` (${c.rule})` : ""}, limits: ${JSON.stringify(c.limits)}, tuning: ${tuningOf(c.seed).name}`,
    `  bytes (${c.bytes.length}): ${c.bytes.length <= 4096 ? hex(c.bytes) : hex(c.bytes.subarray(0, 4096)) + "..."}`,
    `  split: ${problem.split.length <= 2000 ? problem.split : problem.split.slice(0, 2000) + "..."}`,
    `  ${problem.message}`,
  ].join("\n");
}

/** Settings from the environment: ANYWS_FUZZ_ITERATIONS, ANYWS_FUZZ_SEED. */
export function settings(defaultIterations: number): { iterations: number; seed: number } {
  const env = process.env;
  const iterations = env.ANYWS_FUZZ_ITERATIONS ? Number(env.ANYWS_FUZZ_ITERATIONS) : defaultIterations;
  const seed = env.ANYWS_FUZZ_SEED ? Number(env.ANYWS_FUZZ_SEED) : 1;
  if (!(Number.isInteger(iterations) && iterations >= 0)) throw new Error(`ANYWS_FUZZ_ITERATIONS must be a count, got ${env.ANYWS_FUZZ_ITERATIONS}`);
  if (!Number.isInteger(seed)) throw new Error(`ANYWS_FUZZ_SEED must be an integer, got ${env.ANYWS_FUZZ_SEED}`);
  return { iterations, seed };
}
