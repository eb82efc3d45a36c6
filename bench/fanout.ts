/**
 * Fan-out benchmark: N connections in one room, M of them publishing; every message a publisher
 * sends is published by the server to the whole room (its sender included). Delivered messages
 * per second and delivery latency are measured at the clients; the main figure is deliveries
 * per second of server CPU time, which holds on a machine the load generator shares.
 *
 *   node dist/bench/fanout.js [options]        after `tsc -p tsconfig.json`
 *   deno run -A bench/fanout.ts [options]
 *   bun bench/fanout.ts [options]
 *
 * Servers (--servers=a,b,…, or `all`; default: those of the runtime running this file), each in
 * its own process (bench/fanout/server.ts), whatever runtime runs this file:
 *   anyws-node, anyws-deno, anyws-bun   anyws `server.publish` (bench/fanout/anyws.ts)
 *   uws     uWebSockets.js `app.publish` on Node (@trufflesuite/uws-js-unofficial)
 *   ws      `ws` on Node, a loop over `wss.clients`
 *   bun     `Bun.serve` `server.publish`
 *   deno    `Deno.upgradeWebSocket` sockets, a loop over them
 *
 * The load generator is bench/fanout/loadgen.c, compiled on first use with `cc -O2` into
 * dist/bench/fanout/loadgen: one C process, epoll over every socket. Publishers keep --window
 * messages each in flight (a new one when one of their own comes back), so latency is mostly
 * queueing: p50 ≈ messages in flight / throughput. Every connection checks every publisher's
 * sequence numbers: a run with a message lost, duplicated or out of order fails. Server CPU is
 * read from /proc/PID/stat at the start and end of the measured window.
 *
 * Options: --rooms=100x4,1000x1 (connections x publishers), --size=64 (bytes of text, ≥ 41),
 * --window=16, --warmup=MS (1000), --time=MS (3000), --rounds=N (3; the order of the servers
 * rotates from round to round), --verbose (every run's raw result).
 *
 * Other modes (run from Node: `node dist/bench/fanout.js --mode=…`):
 *   --mode=redis    the same rooms over two Node server processes sharing them through a
 *                   redis-server of its own (free loopback port, temporary directory, stopped by
 *                   PID; --redis-server=PATH): anyws with its Redis backplane (node-redis) against
 *                   socket.io with `@socket.io/redis-adapter`, and one anyws process without a
 *                   broker. The load generator spreads connections (and publishers) over both.
 *   --mode=memory   one fresh Node server per side (--servers=anyws-node,ws) holding --idle=N
 *                   (100,000) idle connections in the room, opened from 127.0.0.2, 127.0.0.3, …;
 *                   RSS and JS heap per connection after a full GC. N is capped by the open-file
 *                   limit (each connection costs the server and the load generator a descriptor).
 * Nothing is asserted about timing.
 */
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { createServer as createNetServer } from "node:net";
import { cpus, loadavg, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import process from "node:process";
import { Child } from "./shared/child.ts";
import { ROOT, type Runtime, runtimeCommand } from "./shared/runtimes.ts";
import { numberOption, option, RUNTIME } from "./fanout/common.ts";

const args = process.argv.slice(2);
const TIME_MS = numberOption(args, "time", 3000);
const WARMUP_MS = numberOption(args, "warmup", 1000);
const ROUNDS = Math.max(1, numberOption(args, "rounds", 3));
const WINDOW = numberOption(args, "window", 16);
const SIZE = numberOption(args, "size", 64);
const VERBOSE = args.includes("--verbose");
const ROOMS = (option(args, "rooms") ?? "100x4,1000x1").split(",").map((r) => {
  const [conns, pubs] = r.split("x").map(Number);
  if (!(conns >= 1 && pubs >= 1 && pubs <= conns)) throw new Error(`--rooms=${r}: CONNSxPUBLISHERS`);
  return { conns, pubs };
});

const LOADGEN_C = join(ROOT, "bench", "fanout", "loadgen.c");
const LOADGEN = join(ROOT, "dist", "bench", "fanout", "loadgen");

// ---- Servers ------------------------------------------------------------------------------------

interface ServerKind {
  id: string;
  runtime: Runtime;
  impl: string;
}
const KINDS: ServerKind[] = [
  { id: "anyws-node", runtime: "node", impl: "anyws" },
  { id: "uws", runtime: "node", impl: "uws" },
  { id: "ws", runtime: "node", impl: "ws" },
  { id: "anyws-bun", runtime: "bun", impl: "anyws" },
  { id: "bun", runtime: "bun", impl: "bun" },
  { id: "anyws-deno", runtime: "deno", impl: "anyws" },
  { id: "deno", runtime: "deno", impl: "deno" },
];
/** anyws against each reference, per CPU-second. */
const PAIRS: [string, string][] = [["anyws-node", "uws"], ["anyws-node", "ws"], ["anyws-bun", "bun"], ["anyws-deno", "deno"]];

const wanted = option(args, "servers") ?? KINDS.filter((k) => k.runtime === RUNTIME).map((k) => k.id).join(",");
const SELECTED = wanted === "all" ? KINDS : wanted.split(",").map((id) => {
  const kind = KINDS.find((k) => k.id === id);
  if (!kind) throw new Error(`--servers: unknown server ${id} (${KINDS.map((k) => k.id).join(", ")}, all)`);
  return kind;
});

export interface Server {
  kind: ServerKind;
  child: Child;
  port: number;
  pid: number;
  name: string;
}

export async function startServer(kind: ServerKind, extra: string[] = []): Promise<Server> {
  const [command, argv] = runtimeCommand(kind.runtime, join("bench", "fanout", "server"), { gc: true });
  const child = new Child(command, [...argv, `--impl=${kind.impl}`, ...extra], `${kind.id} server`, ROOT);
  const ready = await child.next(30_000);
  return { kind, child, port: ready.port as number, pid: ready.pid as number, name: ready.name as string };
}

// ---- The load generator -------------------------------------------------------------------------

/** Compiles bench/fanout/loadgen.c when its binary is missing or older. */
export function ensureLoadgen(): string {
  const mtime = (f: string) => (existsSync(f) ? statSync(f).mtimeMs : -1);
  if (mtime(LOADGEN) >= mtime(LOADGEN_C)) return LOADGEN;
  mkdirSync(dirname(LOADGEN), { recursive: true });
  console.log(`compiling the load generator: cc -O2 -o ${LOADGEN} ${LOADGEN_C}`);
  const cc = spawnSync("cc", ["-O2", "-o", LOADGEN, LOADGEN_C], { encoding: "utf8" });
  if (cc.status !== 0) throw new Error(`cc failed: ${cc.stderr || cc.error}`);
  return LOADGEN;
}

/** What bench/fanout/loadgen.c prints after a fan-out run. */
export interface LoadResult {
  deliveries: number;
  seconds: number;
  loaderCpu: number;
  serverCpu: number;
  /** CPU seconds of the broker (redis-server) over the window, when its pid was given. */
  brokerCpu: number;
  latency: { p50: number; p90: number; p99: number; max: number };
  published: number;
  received: number;
  expected: number;
  lost: number;
  reordered: number;
  missing: number;
  bad: number;
  complete: boolean;
}

/** One load generator run against `ports` (connections spread over them in turn); throws when a message went missing or out of order. */
export async function runLoad(ports: number[], pids: number[], room: { conns: number; pubs: number }, extra: string[] = []): Promise<LoadResult> {
  const argv = [
    "--mode=fanout", `--port=${ports.join(",")}`, `--server-pids=${pids.join(",")}`, `--conns=${room.conns}`, `--pubs=${room.pubs}`,
    `--window=${WINDOW}`, `--size=${SIZE}`, `--warmup=${WARMUP_MS}`, `--time=${TIME_MS}`, ...extra,
  ];
  const child = new Child(LOADGEN, argv, "load generator", ROOT);
  const result = (await child.next(WARMUP_MS + TIME_MS + 120_000)) as unknown as LoadResult;
  const code = await child.exited;
  if (code !== 0 || !result.complete || result.lost || result.reordered || result.bad) {
    throw new Error(`load generator (${argv.join(" ")}): messages lost or out of order: ${JSON.stringify(result)} ${child.errors}`);
  }
  return result;
}

// ---- Reporting ----------------------------------------------------------------------------------

export const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

export const k = (x: number): string => `${Math.round(x / 1000).toLocaleString("en-US")}k`;
/** "median (min–max)" of a list of figures. */
export const spread = (xs: number[], f: (x: number) => string): string =>
  xs.length === 1 ? f(xs[0]) : `${f(median(xs))} (${f(Math.min(...xs))}–${f(Math.max(...xs))})`;

export function table(cells: string[][]): string {
  const widths = cells[0].map((_, c) => Math.max(...cells.map((r) => r[c].length)));
  return cells.map((r) => r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join("  ")).join("\n");
}

// ---- Main ---------------------------------------------------------------------------------------

async function main(): Promise<void> {
  ensureLoadgen();
  const started = performance.now();
  console.log(`anyws fan-out benchmark: ${cpus().length} CPUs, load average ${loadavg()[0].toFixed(2)}`);
  console.log(`${SIZE} B text, ${WINDOW} messages in flight per publisher, ${WARMUP_MS} ms warm-up + ${TIME_MS} ms measured, ${ROUNDS} round(s)`);
  const servers: Server[] = [];
  /** results[room][server id] = one LoadResult per round */
  const results = ROOMS.map(() => new Map<string, LoadResult[]>());
  try {
    for (const kind of SELECTED) servers.push(await startServer(kind));
    for (const s of servers) console.log(`  ${s.kind.id}: ${s.name}, pid ${s.pid}`);
    for (let round = 0; round < ROUNDS; round++) {
      for (const [r, room] of ROOMS.entries()) {
        const order = servers.map((_, i) => servers[(i + round) % servers.length]);
        for (const s of order) {
          const result = await runLoad([s.port], [s.pid], room);
          if (VERBOSE) console.log(JSON.stringify({ round, room, server: s.kind.id, ...result }));
          const list = results[r].get(s.kind.id) ?? [];
          list.push(result);
          results[r].set(s.kind.id, list);
        }
      }
    }
  } finally {
    for (const s of servers) await s.child.quit();
  }

  for (const [r, room] of ROOMS.entries()) {
    console.log(`\n${room.conns.toLocaleString("en-US")} connections in one room, ${room.pubs} publisher(s): median (min–max) of ${ROUNDS} round(s)`);
    const cells = [["server", "deliveries/s", "per server CPU-s", "server CPU", "loader CPU", "latency p50", "p99"]];
    for (const s of servers) {
      const list = results[r].get(s.kind.id)!;
      cells.push([
        `${s.kind.id} (${s.name})`,
        spread(list.map((x) => x.deliveries / x.seconds), k),
        spread(list.map((x) => x.deliveries / x.serverCpu), k),
        `${Math.round(median(list.map((x) => x.serverCpu / x.seconds)) * 100)}%`,
        `${Math.round(median(list.map((x) => x.loaderCpu / x.seconds)) * 100)}%`,
        `${(median(list.map((x) => x.latency.p50)) / 1000).toFixed(1)} ms`,
        `${(median(list.map((x) => x.latency.p99)) / 1000).toFixed(1)} ms`,
      ]);
    }
    console.log(table(cells));
    const ratios = [["ratio per server CPU-s (per round)", "median", "min", "max"]];
    for (const [a, b] of PAIRS) {
      const ra = results[r].get(a);
      const rb = results[r].get(b);
      if (!ra || !rb) continue;
      const each = ra.map((x, i) => (x.deliveries / x.serverCpu) / (rb[i].deliveries / rb[i].serverCpu));
      ratios.push([`${a} / ${b}`, `${median(each).toFixed(2)}x`, `${Math.min(...each).toFixed(2)}x`, `${Math.max(...each).toFixed(2)}x`]);
    }
    if (ratios.length > 1) console.log("\n" + table(ratios));
  }
  console.log("\nEvery run: no message lost, duplicated or out of order (per-publisher sequence numbers checked at every connection).");
  console.log("server CPU / loader CPU: share of one core over the measured window. Latency: send to receipt at the clients,");
  console.log("closed loop, so it is mostly queueing (messages in flight / throughput).");
  console.log(`(${((performance.now() - started) / 1000).toFixed(0)} s)`);
}

// ---- Memory: idle connections ------------------------------------------------------------------

/** The soft and hard limits on open files of this process (children inherit them), from /proc. */
function openFileLimits(): [number, number] {
  try {
    const line = readFileSync("/proc/self/limits", "latin1").split("\n").find((l) => l.startsWith("Max open files"));
    const [soft, hard] = line!.slice("Max open files".length).trim().split(/\s+/).map(Number);
    return [soft, hard];
  } catch {
    return [NaN, NaN];
  }
}

/**
 * One fresh Node server per side holding IDLE idle connections (all in the room), opened by the
 * load generator from loopback source addresses 127.0.0.2, 127.0.0.3, … (25,000 each, within
 * the ephemeral port range); RSS and JS heap after a full GC, minus the same with none open
 * (after 200 were opened and closed, to load and warm the code), per connection.
 */
async function memory(): Promise<void> {
  const [soft, hard] = openFileLimits();
  // The server and the load generator each hold a descriptor per connection; leave room for the rest.
  const ceiling = Number.isFinite(soft) ? Math.max(1000, Math.floor((soft - 500) / 1000) * 1000) : 100_000;
  const idle = Math.min(numberOption(args, "idle", 100_000), ceiling);
  const sources = Array.from({ length: Math.ceil(idle / 25_000) }, (_, i) => `127.0.0.${i + 2}`);
  console.log(`memory: ${idle.toLocaleString("en-US")} idle connections per server, from ${sources.join(", ")}`);
  if (idle < numberOption(args, "idle", 100_000)) {
    console.log(`  (not more: this process may open ${soft} files, hard limit ${hard}, and the server needs one per connection)`);
  }
  const kinds = (option(args, "servers") ?? "anyws-node,ws").split(",").map((id) => KINDS.find((k) => k.id === id)!);
  const rows = [["server", "RSS per connection", "JS heap per connection", "RSS with none", "RSS with all"]];
  for (const kind of kinds) {
    const server = await startServer(kind);
    const loader = new Child(LOADGEN, ["--mode=idle", `--port=${server.port}`, `--sources=${sources.join(",")}`], "load generator (idle)", ROOT);
    const mem = async () => {
      server.child.send("mem");
      return (await server.child.next()) as { rss: number; heapUsed: number };
    };
    const open = async (command: string, expected: number) => {
      loader.send(command);
      const line = await loader.next(600_000);
      if (line.open !== expected) throw new Error(`load generator: ${line.open} connections open, expected ${expected}`);
      await new Promise((resolve) => setTimeout(resolve, 500));
    };
    try {
      await open("open 200", 200);
      await open("close", 0);
      const before = await mem();
      await open(`open ${idle}`, idle);
      const after = await mem();
      rows.push([
        `${kind.id} (${server.name})`,
        `${((after.rss - before.rss) / idle).toFixed(0)} B`,
        `${((after.heapUsed - before.heapUsed) / idle).toFixed(0)} B`,
        `${(before.rss / 2 ** 20).toFixed(1)} MiB`,
        `${(after.rss / 2 ** 20).toFixed(1)} MiB`,
      ]);
      await open("close", 0);
    } finally {
      await loader.quit();
      await server.child.quit();
    }
  }
  console.log(table(rows));
}

// ---- Two processes and Redis --------------------------------------------------------------------

/** A redis-server of our own on a free loopback port, with a temporary directory, no persistence. */
async function startRedis(): Promise<{ url: string; pid: number; stop(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), "anyws-fanout-redis-"));
  const port = await new Promise<number>((resolve) => {
    const probe = createNetServer().listen(0, "127.0.0.1", () => {
      const p = (probe.address() as { port: number }).port;
      probe.close(() => resolve(p));
    });
  });
  const redis = spawn(option(args, "redis-server") ?? "redis-server", [
    "--port", String(port), "--bind", "127.0.0.1", "--dir", dir, "--save", "", "--appendonly", "no", "--daemonize", "no",
  ], { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  redis.stdout!.on("data", (d: Uint8Array) => (output += new TextDecoder().decode(d)));
  const deadline = Date.now() + 10_000;
  while (!output.includes("Ready to accept connections")) {
    if (redis.exitCode !== null || Date.now() > deadline) throw new Error(`redis-server did not start: ${output}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return {
    url: `redis://127.0.0.1:${port}`,
    pid: redis.pid!,
    async stop() {
      redis.kill("SIGTERM");
      if (redis.exitCode === null) await new Promise((resolve) => redis.once("exit", resolve));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * The same rooms over two Node server processes sharing them through Redis (connections spread
 * over both in turn, publishers too): anyws with its Redis backplane against socket.io with its
 * Redis adapter, and one anyws process without a broker beside them.
 */
async function twoProcesses(): Promise<void> {
  const redis = await startRedis();
  console.log(`redis-server ${redis.url}, pid ${redis.pid}`);
  const anyws = KINDS[0];
  const sio: ServerKind = { id: "socketio", runtime: "node", impl: "socketio" };
  const setups: { id: string; servers: Server[]; sio?: boolean; broker?: boolean }[] = [];
  try {
    setups.push({ id: "anyws, 1 process", servers: [await startServer(anyws)] });
    setups.push({ id: "anyws, 2 processes + Redis", servers: [await startServer(anyws, [`--redis=${redis.url}`]), await startServer(anyws, [`--redis=${redis.url}`])], broker: true });
    setups.push({ id: "socket.io, 2 processes + Redis", servers: [await startServer(sio, [`--redis=${redis.url}`]), await startServer(sio, [`--redis=${redis.url}`])], sio: true, broker: true });
    for (const s of setups) console.log(`  ${s.id}: ${s.servers[0].name}, pids ${s.servers.map((x) => x.pid).join(", ")}`);
    const results = ROOMS.map(() => new Map<string, LoadResult[]>());
    for (let round = 0; round < ROUNDS; round++) {
      for (const [r, room] of ROOMS.entries()) {
        for (const [i] of setups.entries()) {
          const s = setups[(i + round) % setups.length];
          const extra = [...(s.sio ? ["--sio"] : []), ...(s.broker ? [`--broker-pid=${redis.pid}`] : [])];
          const result = await runLoad(s.servers.map((x) => x.port), s.servers.map((x) => x.pid), room, extra);
          if (VERBOSE) console.log(JSON.stringify({ round, room, setup: s.id, ...result }));
          const list = results[r].get(s.id) ?? [];
          list.push(result);
          results[r].set(s.id, list);
        }
      }
    }
    for (const [r, room] of ROOMS.entries()) {
      console.log(`\n${room.conns.toLocaleString("en-US")} connections in one room, ${room.pubs} publisher(s): median (min–max) of ${ROUNDS} round(s)`);
      const cells = [["setup", "deliveries/s", "per server CPU-s", "servers' CPU", "Redis CPU", "loader CPU", "latency p50", "p99"]];
      for (const s of setups) {
        const list = results[r].get(s.id)!;
        cells.push([
          s.id,
          spread(list.map((x) => x.deliveries / x.seconds), k),
          spread(list.map((x) => x.deliveries / x.serverCpu), k),
          `${Math.round(median(list.map((x) => x.serverCpu / x.seconds)) * 100)}%`,
          s.broker ? `${Math.round(median(list.map((x) => x.brokerCpu / x.seconds)) * 100)}%` : "",
          `${Math.round(median(list.map((x) => x.loaderCpu / x.seconds)) * 100)}%`,
          `${(median(list.map((x) => x.latency.p50)) / 1000).toFixed(1)} ms`,
          `${(median(list.map((x) => x.latency.p99)) / 1000).toFixed(1)} ms`,
        ]);
      }
      console.log(table(cells));
      const a = results[r].get(setups[1].id)!;
      const b = results[r].get(setups[2].id)!;
      const one = results[r].get(setups[0].id)!;
      const each = a.map((x, i) => (x.deliveries / x.serverCpu) / (b[i].deliveries / b[i].serverCpu));
      const grow = a.map((x, i) => (x.deliveries / x.seconds) / (one[i].deliveries / one[i].seconds));
      console.log(`anyws / socket.io, 2 processes + Redis, per server CPU-s: ${spread(each, (x) => `${x.toFixed(2)}x`)}`);
      console.log(`anyws, deliveries/s on 2 processes + Redis / on 1 process: ${spread(grow, (x) => `${x.toFixed(2)}x`)}`);
    }
    console.log("\nCPU: share of one core over the measured window (servers: both processes added up). 2 cores in all.");
  } finally {
    for (const s of setups) for (const x of s.servers) await x.child.quit();
    await redis.stop();
  }
}

const MODE = option(args, "mode") ?? "fanout";
if (MODE === "memory") await (ensureLoadgen(), memory());
else if (MODE === "redis") await (ensureLoadgen(), twoProcesses());
else if (MODE === "fanout") await main();
else throw new Error(`--mode=${MODE}: fanout, redis or memory`);
