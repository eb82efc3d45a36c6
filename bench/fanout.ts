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
 * Nothing is asserted about timing.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, statSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { dirname, join } from "node:path";
import process from "node:process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
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

const HERE = dirname(fileURLToPath(import.meta.url));
const COMPILED = import.meta.url.endsWith(".js"); // dist/bench/fanout.js on Node
const ROOT = COMPILED ? join(HERE, "..", "..") : join(HERE, "..");
const BIN = join(ROOT, "node_modules", ".bin");
const LOADGEN_C = join(ROOT, "bench", "fanout", "loadgen.c");
const LOADGEN = join(ROOT, "dist", "bench", "fanout", "loadgen");
const NODE = RUNTIME === "node" ? process.execPath : (process.env.ANYWS_BENCH_NODE ?? "node");

// ---- Servers ------------------------------------------------------------------------------------

type Runtime = "node" | "deno" | "bun";
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

/** A child process whose stdout is read as JSON lines. */
class Child {
  readonly process: ChildProcess;
  private readonly lines: string[] = [];
  private waiting: (() => void) | null = null;
  private stderr = "";
  readonly exited: Promise<number | null>;

  readonly what: string;

  constructor(command: string, argv: string[], what: string) {
    this.what = what;
    this.process = spawn(command, argv, { cwd: ROOT, stdio: ["pipe", "pipe", "pipe"] });
    this.process.stderr!.on("data", (d: Uint8Array) => {
      this.stderr = (this.stderr + new TextDecoder().decode(d)).slice(-10_000);
    });
    createInterface({ input: this.process.stdout! }).on("line", (line) => {
      this.lines.push(line);
      this.waiting?.();
    });
    this.exited = new Promise((resolve) => this.process.on("exit", (code) => {
      resolve(code);
      this.waiting?.();
    }));
  }

  /** The next JSON line (waits for it). */
  async next(timeoutMs = 60_000): Promise<Record<string, unknown>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const line = this.lines.shift();
      if (line !== undefined) {
        try {
          return JSON.parse(line);
        } catch {
          continue; // something else the process printed
        }
      }
      if (this.process.exitCode !== null || this.process.signalCode !== null) {
        throw new Error(`${this.what} exited (${this.process.exitCode ?? this.process.signalCode}): ${this.stderr.trim()}`);
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${this.what}: no answer within ${timeoutMs} ms. ${this.stderr.trim()}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiting = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.waiting = null;
    }
  }

  get errors(): string {
    return this.stderr.trim();
  }

  send(line: string): void {
    this.process.stdin!.write(line + "\n");
  }

  async quit(): Promise<void> {
    this.process.stdin!.end();
    const timer = setTimeout(() => this.process.kill("SIGKILL"), 5000);
    await this.exited;
    clearTimeout(timer);
  }
}

export interface Server {
  kind: ServerKind;
  child: Child;
  port: number;
  pid: number;
  name: string;
}

/** The command that runs `script` (a bench/ path without extension) on `runtime`. */
export function runtimeCommand(runtime: Runtime, script: string, flags: { gc?: boolean } = {}): [string, string[]] {
  if (runtime === "node") return [NODE, [...(flags.gc ? ["--expose-gc"] : []), join(ROOT, "dist", `${script}.js`)]];
  if (runtime === "deno") {
    const deno = RUNTIME === "deno" ? process.execPath : join(BIN, "deno");
    return [deno, ["run", "-A", ...(flags.gc ? ["--v8-flags=--expose-gc"] : []), join(ROOT, `${script}.ts`)]];
  }
  return [RUNTIME === "bun" ? process.execPath : join(BIN, "bun"), [join(ROOT, `${script}.ts`)]];
}

export async function startServer(kind: ServerKind, extra: string[] = []): Promise<Server> {
  const [command, argv] = runtimeCommand(kind.runtime, join("bench", "fanout", "server"), { gc: true });
  const child = new Child(command, [...argv, `--impl=${kind.impl}`, ...extra], `${kind.id} server`);
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
  const child = new Child(LOADGEN, argv, "load generator");
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

await main();
