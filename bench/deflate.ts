/**
 * permessage-deflate: compressed echo, anyws against ws, and memory per compressed connection.
 *
 *   npm run bench                          every bench, Node, Deno and Bun one after another
 *   node dist/bench/deflate.js [options]   after `tsc -p tsconfig.json`
 *   deno run -A bench/deflate.ts [options]
 *   bun bench/deflate.ts [options]
 *
 * Scenarios (--only=1k,64k,memory):
 *   1k / 64k  Compressible JSON-like text messages of exactly 1 KiB and 64 KiB (64 distinct ones,
 *             cycled, so context takeover helps as it would with real traffic but no message is
 *             a copy of the one before). Each implementation runs its own server and its own
 *             clients in this process over loopback, compression on at both ends with the
 *             library's defaults (threshold 1024, level 6, window 15, memLevel 8, at most 10 zlib
 *             jobs at once in zlib's thread pool; anyws compresses messages up to 16 KiB and
 *             inflates up to 256 KiB of output at once on the calling thread, on Deno all of
 *             them, ws none):
 *             anyws `serve({ perMessageDeflate: true })` + `new WebSocket(url)`,
 *             ws `new WebSocketServer({ perMessageDeflate: true })` + `new WebSocket(url,
 *             { perMessageDeflate: true })`. 1k: 16 connections × 16 messages in flight; 64k: 8 × 4
 *             (pipelined: every echo received is answered by the next message). Every echo is
 *             compared with what was sent. Figures: echoes per second (each echo is compressed
 *             and inflated twice, once per direction) and the compression ratio on the wire
 *             (compressed payload bytes / message bytes, measured in an untimed pass).
 *             ws's server hands text to its handler as a Buffer (not decoded); anyws decodes
 *             text to a string (validating UTF-8 on the way) and encodes it again to echo it.
 *   memory    In-memory connection pairs (client core ↔ server core, no sockets), N of them
 *             (--conns=1000), each side having sent one compressed message so that both sides
 *             hold a compressor and a decompressor: resident memory after a full GC, minus the
 *             same pairs without compression, per connection. For windowBits 15/memLevel 8
 *             (the default), windowBits 10/memLevel 4 (with the codec's default 16 KiB output
 *             chunks, and with 4 KiB ones), and 15/8 without context takeover.
 *
 * --plain runs the echo scenarios with compression off at both ends, as a baseline.
 * --sync-compress=N and --sync-inflate=N give anyws a codec of its own with that
 * `syncCompressLimit` / `syncInflateLimit` (bytes; 0: every zlib job asynchronous), for comparisons.
 * Options: --time=MS measured per round (default 2000), --warmup=MS (500), --rounds=N (3; rounds
 * alternate which side goes first), --only=…, --conns=N (memory), --impl=anyws|ws.
 * Echo rates are given per second of wall time and per second of the process's CPU time (all
 * threads, zlib's pool included): the latter is steadier when other processes share the cores.
 * Nothing is asserted about timing.
 */
import { spawnSync } from "node:child_process";
import { cpus, loadavg } from "node:os";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { serve, WebSocket as AnyWebSocket } from "../adapters/auto.ts";
import { engineTuning } from "../adapters/shared/engine.ts";
import { createZlibCodec, type ZlibCodec } from "../adapters/zlib/codec.ts";
import {
  ClientConnection,
  type Connection,
  type DeflateCodec,
  type PerMessageDeflateOptions,
  perMessageDeflateClient,
  perMessageDeflateServer,
  ServerConnection,
} from "../core/mod.ts";
import { option as optionIn, RUNTIME } from "./shared/args.ts";
import { settle } from "./shared/memory.ts";
import { requireWs, wsVersion } from "./shared/ws.ts";

// ---- Options ---------------------------------------------------------------------------------

const args = process.argv.slice(2);
const option = (name: string): string | undefined => optionIn(args, name);
const TIME_MS = Number(option("time") ?? 2000);
const WARMUP_MS = Number(option("warmup") ?? 500);
const ROUNDS = Math.max(1, Number(option("rounds") ?? 3));
const ONLY = option("only")?.split(",") ?? ["1k", "64k", "memory"];
const CONNS = Number(option("conns") ?? 1000);
const IMPL = option("impl") ?? "both";
/** --plain: the same echo with compression off at both ends (a baseline). */
const PLAIN = args.includes("--plain");
/** --sync-compress=N, --sync-inflate=N: anyws on a codec of its own with these limits of its synchronous way. */
const SYNC_COMPRESS = option("sync-compress");
const SYNC_INFLATE = option("sync-inflate");

// ---- ws, the npm package -----------------------------------------------------------------------

interface WsSocket {
  readonly readyState: number;
  send(data: unknown, options?: { binary?: boolean }): void;
  close(): void;
  terminate(): void;
  on(event: string, listener: (...args: never[]) => void): unknown;
  once(event: string, listener: (...args: never[]) => void): unknown;
}
interface WsServerLike {
  address(): { port: number };
  clients: Set<WsSocket>;
  on(event: "connection", listener: (ws: WsSocket) => void): unknown;
  once(event: "listening", listener: () => void): unknown;
  close(callback: () => void): void;
}
type WsCompress = (this: unknown, data: Uint8Array, fin: boolean, callback: (error: Error | null, result?: Uint8Array) => void) => void;

const ws = requireWs<{
  WebSocket: new (url: string, options: { perMessageDeflate: boolean }) => WsSocket;
  WebSocketServer: new (options: { host: string; port: number; perMessageDeflate: boolean }) => WsServerLike;
}>("index.js");
const WsDeflate = requireWs<{ prototype: { compress: WsCompress } }>("lib/permessage-deflate.js");

/** Counts ws's compression, both ends, while `wsCounting` is set. */
const wsCount = { in: 0, out: 0 };
let wsCounting = false;
const wsCompress = WsDeflate.prototype.compress;
WsDeflate.prototype.compress = function (data, fin, callback) {
  if (!wsCounting) return wsCompress.call(this, data, fin, callback);
  wsCount.in += data.length;
  wsCompress.call(this, data, fin, (error, result) => {
    if (result) wsCount.out += result.length;
    callback(error, result);
  });
};

// ---- Messages ----------------------------------------------------------------------------------

const NAMES = ["ada", "grace", "linus", "barbara", "ken", "margaret", "dennis", "frances", "alan", "edsger"];

/** JSON-like text of exactly `size` bytes (ASCII), different for each seed. */
function jsonMessage(size: number, seed: number): string {
  let out = `{"type":"update","seq":${seed},"items":[`;
  for (let i = 0; out.length < size; i++) {
    const n = seed * 7919 + i * 104729;
    out += JSON.stringify({
      id: n % 1_000_003,
      name: NAMES[n % NAMES.length],
      email: `${NAMES[(n >> 3) % NAMES.length]}.${n % 997}@example.com`,
      active: n % 3 === 0,
      score: ((n % 10_000) / 100).toFixed(2),
      tags: ["alpha", "beta", "gamma"].slice(0, 1 + (n % 3)),
    }) + ",";
  }
  return out.slice(0, size - 2) + "]}";
}

function messages(size: number): string[] {
  const list = Array.from({ length: 64 }, (_, i) => jsonMessage(size, i + 1));
  for (const m of list) if (m.length !== size) throw new Error(`message of ${m.length} bytes, not ${size}`);
  return list;
}

// ---- Echo --------------------------------------------------------------------------------------

interface EchoRun {
  /** Echoes received since the start. */
  count(): number;
  stop(): Promise<void>;
}

interface Scenario {
  id: string;
  size: number;
  conns: number;
  window: number;
}

function check(ok: boolean, what: string): void {
  if (!ok) throw new Error(`bench check failed: ${what}`);
}

function delay(ms: number) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Drives `conns` clients that each keep `window` messages in flight and check every echo. */
function pipeline(
  list: string[],
  conns: number,
  window: number,
  send: (client: number, data: string) => void,
): { onEcho(client: number, data: string): void; start(): void; count(): number } {
  const next = new Array<number>(conns).fill(0); // index of the next message to send
  const expected = new Array<number>(conns).fill(0); // index of the next echo
  let count = 0;
  let stopped = false;
  return {
    start() {
      for (let c = 0; c < conns; c++) for (let w = 0; w < window; w++) send(c, list[next[c]++ % list.length]);
    },
    onEcho(c, data) {
      check(data === list[expected[c]++ % list.length], `echo ${expected[c] - 1} on connection ${c}`);
      count++;
      if (!stopped) send(c, list[next[c]++ % list.length]);
    },
    count: () => count,
  };
}

async function anywsEcho(list: string[], conns: number, window: number, codec?: DeflateCodec): Promise<EchoRun> {
  const perMessageDeflate = PLAIN ? false : codec ? { codec } : true;
  const server = await serve({ port: 0, hostname: "127.0.0.1", perMessageDeflate, maxMessageSize: 1 << 24 }, {
    message(socket, data) {
      socket.send(data);
    },
  });
  const clients: InstanceType<typeof AnyWebSocket>[] = [];
  const p = pipeline(list, conns, window, (c, data) => clients[c].send(data));
  for (let c = 0; c < conns; c++) {
    const client = new AnyWebSocket(`ws://127.0.0.1:${server.port}/`, undefined, { perMessageDeflate });
    await new Promise<void>((resolve, reject) => {
      client.onopen = () => resolve();
      client.onerror = (e) => reject((e as ErrorEvent).error);
    });
    check(client.extensions === (PLAIN ? "" : "permessage-deflate"), `anyws negotiated ${client.extensions}`);
    client.onmessage = (e) => p.onEcho(c, (e as MessageEvent).data as string);
    clients.push(client);
  }
  p.start();
  return {
    count: p.count,
    async stop() {
      for (const c of clients) c.close();
      await server.close({ timeout: 1000 });
    },
  };
}

async function wsEcho(list: string[], conns: number, window: number): Promise<EchoRun> {
  const server = new ws.WebSocketServer({ host: "127.0.0.1", port: 0, perMessageDeflate: !PLAIN });
  await new Promise<void>((resolve) => server.once("listening", resolve));
  server.on("connection", (socket) => {
    socket.on("message", ((data: Uint8Array, isBinary: boolean) => socket.send(data, { binary: isBinary })) as never);
  });
  const clients: WsSocket[] = [];
  const p = pipeline(list, conns, window, (c, data) => clients[c].send(data));
  for (let c = 0; c < conns; c++) {
    const client = new ws.WebSocket(`ws://127.0.0.1:${server.address().port}/`, { perMessageDeflate: !PLAIN });
    await new Promise<void>((resolve, reject) => {
      client.once("open", resolve);
      client.once("error", reject as never);
    });
    client.on("message", ((data: Uint8Array) => p.onEcho(c, String(data))) as never);
    clients.push(client);
  }
  p.start();
  return {
    count: p.count,
    async stop() {
      for (const c of clients) c.terminate();
      for (const c of server.clients) c.terminate();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

type Impl = "anyws" | "ws";

/** The process's CPU time (all its threads, zlib's included), in ms. */
function cpuMs(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}

/**
 * Echoes per second of wall time, and per second of the process's CPU time, over `ms` after
 * `warmup`, on a fresh server and clients. The second is steadier when other processes share
 * the cores: it is what the echoes cost, not how fast the machine let them go.
 */
async function echoRate(impl: Impl, s: Scenario, list: string[]): Promise<{ wall: number; cpu: number }> {
  const codec = SYNC_COMPRESS === undefined && SYNC_INFLATE === undefined ? undefined : createZlibCodec({
    syncCompressLimit: SYNC_COMPRESS === undefined ? undefined : Number(SYNC_COMPRESS),
    syncInflateLimit: SYNC_INFLATE === undefined ? undefined : Number(SYNC_INFLATE),
  });
  const run = impl === "anyws" ? await anywsEcho(list, s.conns, s.window, codec) : await wsEcho(list, s.conns, s.window);
  try {
    await delay(WARMUP_MS);
    const c0 = run.count();
    const t0 = performance.now();
    const u0 = cpuMs();
    await delay(TIME_MS);
    const c1 = run.count();
    return { wall: (c1 - c0) / ((performance.now() - t0) / 1000), cpu: (c1 - c0) / ((cpuMs() - u0) / 1000) };
  } finally {
    await run.stop();
  }
}

/** Compressed bytes / message bytes, both directions, over 256 echoes. */
async function ratio(impl: Impl, s: Scenario, list: string[]): Promise<number> {
  const total = 256;
  if (impl === "ws") {
    wsCount.in = wsCount.out = 0;
    wsCounting = true;
    const run = await wsEcho(list, 1, 1);
    while (run.count() < total) await delay(5);
    await run.stop();
    wsCounting = false;
    return wsCount.out / wsCount.in;
  }
  const count = { in: 0, out: 0 };
  const inner = createZlibCodec();
  const codec: DeflateCodec = {
    createCompressor(o) {
      const c = inner.createCompressor(o);
      return {
        compress: (data) => {
          const count1 = (out: Uint8Array) => ((count.in += data.length), (count.out += out.length - 4), out);
          const out = c.compress(data);
          return out instanceof Uint8Array ? count1(out) : out.then(count1);
        },
        close: () => c.close(),
      };
    },
    createDecompressor: (o) => inner.createDecompressor(o),
  };
  const run = await anywsEcho(list, 1, 1, codec);
  while (run.count() < total) await delay(5);
  await run.stop();
  return count.out / count.in;
}

// ---- Memory ------------------------------------------------------------------------------------

/** Opens `n` in-memory pairs; with `options`, each side sends one compressible message first. */
async function openPairs(n: number, options: PerMessageDeflateOptions | null, codec: ZlibCodec): Promise<Connection[]> {
  const kept: Connection[] = [];
  const message = jsonMessage(4096, 1);
  let delivered = 0;
  for (let i = 0; i < n; i++) {
    const pump = () => {
      for (let round = 0; round < 100; round++) {
        const a = client.pollOutput();
        const b = server.pollOutput();
        for (const chunk of a) server.receive(chunk.slice());
        for (const chunk of b) client.receive(chunk.slice());
        for (const e of server.pollEvents()) {
          if (e.type === "upgrade") server.accept();
          else if (e.type === "text") delivered++;
        }
        for (const e of client.pollEvents()) if (e.type === "text") delivered++;
        if (a.length === 0 && b.length === 0) return;
      }
    };
    const server = new ServerConnection({
      extensions: options ? [perMessageDeflateServer({ codec, ...options })] : [],
      onWake: () => pump(),
      tuning: engineTuning(),
    });
    const client = new ClientConnection({
      host: "example.com",
      extensions: options ? [perMessageDeflateClient({ codec, ...options })] : [],
      onWake: () => pump(),
      tuning: engineTuning(),
    });
    pump();
    check(client.readyState === 1 && server.readyState === 1, "pair open");
    if (options) {
      client.sendText(message);
      server.sendText(message);
      pump();
    }
    kept.push(client, server);
  }
  if (options) {
    const deadline = Date.now() + 30_000;
    while (delivered < 2 * n) {
      check(Date.now() < deadline, `delivered ${delivered} of ${2 * n}`);
      await delay(5);
    }
    check(codec.stats.streams === 4 * n, `${codec.stats.streams} zlib streams for ${n} pairs`);
  }
  return kept;
}

async function memoryPerConnection(n: number, options: PerMessageDeflateOptions, chunkSize?: number): Promise<{ rss: number; heap: number }> {
  const codec = createZlibCodec({ chunkSize });
  await settle(3);
  const m0 = process.memoryUsage();
  let plain: Connection[] | null = await openPairs(n, null, codec);
  await settle(3);
  const m1 = process.memoryUsage();
  for (const c of plain) c.abort();
  plain = null;
  await settle(3);
  const m2 = process.memoryUsage();
  let compressed: Connection[] | null = await openPairs(n, options, codec);
  await settle(3);
  const m3 = process.memoryUsage();
  for (const c of compressed) c.abort();
  compressed = null;
  check(codec.stats.streams === 0, "streams freed");
  await settle(3);
  // Compressed pairs minus plain pairs, each measured from the state just before it.
  const perConn = (with_: number, without: number) => (with_ - without) / (2 * n);
  return {
    rss: perConn(m3.rss - m2.rss, m1.rss - m0.rss),
    heap: perConn(m3.heapUsed + m3.external - m2.heapUsed - m2.external, m1.heapUsed + m1.external - m0.heapUsed - m0.external),
  };
}

// ---- Main --------------------------------------------------------------------------------------

function kib(bytes: number): string {
  return `${(bytes / 1024).toFixed(0)} KiB`;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1];

async function main(): Promise<void> {
  const version = RUNTIME === "node" ? `Node ${process.version}` : RUNTIME === "deno" ? `Deno ${(globalThis as { Deno?: { version: { deno: string } } }).Deno!.version.deno}` : `Bun ${(globalThis as { Bun?: { version: string } }).Bun!.version}`;
  console.log(`permessage-deflate: anyws vs ws ${wsVersion} on ${version}, ${process.arch}, ${cpus().length} CPUs, load ${loadavg()[0].toFixed(2)}`);
  const scenarios: Scenario[] = [
    { id: "1k", size: 1024, conns: 16, window: 16 },
    { id: "64k", size: 64 * 1024, conns: 8, window: 4 },
  ].filter((s) => ONLY.includes(s.id));
  const impls: Impl[] = IMPL === "both" ? ["anyws", "ws"] : [IMPL as Impl];
  for (const s of scenarios) {
    const list = messages(s.size);
    const rates: Record<Impl, { wall: number; cpu: number }[]> = { anyws: [], ws: [] };
    const ratios = {} as Record<Impl, number>;
    for (const impl of impls) ratios[impl] = await ratio(impl, s, list);
    for (let round = 0; round < ROUNDS; round++) {
      for (const impl of round % 2 === 0 ? impls : [...impls].reverse()) rates[impl].push(await echoRate(impl, s, list));
    }
    console.log(`\n${s.id}: ${s.size}-byte JSON-like text, ${s.conns} connections × ${s.window} in flight, ${WARMUP_MS} ms warm-up, median of ${ROUNDS} × ${TIME_MS} ms`);
    for (const impl of impls) {
      const wall = rates[impl].map((r) => r.wall);
      const cpu = rates[impl].map((r) => r.cpu);
      console.log(
        `  ${impl.padEnd(6)} ${median(wall).toFixed(0).padStart(7)} echoes/s (${wall.map((x) => x.toFixed(0)).join(", ")})` +
          `  ${median(cpu).toFixed(0).padStart(7)} echoes/CPU-s (${cpu.map((x) => x.toFixed(0)).join(", ")})` +
          `  wire/payload ${(ratios[impl] * 100).toFixed(1)}%`,
      );
    }
    if (impls.length === 2) {
      for (const clock of ["wall", "cpu"] as const) {
        const perRound = rates.anyws.map((a, i) => a[clock] / rates.ws[i][clock]);
        console.log(`  anyws/ws by ${clock === "wall" ? "wall time" : "CPU time "} ${median(perRound).toFixed(2)} (per round: ${perRound.map((x) => x.toFixed(2)).join(", ")})`);
      }
    }
  }
  if (ONLY.includes("memory")) {
    console.log(`\nmemory per connection (${CONNS} in-memory pairs, each side compressed and inflated one message; after GC; one process per row):`);
    MEMORY_CONFIGS.forEach(([what], i) => {
      const m = memoryInChild(i);
      console.log(`  ${what.padEnd(56)} ${typeof m === "string" ? m : `RSS ${kib(m.rss).padStart(8)}   JS heap + external ${kib(m.heap).padStart(8)}`}`);
    });
  }
}

const SMALL_WINDOW = { serverMaxWindowBits: 10, clientMaxWindowBits: 10, memLevel: 4 };
const MEMORY_CONFIGS: [string, PerMessageDeflateOptions, number?][] = [
  ["windowBits 15, memLevel 8 (default), context takeover", {}],
  ["windowBits 10, memLevel 4, context takeover", SMALL_WINDOW],
  ["windowBits 10, memLevel 4, codec chunkSize 4 KiB", SMALL_WINDOW, 4096],
  ["windowBits 15, memLevel 8, no context takeover", { serverNoContextTakeover: true, clientNoContextTakeover: true }],
];

/**
 * One memory figure, measured in a fresh process of this runtime: freed memory is not given back
 * to the system at once, so a second measurement in the same process would reuse the first's pages.
 */
function memoryInChild(index: number): { rss: number; heap: number } | string {
  const script = fileURLToPath(import.meta.url);
  const rest = [script, `--memory-child=${index}`, `--conns=${CONNS}`];
  const argv = RUNTIME === "node" ? ["--expose-gc", ...rest] : RUNTIME === "deno" ? ["run", "-A", "--v8-flags=--expose-gc", ...rest] : rest;
  const child = spawnSync(process.execPath, argv, { encoding: "utf8", timeout: 120_000 });
  const line = String(child.stdout ?? "").trim().split("\n").at(-1) ?? "";
  try {
    return JSON.parse(line) as { rss: number; heap: number };
  } catch {
    return `failed: ${child.status} ${String(child.stderr ?? "").slice(0, 500)}`;
  }
}

const MEMORY_CHILD = option("memory-child");
if (MEMORY_CHILD !== undefined) {
  const [, options, chunkSize] = MEMORY_CONFIGS[Number(MEMORY_CHILD)];
  console.log(JSON.stringify(await memoryPerConnection(CONNS, options, chunkSize)));
} else {
  await main();
}
process.exit(0);
