/**
 * The fuzzer on permessage-deflate (RFC 7692): compressed messages, valid and damaged, to a
 * connection of either role that negotiated the extension with the node:zlib codec
 * (adapters/zlib), and the same bytes to ws's Receiver with ws's own permessage-deflate. The
 * codec may answer later (its first use loads node:zlib), so a run waits until its jobs settle.
 */
import { concatBytes } from "../../core/bytes.ts";
import { constants, deflateRawSync } from "node:zlib";
import { setImmediate } from "node:timers";
import { Buffer } from "node:buffer";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import type { Connection, DeflateCodec } from "../../core/mod.ts";
import { perMessageDeflateClient, perMessageDeflateServer } from "../../core/mod.ts";
import { createZlibCodec } from "../../adapters/zlib/codec.ts";
import { hex } from "../support/bytes.ts";
import { createPair } from "../support/core-pair.ts";
import { type CoreOutcome, cutsFor, feed, type Normalized, type Role, type Verdict, verdictOf } from "./core-runner.ts";
import { type Compared, KNOWN_DIFFERENCES, upToVerdict } from "./differences.ts";
import { comparable, compareOutcomes } from "./fuzz.ts";
import { Random } from "./random.ts";
import { controlFrame, type FrameSpec, type Limits, mutateBytes, randomText, serialize } from "./streams.ts";
import type { WsOutcome } from "./ws-runner.ts";

export type DeflateKind = "valid" | "corrupt" | "rsv1-misplaced" | "bomb" | "final-block" | "mutated";
export const DEFLATE_KINDS: readonly DeflateKind[] = ["valid", "corrupt", "rsv1-misplaced", "bomb", "final-block", "mutated"];

export interface DeflateCase {
  seed: number;
  role: Role;
  kind: DeflateKind;
  limits: Limits;
  bytes: Uint8Array;
}

/**
 * Raw DEFLATE of `data` flushed with Z_SYNC_FLUSH, without the 00 00 ff ff tail (RFC 7692 §7.2.1);
 * or ending in a BFINAL block; or ("at-tail") flushed, then the header of an empty BFINAL stored
 * block whose LEN and NLEN are the tail the receiver appends: the stream ends exactly there.
 */
function compress(data: Uint8Array, final: boolean | "at-tail" = false): Uint8Array {
  if (final === true) return new Uint8Array(deflateRawSync(data));
  const out = deflateRawSync(data, { finishFlush: constants.Z_SYNC_FLUSH });
  if (final === "at-tail") return concatBytes([out, Uint8Array.of(0x01)]);
  return new Uint8Array(out.subarray(0, out.length - 4));
}

/** One message, compressed (RSV1 on its first frame, §6) or not, maybe in fragments with control frames between them. */
function message(random: Random, masked: boolean, out: FrameSpec[], compressed: boolean, final: boolean | "at-tail" = false): void {
  const text = random.chance(0.5);
  const size = random.chance(0.8) ? random.int(200) : random.range(200, 3000);
  const plain = text ? randomText(random, size) : random.chance(0.5) ? random.bytes(size) : new Uint8Array(size).fill(0x61);
  const payload = compressed ? compress(plain, final) : plain;
  const parts = random.chance(0.6) ? 1 : random.range(2, 5);
  const points = [0, ...Array.from({ length: parts - 1 }, () => random.int(payload.length + 1)), payload.length].sort((a, b) => a - b);
  for (let i = 0; i < parts; i++) {
    out.push({ fin: i === parts - 1, rsv: i === 0 && compressed ? 4 : 0, opcode: i === 0 ? (text ? 1 : 2) : 0, masked, payload: payload.subarray(points[i], points[i + 1]) });
    if (i < parts - 1 && random.chance(0.3)) out.push(controlFrame(random, masked));
  }
}

export function makeDeflateCase(seed: number): DeflateCase {
  const random = new Random(seed);
  const role: Role = random.chance(0.5) ? "server" : "client";
  const masked = role === "server";
  const limits: Limits = {};
  if (random.chance(0.4)) limits.maxMessageSize = random.pick([100, 1000, 5000]);
  const kind = random.pick(DEFLATE_KINDS);
  const frames: FrameSpec[] = [];
  const count = random.range(1, 6);
  for (let i = 0; i < count; i++) {
    if (random.chance(0.15)) frames.push(controlFrame(random, masked));
    else message(random, masked, frames, random.chance(0.75));
  }
  const at = random.int(frames.length + 1);
  const more: FrameSpec[] = [];
  switch (kind) {
    case "corrupt": {
      // RFC 7692 §8.2.2: data that does not inflate fails the connection (1007 in both).
      message(random, masked, more, true);
      const first = more[0];
      const damaged = first.payload.slice();
      for (let n = random.range(1, 3); n > 0 && damaged.length > 0; n--) damaged[random.int(damaged.length)] ^= 1 << random.int(8);
      more[0] = { ...first, payload: random.chance(0.3) ? random.bytes(random.range(1, 20)) : damaged };
      break;
    }
    case "rsv1-misplaced": // RFC 7692 §6: RSV1 only on the first frame of a data message
      if (random.chance(0.5)) more.push({ ...controlFrame(random, masked), rsv: 4 });
      else more.push({ fin: false, rsv: 4, opcode: 2, masked, payload: compress(random.bytes(10)) }, { fin: true, rsv: 4, opcode: 0, masked, payload: new Uint8Array(0) });
      break;
    case "bomb": {
      // Small on the wire, large once inflated: over maxMessageSize (1009 in both). A limit of
      // its own when none was drawn: hex-comparing megabytes would take the whole budget.
      limits.maxMessageSize ??= random.pick([1000, 5000, 20_000]);
      const size = limits.maxMessageSize * random.range(2, 20);
      more.push({ fin: true, rsv: 4, opcode: random.pick([1, 2]), masked, payload: compress(new Uint8Array(size).fill(0x41)) });
      break;
    }
    case "final-block": // RFC 7692 §7.2.3.4: a message may end the DEFLATE stream (BFINAL); the next starts anew
      message(random, masked, more, true, random.chance(0.5) || "at-tail");
      message(random, masked, more, true);
      break;
  }
  frames.splice(at, 0, ...more);
  let bytes = serialize(frames, random);
  if (kind === "mutated") bytes = mutateBytes(random, bytes);
  return { seed, role, kind, limits, bytes };
}

/** The codec, keeping its jobs that have not settled. */
function trackingCodec(): { codec: DeflateCodec; pending: Set<Promise<unknown>> } {
  const inner = createZlibCodec();
  const pending = new Set<Promise<unknown>>();
  const track = <T>(value: T | Promise<T>): T | Promise<T> => {
    if (!(value instanceof Promise)) return value;
    const settled = value.then(() => {}, () => {});
    pending.add(settled);
    settled.then(() => pending.delete(settled));
    return value;
  };
  return {
    pending,
    codec: {
      createCompressor(options) {
        const c = inner.createCompressor(options);
        return { compress: (data) => track(c.compress(data)), close: () => c.close() };
      },
      createDecompressor(options) {
        const d = inner.createDecompressor(options);
        return { decompress: (chunks, max) => track(d.decompress(chunks, max)), close: () => d.close() };
      },
    },
  };
}

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Runs the case's bytes, cut at `cuts`, into a connection that negotiated permessage-deflate; waits for the codec. */
export async function runDeflate(c: DeflateCase, cuts: readonly number[]): Promise<CoreOutcome> {
  const { codec, pending } = trackingCodec();
  const pair = createPair({
    server: { ...c.limits, extensions: [perMessageDeflateServer({ codec })] },
    client: { ...c.limits, random: Random.filler(c.seed), extensions: [perMessageDeflateClient({ codec })] },
  });
  const connection: Connection = c.role === "server" ? pair.server : pair.client;
  const events = c.role === "server" ? pair.serverEvents : pair.clientEvents;
  const open = events.find((e) => e.type === "open");
  if (open?.type !== "open" || !open.extensions.startsWith("permessage-deflate")) throw new Error(`permessage-deflate was not negotiated: ${JSON.stringify(open)}`);
  connection.pollEvents();
  connection.pollOutput();
  // Fed without waiting between reads (what arrives while the codec works is queued in order),
  // then the codec's jobs are waited for, then the end of the stream.
  const early = feed(connection, c.bytes, cuts, false, false, undefined, false);
  // Every job the codec was given has settled, and what the core chained on them has run.
  const settle = async () => {
    do {
      await Promise.all(pending);
      await tick();
    } while (pending.size !== 0);
  };
  await settle();
  const end = feed(connection, new Uint8Array(0), [], false, false);
  await settle();
  const last = feed(connection, new Uint8Array(0), [], false, false, undefined, false);
  return {
    ...early,
    events: [...early.events, ...end.events],
    endEvents: [...end.endEvents, ...last.events],
    output: early.output + end.output + last.output,
    threw: early.threw ?? end.threw ?? last.threw,
  };
}

interface WsDeflateReceiver {
  on(event: string, listener: (...args: never[]) => void): void;
  _write(chunk: Buffer, encoding: string, callback: (error?: Error | null) => void): void;
}
const require = createRequire(import.meta.url);
const wsDir = dirname(require.resolve("ws/package.json"));
const Receiver = require(join(wsDir, "lib", "receiver.js")) as new (options: Record<string, unknown>) => WsDeflateReceiver;
const WsPerMessageDeflate = require(join(wsDir, "lib", "permessage-deflate.js")) as {
  new (options: Record<string, unknown>): { accept(offers: Record<string, unknown>[]): unknown };
  extensionName: string;
};
const decoder = new TextDecoder("utf-8", { ignoreBOM: true });

function statusCode(error: Error): number {
  for (const key of Object.getOwnPropertySymbols(error)) {
    if (key.description === "status-code") return (error as unknown as Record<symbol, number>)[key];
  }
  return -1;
}

/** ws's Receiver with ws's permessage-deflate, fed all the bytes in one write (its inflating is asynchronous). */
export function runWsDeflate(c: DeflateCase): Promise<WsOutcome> {
  const maxPayload = c.limits.maxMessageSize ?? 64 * 1024 * 1024;
  const deflate = new WsPerMessageDeflate({ isServer: c.role === "server", maxPayload });
  deflate.accept([{}]);
  const receiver = new Receiver({ isServer: c.role === "server", maxPayload, extensions: { [WsPerMessageDeflate.extensionName]: deflate } });
  const events: Normalized[] = [];
  let verdict: Verdict = { kind: "open" };
  receiver.on("message", (data: Buffer, isBinary: boolean) => {
    events.push(isBinary ? { type: "binary", data: hex(data) } : { type: "text", data: decoder.decode(data) });
  });
  receiver.on("ping", (data: Buffer) => events.push({ type: "ping", data: hex(data) }));
  receiver.on("pong", (data: Buffer) => events.push({ type: "pong", data: hex(data) }));
  receiver.on("conclude", (code: number, reason: Buffer) => {
    events.push({ type: "close", code, reason: decoder.decode(reason) });
    if (verdict.kind === "open") verdict = { kind: "close", code, reason: decoder.decode(reason) };
  });
  receiver.on("error", () => {});
  return new Promise((resolve) => {
    let done = false;
    // A write always calls back, after any inflating; this only bounds a run that would not.
    const timer = setTimeout(() => finish("no callback"), 5000);
    const finish = (errorCode: string | null) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve({ events, verdict, errorCode });
    };
    receiver._write(Buffer.from(c.bytes), "buffer", (error) => {
      if (error) {
        const code = statusCode(error);
        events.push({ type: "error", code });
        verdict = { kind: "fail", code };
        finish((error as { code?: string }).code ?? null);
      } else finish(null);
    });
  });
}

export interface DeflateProblem {
  check: "throws" | "chunking" | "differential";
  message: string;
  split: string;
}

const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

/** The fuzzer's checks on a permessage-deflate case: no throw, every chunking alike, and (if `differential`) ws's verdict. */
export async function checkDeflateCase(c: DeflateCase, differential: boolean, explained?: Map<string, number>): Promise<DeflateProblem | null> {
  const whole = await runDeflate(c, []);
  if (whole.threw) return { check: "throws", message: whole.threw, split: "whole" };
  const chunkings: [string, number[]][] = [];
  if (c.bytes.length <= 2048) chunkings.push(["every byte", cutsFor("bytes", c.bytes.length)]);
  const cuts = cutsFor("random", c.bytes.length, new Random(c.seed ^ 0x1b873593));
  chunkings.push([`cuts ${JSON.stringify(cuts)}`, cuts]);
  for (const [split, cuts] of chunkings) {
    const outcome = await runDeflate(c, cuts);
    if (outcome.threw) return { check: "throws", message: outcome.threw, split };
    const difference = compareOutcomes(whole, outcome, c.role);
    if (difference) return { check: "chunking", message: difference, split };
  }
  if (!differential) return null;
  const ws = await runWsDeflate(c);
  const theirs = upToVerdict(ws.events);
  let core = whole;
  let bytes = c.bytes;
  if (verdictOf(core.events).kind === "open" && ws.verdict.kind === "fail" && !ws.errorCode?.startsWith("Z_")) {
    // As in the frame phase: the core reads a whole header before judging it. (Not when ws failed
    // on data that does not inflate: the core judges that once the message is whole.)
    bytes = concatBytes([c.bytes, new Uint8Array(14)]);
    core = await runDeflate({ ...c, bytes }, []);
  }
  const ours = comparable(core.events);
  const verdict = verdictOf(core.events);
  if (same(verdict, ws.verdict) && same(ours, theirs)) return null;
  const compared: Compared = { role: c.role, bytes, limits: c.limits, deflate: true, core, ws, ours, theirs };
  const known = KNOWN_DIFFERENCES.find((d) => d.matches(compared));
  if (known) {
    explained?.set(known.id, (explained.get(known.id) ?? 0) + 1);
    return null;
  }
  return {
    check: "differential",
    message: `anyws and ws disagree:\n  anyws: ${JSON.stringify(verdict)} after ${JSON.stringify(ours).slice(0, 1500)}\n  ws:    ${JSON.stringify(ws.verdict)} (${ws.errorCode}) after ${JSON.stringify(theirs).slice(0, 1500)}`,
    split: "whole",
  };
}
