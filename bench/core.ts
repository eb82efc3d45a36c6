/**
 * The anyws protocol core against ws's own frame parser (`Receiver`) and serializer
 * (`Sender.frame`), in one process, on one runtime.
 *
 *   npm run bench                      tsc, then Node, Deno and Bun one after another
 *   node dist/bench/core.js            after `tsc -p tsconfig.json`
 *   deno run -A bench/core.ts
 *   bun bench/core.ts
 *
 * Options: --only=1a,3a (scenarios), --impl=anyws|ws (measure one side only, e.g. under
 * `node --cpu-prof`), --time=MS (measured time per round, default 100), --rounds=N (default 5),
 * --clock=cpu (time by the process's CPU time instead of performance.now(): steadier when other
 * processes share the cores, but it also counts the runtime's GC and compiler threads).
 *
 * What is compared, per scenario (each figure is the median of the rounds; rounds alternate
 * which side goes first):
 *   - anyws: a `ServerConnection`/`ClientConnection` opened by a real handshake in memory,
 *     `receive()` + `pollEvents()` to parse, `sendText()`/`sendBinary()` + `pollOutput()` to
 *     serialize: the whole path an adapter drives, events and message reassembly included.
 *   - ws: `Receiver` (a Writable, `write()` as ws's socket handler calls it; isServer, ws's server
 *     default maxPayload of 100 MiB, UTF-8 validation on) and `Sender.frame()` with the options
 *     ws's `WebSocket#send` passes (masked, a random key from ws's own pool).
 *   - ws with its native `bufferutil` (masking of 32+ bytes in C) here, and ws with its pure-JS
 *     masking in a child process started with WS_NO_BUFFER_UTIL=1.
 * Both parsers unmask in place, so both get a fresh copy of the same input before each timed
 * batch; the copy is outside the timed region for both. ws's 'message' delivers a text message
 * as a Buffer (validated, not decoded); anyws delivers a string (decoded). Nothing is asserted
 * about timing; everything parsed or serialized is checked, so a broken side fails loudly.
 */
import { Buffer } from "node:buffer";
import { spawnSync } from "node:child_process";
import { cpus, loadavg } from "node:os";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { ClientConnection, ServerConnection } from "../core/mod.ts";
// The core as this runtime's adapters tune it (on V8, masking in 64-bit words).
import { engineTuning } from "../adapters/shared/engine.ts";
import { option as optionIn, RUNTIME } from "./shared/args.ts";
import { requireWs, wsMasking, wsVersion } from "./shared/ws.ts";

// ---- Options ---------------------------------------------------------------------------------

const args = process.argv.slice(2);
const option = (name: string): string | undefined => optionIn(args, name);
const ONLY = option("only")?.split(",");
const IMPL = option("impl") ?? "both"; // anyws | ws | both
const JSON_OUT = args.includes("--json"); // child mode: print results as one JSON line
const TIME_MS = Number(option("time") ?? 100);
const ROUNDS = Number(option("rounds") ?? 5);
const WARMUP_MS = Math.max(150, TIME_MS);
/** wall: performance.now(). cpu: the process's CPU time, steadier when other work shares the cores. */
const CLOCK = option("clock") === "cpu" ? "cpu" : "wall";

// ---- ws, loaded through the runtime's CommonJS support ----------------------------------------

interface WsReceiver {
  write(chunk: Uint8Array): boolean;
  on(event: "message", listener: (data: Buffer, isBinary: boolean) => void): unknown;
  on(event: "error", listener: (error: Error) => void): unknown;
}
interface WsFrameOptions {
  fin: boolean;
  rsv1: boolean;
  opcode: number;
  mask: boolean;
  readOnly: boolean;
}
interface Ws {
  Receiver: new (options: { isServer: boolean; maxPayload: number; skipUTF8Validation: boolean }) => WsReceiver;
  Sender: { frame(data: Uint8Array | string, options: WsFrameOptions): Buffer[] };
}

const ws: Ws = requireWs("index.js");

// ---- Harness ---------------------------------------------------------------------------------

/** One side of a scenario, set up and verified: `run` does one timed batch and returns its units. */
interface Case {
  /** Untimed work before each batch (a fresh copy of input that the parser unmasks in place). */
  prepare?: () => void;
  run: () => number;
}

type Side = "anyws" | "ws";

interface Scenario {
  id: string;
  title: string;
  unit: "frames" | "bytes";
  /** Builds the input once; each side's factory sets that side up and verifies it. */
  sides: () => Record<Side, () => Case>;
}

/** Milliseconds on the chosen clock. */
function now(): number {
  if (CLOCK === "wall") return performance.now();
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}

/** Units per second over `ms` of timed batches. */
function rate(c: Case, ms: number): number {
  let units = 0;
  let elapsed = 0;
  while (elapsed < ms) {
    c.prepare?.();
    const t0 = now();
    units += c.run();
    elapsed += now() - t0;
  }
  return units / (elapsed / 1000);
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1];

/**
 * Warms each side up, then measures them round after round, alternating which goes first;
 * returns each side's rate per round. Rounds pair the sides in time, so a ratio taken per round
 * is steadier than a ratio of medians when something else is using the machine.
 */
function measure<S extends string>(cases: Record<S, Case>): Record<S, number[]> {
  const names = Object.keys(cases) as S[];
  for (const name of names) rate(cases[name], WARMUP_MS);
  const samples = {} as Record<S, number[]>;
  for (const name of names) samples[name] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 === 0 ? names : [...names].reverse();
    for (const name of order) samples[name].push(rate(cases[name], TIME_MS));
  }
  return samples;
}

function check(ok: boolean, what: string): void {
  if (!ok) throw new Error(`bench check failed: ${what}`);
}

// ---- Inputs ----------------------------------------------------------------------------------

const SMALL = 32;
const MIB = 1024 * 1024;
const FRAMES_PER_CHUNK = 10_000;
const SOCKET_READ = 64 * 1024;

/** Distinct 32-byte ASCII messages, cycled through. */
const TEXTS = Array.from({ length: 16 }, (_, i) => `message ${String(i).padStart(2, "0")} of the anyws bench`.padEnd(SMALL, ".").slice(0, SMALL));
const TEXT_BYTES = TEXTS.map((t) => new TextEncoder().encode(t));
check(TEXT_BYTES.every((b) => b.length === SMALL), "32-byte texts");

const BIG = new Uint8Array(MIB);
for (let i = 0; i < MIB; i++) BIG[i] = (i * 2654435761) >>> 24;

/** A random, non-zero masking key (ws skips unmasking under an all-zero key). */
function randomKey(): Uint8Array {
  const key = crypto.getRandomValues(new Uint8Array(4));
  key[0] |= 1;
  return key;
}

/** A masked frame, as a client sends it (RFC 6455 §5.2), built independently of both libraries. */
function maskedFrame(opcode: number, payload: Uint8Array): Uint8Array {
  const n = payload.length;
  const lengthBytes = n < 126 ? 0 : n < 0x10000 ? 2 : 8;
  const frame = new Uint8Array(2 + lengthBytes + 4 + n);
  frame[0] = 0x80 | opcode;
  frame[1] = 0x80 | (lengthBytes === 0 ? n : lengthBytes === 2 ? 126 : 127);
  const view = new DataView(frame.buffer);
  if (lengthBytes === 2) view.setUint16(2, n);
  if (lengthBytes === 8) view.setUint32(6, n); // n < 2^32 here
  const key = randomKey();
  const at = 2 + lengthBytes + 4;
  frame.set(key, at - 4);
  for (let i = 0; i < n; i++) frame[at + i] = payload[i] ^ key[i & 3];
  return frame;
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Client-to-server bytes, kept pristine, and a work copy that each batch refreshes and parses. */
class Input {
  readonly pristine: Uint8Array;
  readonly work: Uint8Array;
  constructor(pristine: Uint8Array) {
    this.pristine = pristine;
    this.work = new Uint8Array(pristine.length);
  }
  refresh(): void {
    this.work.set(this.pristine);
  }
  /** The work copy cut at the given offsets, as Buffers (what ws gets from a socket). */
  buffers(cuts: number[]): Buffer[] {
    return this.views(cuts).map((v) => Buffer.from(v.buffer, v.byteOffset, v.length));
  }
  /** The work copy cut at the given offsets, as plain Uint8Array views. */
  views(cuts: number[]): Uint8Array[] {
    const views: Uint8Array[] = [];
    for (let i = 0; i < cuts.length; i++) {
      views.push(this.work.subarray(cuts[i], i + 1 < cuts.length ? cuts[i + 1] : this.work.length));
    }
    return views;
  }
}

/** Many 32-byte text frames back to back; with the offset at which each frame starts. */
function smallTextFrames(count: number): { input: Input; starts: number[] } {
  const frames = Array.from({ length: count }, (_, i) => maskedFrame(0x1, TEXT_BYTES[i % TEXTS.length]));
  const starts: number[] = [];
  let at = 0;
  for (const f of frames) {
    starts.push(at);
    at += f.length;
  }
  return { input: new Input(concat(frames)), starts };
}

/** Offsets cutting `length` bytes into reads of `size`. */
function reads(length: number, size: number): number[] {
  const cuts: number[] = [];
  for (let at = 0; at < length; at += size) cuts.push(at);
  return cuts;
}

// ---- anyws and ws, driven ---------------------------------------------------------------------

/** A server and a client connection, open: the handshake done in memory. */
function openAnyws(): { server: ServerConnection; client: ClientConnection } {
  const server = new ServerConnection({ handshakeTimeout: 0, tuning: engineTuning() });
  const client = new ClientConnection({ host: "bench.invalid", handshakeTimeout: 0, tuning: engineTuning() });
  for (let i = 0; i < 4; i++) {
    for (const chunk of client.pollOutput()) server.receive(chunk);
    for (const event of server.pollEvents()) if (event.type === "upgrade") server.accept();
    for (const chunk of server.pollOutput()) client.receive(chunk);
  }
  check(server.pollEvents().length === 0 && client.pollEvents().some((e) => e.type === "open"), "anyws handshake");
  check(server.readyState === 1 && client.readyState === 1, "anyws connections open");
  return { server, client };
}

interface Received {
  text: string[];
  binary: Uint8Array[];
}

/** Feeds chunks to an open anyws server and collects what it delivers (for verification). */
function anywsReceiveAll(server: ServerConnection, chunks: Uint8Array[]): Received {
  const got: Received = { text: [], binary: [] };
  for (const chunk of chunks) server.receive(chunk);
  for (const e of server.pollEvents()) {
    if (e.type === "text") got.text.push(e.data);
    else if (e.type === "binary") got.binary.push(e.data.slice());
    else throw new Error(`anyws: unexpected ${e.type} event${e.type === "error" ? `: ${e.reason}` : ""}`);
  }
  return got;
}

function newWsReceiver(onMessage: (data: Buffer, isBinary: boolean) => void): WsReceiver {
  const receiver = new ws.Receiver({ isServer: true, maxPayload: 100 * MIB, skipUTF8Validation: false });
  receiver.on("message", onMessage);
  receiver.on("error", (error) => {
    throw new Error(`ws Receiver: ${error.message}`);
  });
  return receiver;
}

function wsReceiveAll(chunks: Uint8Array[]): Received {
  const got: Received = { text: [], binary: [] };
  const receiver = newWsReceiver((data, isBinary) => {
    if (isBinary) got.binary.push(Uint8Array.from(data));
    else got.text.push(data.toString("utf8"));
  });
  for (const chunk of chunks) receiver.write(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length));
  return got;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function checkTexts(got: Received, count: number, who: string): void {
  check(got.binary.length === 0 && got.text.length === count, `${who}: ${count} text messages (got ${got.text.length})`);
  got.text.forEach((t, i) => check(t === TEXTS[i % TEXTS.length], `${who}: text message ${i} intact`));
}

function checkBig(got: Received, count: number, who: string): void {
  check(got.text.length === 0 && got.binary.length === count, `${who}: ${count} binary messages`);
  for (const b of got.binary) check(sameBytes(b, BIG), `${who}: 1 MiB message intact`);
}

/** Spot check of a delivered 1 MiB message inside the timed loop (a full compare is done up front). */
function looksLikeBig(data: Uint8Array): boolean {
  return data.length === MIB && data[0] === BIG[0] && data[MIB >> 1] === BIG[MIB >> 1] && data[MIB - 1] === BIG[MIB - 1];
}

/** A masked frame a serializer wrote, unmasked and checked (RFC 6455 §5.2). */
function checkWrittenFrame(bytes: Uint8Array, opcode: number, payload: Uint8Array, who: string): Uint8Array {
  check(bytes[0] === (0x80 | opcode), `${who}: FIN + opcode`);
  check((bytes[1] & 0x80) !== 0, `${who}: mask bit set`);
  const got = anywsFreshServerParse(bytes);
  check(got.length === 1 && sameBytes(got[0], payload), `${who}: frame decodes to the payload`);
  const keyAt = (bytes[1] & 0x7f) < 126 ? 2 : (bytes[1] & 0x7f) === 126 ? 4 : 10;
  return bytes.slice(keyAt, keyAt + 4);
}

function anywsFreshServerParse(bytes: Uint8Array): Uint8Array[] {
  const { server } = openAnyws();
  const got = anywsReceiveAll(server, [bytes.slice()]);
  return [...got.text.map((t) => new TextEncoder().encode(t)), ...got.binary];
}

function checkKeysVary(keys: Uint8Array[], who: string): void {
  const distinct = new Set(keys.map((k) => k.join(","))).size;
  check(distinct > keys.length / 2, `${who}: masking keys vary from frame to frame`);
}

// ---- Scenarios -------------------------------------------------------------------------------

/** 1a/1b: 32-byte masked text frames into a server, `framesPerChunk` frames per received chunk. */
function parseSmall(framesPerChunk: number): Record<Side, () => Case> {
  const { input, starts } = smallTextFrames(FRAMES_PER_CHUNK);
  const cuts = starts.filter((_, i) => i % framesPerChunk === 0);
  return {
    anyws() {
      const { server } = openAnyws();
      input.refresh();
      checkTexts(anywsReceiveAll(server, input.views(cuts)), FRAMES_PER_CHUNK, "anyws parse");
      const chunks = input.views(cuts);
      return {
        prepare: () => input.refresh(),
        run() {
          let n = 0;
          for (let i = 0; i < chunks.length; i++) {
            server.receive(chunks[i]);
            for (const e of server.pollEvents()) if (e.type === "text" && e.data.length === SMALL) n++;
          }
          check(n === FRAMES_PER_CHUNK, `anyws parse: ${FRAMES_PER_CHUNK} messages per batch (got ${n})`);
          return n;
        },
      };
    },
    ws() {
      input.refresh();
      checkTexts(wsReceiveAll(input.views(cuts)), FRAMES_PER_CHUNK, "ws parse");
      let n = 0;
      const receiver = newWsReceiver((data, isBinary) => {
        if (!isBinary && data.length === SMALL) n++;
      });
      const chunks = input.buffers(cuts);
      return {
        prepare: () => input.refresh(),
        run() {
          n = 0;
          for (let i = 0; i < chunks.length; i++) receiver.write(chunks[i]);
          check(n === FRAMES_PER_CHUNK, `ws parse: ${FRAMES_PER_CHUNK} messages per batch (got ${n})`);
          return n;
        },
      };
    },
  };
}

/** 2: 32-byte text messages serialized by a client (masked), per message as an adapter would. */
function serializeSmall(): Record<Side, () => Case> {
  const BATCH = 1000;
  const FRAME = 2 + 4 + SMALL;
  return {
    anyws() {
      const { client } = openAnyws();
      const keys: Uint8Array[] = [];
      const frames: Uint8Array[] = [];
      for (let i = 0; i < 64; i++) {
        client.sendText(TEXTS[i % TEXTS.length]);
        frames.push(concat(client.pollOutput()));
        keys.push(checkWrittenFrame(frames[i], 0x1, TEXT_BYTES[i % TEXTS.length], "anyws serialize"));
      }
      checkKeysVary(keys, "anyws serialize");
      checkTexts(wsReceiveAll(frames), 64, "anyws serialize, read by ws");
      return {
        run() {
          let bytes = 0;
          for (let i = 0; i < BATCH; i++) {
            client.sendText(TEXTS[i & 15]);
            for (const chunk of client.pollOutput()) bytes += chunk.length;
          }
          check(bytes === BATCH * FRAME, "anyws serialize: frame sizes");
          return BATCH;
        },
      };
    },
    ws() {
      const options: WsFrameOptions = { fin: true, rsv1: false, opcode: 0x1, mask: true, readOnly: false };
      const keys: Uint8Array[] = [];
      for (let i = 0; i < 64; i++) {
        const frame = concat(ws.Sender.frame(TEXTS[i % TEXTS.length], options));
        keys.push(checkWrittenFrame(frame, 0x1, TEXT_BYTES[i % TEXTS.length], "ws serialize"));
      }
      checkKeysVary(keys, "ws serialize");
      return {
        run() {
          let bytes = 0;
          for (let i = 0; i < BATCH; i++) {
            for (const chunk of ws.Sender.frame(TEXTS[i & 15], options)) bytes += chunk.length;
          }
          check(bytes === BATCH * FRAME, "ws serialize: frame sizes");
          return BATCH;
        },
      };
    },
  };
}

/** 3a/3b: one 1 MiB masked binary frame into a server, whole or in 64 KiB socket reads. */
function parseBig(readSize: number): Record<Side, () => Case> {
  const input = new Input(maskedFrame(0x2, BIG));
  const cuts = reads(input.work.length, readSize);
  return {
    anyws() {
      const { server } = openAnyws();
      input.refresh();
      checkBig(anywsReceiveAll(server, input.views(cuts)), 1, "anyws parse");
      const chunks = input.views(cuts);
      return {
        prepare: () => input.refresh(),
        run() {
          let ok = 0;
          for (let i = 0; i < chunks.length; i++) {
            server.receive(chunks[i]);
            for (const e of server.pollEvents()) if (e.type === "binary" && looksLikeBig(e.data)) ok++;
          }
          check(ok === 1, "anyws parse: the 1 MiB message");
          return MIB;
        },
      };
    },
    ws() {
      input.refresh();
      checkBig(wsReceiveAll(input.views(cuts)), 1, "ws parse");
      let ok = 0;
      const receiver = newWsReceiver((data, isBinary) => {
        if (isBinary && looksLikeBig(data)) ok++;
      });
      const chunks = input.buffers(cuts);
      return {
        prepare: () => input.refresh(),
        run() {
          ok = 0;
          for (let i = 0; i < chunks.length; i++) receiver.write(chunks[i]);
          check(ok === 1, "ws parse: the 1 MiB message");
          return MIB;
        },
      };
    },
  };
}

/**
 * 4: a 1 MiB binary message serialized by a client. Neither side may change the caller's bytes:
 * ws is told `readOnly: true` (what `WebSocket#send` passes for a Buffer), anyws copies too.
 */
function serializeBig(): Record<Side, () => Case> {
  const FRAME = 2 + 8 + 4 + MIB;
  // ws gets a Buffer, anyws a plain Uint8Array: the portable type, and with a Buffer the core's
  // `payload.slice()` (a view for Buffers, not a copy) would mask the caller's bytes in place.
  const verify = (chunks: readonly Uint8Array[], payload: Uint8Array, who: string) => {
    const frame = concat(chunks);
    check(frame.length === FRAME, `${who}: frame size`);
    checkWrittenFrame(frame, 0x2, BIG, who);
    checkBig(wsReceiveAll([frame]), 1, `${who}, read by ws`);
    check(sameBytes(payload, BIG), `${who}: the caller's payload is unchanged`);
  };
  return {
    anyws() {
      const { client } = openAnyws();
      const payload = BIG.slice();
      client.sendBinary(payload);
      verify(client.pollOutput(), payload, "anyws serialize");
      return {
        run() {
          client.sendBinary(payload);
          let bytes = 0;
          for (const chunk of client.pollOutput()) bytes += chunk.length;
          check(bytes === FRAME, "anyws serialize: frame size");
          return MIB;
        },
      };
    },
    ws() {
      const options: WsFrameOptions = { fin: true, rsv1: false, opcode: 0x2, mask: true, readOnly: true };
      const payload = Buffer.from(BIG);
      verify(ws.Sender.frame(payload, options), payload, "ws serialize");
      return {
        run() {
          let bytes = 0;
          for (const chunk of ws.Sender.frame(payload, options)) bytes += chunk.length;
          check(bytes === FRAME, "ws serialize: frame size");
          return MIB;
        },
      };
    },
  };
}

const SCENARIOS: Scenario[] = [
  { id: "1a", title: "parse 32 B text, 10,000 frames/chunk", unit: "frames", sides: () => parseSmall(FRAMES_PER_CHUNK) },
  { id: "1b", title: "parse 32 B text, 1 frame/chunk", unit: "frames", sides: () => parseSmall(1) },
  { id: "2", title: "serialize 32 B text (masked)", unit: "frames", sides: serializeSmall },
  { id: "3a", title: "parse 1 MiB binary, 1 chunk", unit: "bytes", sides: () => parseBig(Infinity) },
  { id: "3b", title: "parse 1 MiB binary, 64 KiB reads", unit: "bytes", sides: () => parseBig(SOCKET_READ) },
  { id: "4", title: "serialize 1 MiB binary (masked)", unit: "bytes", sides: serializeBig },
];

// ---- Running and reporting -------------------------------------------------------------------

/** What one process measured: ws's masking code, and per scenario id each side's rate per round. */
interface Run {
  masking: string;
  results: Record<string, Partial<Record<Side, number[]>>>;
}

function runHere(sides: Side[]): Run {
  const results: Run["results"] = {};
  for (const s of SCENARIOS) {
    if (ONLY && !ONLY.includes(s.id)) continue;
    const factories = s.sides();
    const cases = {} as Record<Side, Case>;
    for (const side of sides) cases[side] = factories[side]();
    results[s.id] = measure(cases);
  }
  return { masking: wsMasking(), results };
}

/** The same measurements in a child process of the same runtime, with WS_NO_BUFFER_UTIL=1. */
function runWithoutBufferutil(): Run | string {
  const self = fileURLToPath(import.meta.url);
  const runtimeArgs = RUNTIME === "deno" ? ["run", "-A", self] : RUNTIME === "bun" ? [self] : [...process.execArgv, self];
  const childArgs = [`--impl=${IMPL}`, "--json", `--time=${TIME_MS}`, `--rounds=${ROUNDS}`, `--clock=${CLOCK}`];
  if (ONLY) childArgs.push(`--only=${ONLY}`);
  const child = spawnSync(process.execPath, [...runtimeArgs, ...childArgs], {
    env: { ...process.env, WS_NO_BUFFER_UTIL: "1" },
    encoding: "utf8",
    maxBuffer: 16 * MIB,
  });
  if (child.status !== 0) return `child process failed (${child.status ?? child.signal}): ${child.stderr}`;
  return JSON.parse(child.stdout.trim().split("\n").pop() ?? "");
}

function format(value: number | undefined, unit: Scenario["unit"]): string {
  if (value === undefined) return "—";
  return unit === "frames" ? `${(value / 1e6).toFixed(2)} M/s` : `${(value / 1e9).toFixed(2)} GB/s`;
}

/** anyws/ws per round (the rounds pair them in time): median, lowest, highest. */
function ratios(r: Partial<Record<Side, number[]>> | undefined): { median: number; low: number; high: number } | undefined {
  const theirs = r?.ws;
  if (!r?.anyws || !theirs) return undefined;
  const each = r.anyws.map((a, i) => a / theirs[i]);
  return { median: median(each), low: Math.min(...each), high: Math.max(...each) };
}

function table(rows: string[][]): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows
    .map((r) => r.map((cell, c) => (c < 2 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join("  "))
    .join("\n");
}

/** Targets: 1.5x ws on 32-byte frames; at least ws with bufferutil on 1 MiB. The worse of the two ws runs counts. */
const TARGETS = [
  { ids: ["1a", "1b", "2"], target: 1.5, label: "32 B frames, anyws >= 1.5x ws" },
  { ids: ["3a", "3b", "4"], target: 1, label: "1 MiB frames, anyws >= ws with bufferutil" },
];

function main(): void {
  const sides: Side[] = IMPL === "anyws" ? ["anyws"] : IMPL === "ws" ? ["ws"] : ["anyws", "ws"];
  if (JSON_OUT) {
    console.log(JSON.stringify(runHere(sides)));
    return;
  }
  const version = RUNTIME === "node" ? `Node ${process.version}` : `${RUNTIME} ${process.versions[RUNTIME]}`;
  console.log(`anyws core vs ws ${wsVersion} (Receiver, Sender.frame) on ${version}, ${process.arch}, ${cpus().length} CPUs`);
  console.log(`load average at start: ${loadavg()[0].toFixed(2)}; per side: ${WARMUP_MS} ms warm-up, median of ${ROUNDS} rounds of ${TIME_MS} ms; input copies untimed`);
  if (CLOCK === "cpu") console.log("clock: the process's CPU time (all its threads), not wall time");
  const runs: Run[] = [runHere(sides)];
  if (sides.includes("ws")) {
    const child = runWithoutBufferutil();
    if (typeof child === "string") console.log(`ws without bufferutil: ${child}`);
    else runs.push(child);
  }

  const rows = [["scenario", "ws masking", "anyws", "ws", "anyws/ws", "range"]];
  for (const s of SCENARIOS) {
    runs.forEach((run, i) => {
      const r = run.results[s.id];
      if (!r) return;
      const ratio = ratios(r);
      rows.push([
        i === 0 ? `${s.id.padEnd(3)}${s.title}` : "",
        run.masking,
        format(r.anyws && median(r.anyws), s.unit),
        format(r.ws && median(r.ws), s.unit),
        ratio ? `${ratio.median.toFixed(2)}x` : "—",
        ratio ? `${ratio.low.toFixed(2)}–${ratio.high.toFixed(2)}` : "—",
      ]);
    });
  }
  console.log("\n" + table(rows) + "\n");
  console.log("anyws/ws: median over the rounds of the per-round ratio; range: the lowest and highest of those.");
  if (runs.length > 1) console.log("Each row is one process; the second runs with WS_NO_BUFFER_UTIL=1.");
  console.log("");

  if (sides.length < 2) return;
  for (const { ids, target, label } of TARGETS) {
    const worst = ids
      .map((id) => ({ id, ratio: Math.min(...runs.map((run) => ratios(run.results[id])?.median ?? Infinity)) }))
      .filter((x) => x.ratio !== Infinity);
    if (worst.length === 0) continue;
    const misses = worst.filter((x) => x.ratio < target).map((x) => `${x.id} at ${x.ratio.toFixed(2)}x`);
    console.log(`target ${label}: ${misses.length ? `NOT met (${misses.join(", ")})` : "met"}`);
  }
}

main();
