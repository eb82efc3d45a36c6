/**
 * End-to-end echo benchmark: the anyws server against the runtime's reference server, each in
 * its own process, both loaded by the same load generator (a separate Node process).
 *
 *   npm run bench                         every bench, Node, Deno and Bun one after another
 *   npm run bench:echo [-- options]       this bench only: tsc, then Node, Deno and Bun
 *   node dist/bench/echo.js --runtimes=deno,bun [options]   the same, on the runtimes named
 *   node dist/bench/echo.js [options]     after `tsc -p tsconfig.json`
 *   deno run -A bench/echo.ts [options]
 *   bun bench/echo.ts [options]
 *
 * Reference servers: Node — `ws` (bench/echo/ref.node.ts); Deno — `Deno.serve` +
 * `Deno.upgradeWebSocket` (ref.deno.ts); Bun — `Bun.serve` with a `websocket` handler
 * (ref.bun.ts). anyws — `serve()` from adapters/auto.ts (anyws.ts). Each echoes every message
 * back as it came (text as text, binary as binary), defaults otherwise (no compression).
 *
 * The load generator (bench/echo/load.ts, compiled to dist/ and run by Node, whatever runtime
 * runs this file) uses raw `node:net` sockets with frames masked once before the run, and
 * checks every echoed message (opcode, length, bytes, order), so a broken server fails the
 * run instead of posting a number. Its CPU use is printed: a load generator near 100% would be
 * the bottleneck, not the server.
 *
 * Scenarios (--only=small,16k,1m,latency,handshake,memory):
 *   small      32-byte text messages, 64 connections each keeping 16 messages in flight
 *              (pipelined echo: every echo received is answered by a new message): messages/s
 *   16k / 1m   16 KiB binary (16 conns × 4 in flight), 1 MiB binary (4 conns × 2): MB/s of
 *              payload echoed (each byte crosses the loopback twice)
 *   latency    32-byte text, 1 connection, 1 message in flight: round trip p50 and p99
 *   handshake  16 loops of connect, upgrade, close handshake, TCP close: handshakes/s
 *   memory     a fresh server process; 10,000 idle connections (the load generator holds them):
 *              the server's RSS and JS heap after a full GC, minus the same with none open
 *              (after 200 were opened and closed, to load and warm the code), per connection
 *
 * Options: --time=MS measured per round (default 1500), --warmup=MS (500), --rounds=N (2; rounds
 * alternate which server goes first, ratios are the median of the per-round ratios),
 * --idle=N (10000), --small=CONNSxWINDOW, --16k=…, --1m=…, --handshake=CONNS,
 * --impl=anyws|ref (one side only, e.g. for profiling), --server-flags="…" (runtime flags for
 * the server processes, e.g. --server-flags=--cpu-prof on Node), --verbose (every run's raw result).
 *
 * On a shared machine (Linux): the CPU time of the machine, the server and the load generator
 * is read from /proc around each measured window; before each run the bench waits (up to
 * --quiet-wait=MS, default 10000) for other processes to leave the CPUs idle, does a run again
 * (up to --retries=N, default 2) when they used more than a quarter of a core during it, and
 * warns when the numbers it kept are still disturbed.
 * Nothing is asserted about timing; the targets of issue 3 are reported as met or not.
 */
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { Child } from "./shared/child.ts";
import { NODE, ROOT, runtimeCommand } from "./shared/runtimes.ts";
import { type LoadResult, type MemoryReport, numberOption, option, RUNTIME } from "./echo/common.ts";

// ---- Options ------------------------------------------------------------------------------------

const args = process.argv.slice(2);
const TIME_MS = numberOption(args, "time", 1500);
const WARMUP_MS = numberOption(args, "warmup", 500);
const ROUNDS = Math.max(1, numberOption(args, "rounds", 2));
const IDLE = numberOption(args, "idle", 10_000);
const ONLY = option(args, "only")?.split(",");
const IMPL = option(args, "impl") ?? "both";
const SERVER_FLAGS = option(args, "server-flags")?.split(" ").filter(Boolean) ?? [];
const VERBOSE = args.includes("--verbose");
/** Before each measured run, wait up to this long for other processes to go quiet (ms). */
const QUIET_WAIT = numberOption(args, "quiet-wait", 10_000);
/** A run during which other processes used the CPU is done again, at most this many times. */
const RETRIES = numberOption(args, "retries", 2);

type Impl = "anyws" | "ref";
const IMPLS: Impl[] = IMPL === "anyws" ? ["anyws"] : IMPL === "ref" ? ["ref"] : ["anyws", "ref"];

/** "64x16" → [64, 16]. */
function shape(id: string, conns: number, window: number): [number, number] {
  const text = option(args, id);
  if (text === undefined) return [conns, window];
  const [c, w] = text.split("x").map(Number);
  if (!(c >= 1) || (text.includes("x") && !(w >= 1))) throw new Error(`--${id}=${text}: CONNSxWINDOW`);
  return [c, w ?? window];
}

const LOAD_JS = join(ROOT, "dist", "bench", "echo", "load.js");

// ---- Scenarios ----------------------------------------------------------------------------------

interface Echo {
  kind: "echo";
  id: string;
  title: string;
  size: number;
  binary: boolean;
  conns: number;
  window: number;
  latency?: boolean;
}
interface Handshake {
  kind: "handshake";
  id: string;
  title: string;
  conns: number;
}
interface Memory {
  kind: "memory";
  id: string;
  title: string;
}
type Scenario = Echo | Handshake | Memory;

const [smallC, smallW] = shape("small", 64, 16);
const [midC, midW] = shape("16k", 16, 4);
const [bigC, bigW] = shape("1m", 4, 2);
const [hsC] = shape("handshake", 16, 1);

const SCENARIOS: Scenario[] = [
  { kind: "echo", id: "small", title: `32 B text, ${smallC} conns × ${smallW} in flight`, size: 32, binary: false, conns: smallC, window: smallW },
  { kind: "echo", id: "16k", title: `16 KiB binary, ${midC} conns × ${midW} in flight`, size: 16384, binary: true, conns: midC, window: midW },
  { kind: "echo", id: "1m", title: `1 MiB binary, ${bigC} conns × ${bigW} in flight`, size: 1 << 20, binary: true, conns: bigC, window: bigW },
  { kind: "echo", id: "latency", title: "32 B text, 1 conn × 1 in flight", size: 32, binary: false, conns: 1, window: 1, latency: true },
  { kind: "handshake", id: "handshake", title: `${hsC} loops of connect, upgrade, close`, conns: hsC },
  { kind: "memory", id: "memory", title: `${IDLE.toLocaleString("en-US")} idle connections` },
].filter((s) => !ONLY || ONLY.includes(s.id)) as Scenario[];

// ---- Child processes ----------------------------------------------------------------------------

/**
 * CPU seconds used so far by every user-space process but `exclude` (the run's own), by pid, from
 * /proc; null without /proc. Kernel threads are left out: on loopback, softirq work is the run's
 * own packets, and the kernel charges it inconsistently.
 */
function othersCpu(exclude: Set<number | undefined>): Map<number, number> | null {
  let pids: string[];
  try {
    pids = readdirSync("/proc").filter((name) => /^\d+$/.test(name));
  } catch {
    return null;
  }
  const cpu = new Map<number, number>();
  for (const name of pids) {
    const pid = Number(name);
    if (exclude.has(pid)) continue;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (pid === 2 || fields[1] === "2") continue; // kthreadd and its children
      cpu.set(pid, (Number(fields[11]) + Number(fields[12])) / 100);
    } catch {
      // gone meanwhile
    }
  }
  return cpu;
}

/** CPU seconds between two `othersCpu` snapshots (a process that started in between counts whole). */
function othersBetween(before: Map<number, number> | null, after: Map<number, number> | null): number {
  if (before === null || after === null) return NaN;
  let sum = 0;
  for (const [pid, t] of after) sum += t - (before.get(pid) ?? 0);
  return sum;
}

/** CPU seconds of a process (all its threads), from /proc; NaN where there is no /proc. */
function processCpu(pid: number | undefined): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime + stime, in USER_HZ (100 on Linux)
  } catch {
    return NaN;
  }
}

interface Server {
  child: Child;
  port: number;
  name: string;
}

/** Every server process running, by side (theirs is the run's own CPU use, not another's). */
const servers = {} as Record<Impl, Server>;

async function startServer(impl: Impl): Promise<Server> {
  const [command, argv] = runtimeCommand(RUNTIME, join("bench", "echo", "server"), { gc: true, flags: SERVER_FLAGS });
  const child = new Child(command, [...argv, `--impl=${impl}`], `${impl} server`, ROOT);
  const ready = await child.next(30_000);
  return { child, port: ready.port as number, name: ready.name as string };
}

async function memory(server: Server): Promise<MemoryReport> {
  server.child.send("mem");
  return (await server.child.next()) as unknown as MemoryReport;
}

/** What one load run measured, with the CPU both processes used inside the window. */
interface Measured {
  result: LoadResult;
  serverCpu: number;
  /** CPU seconds that neither the server nor the load generator used (other processes, the kernel's own work). */
  otherCpu: number;
}

/** Other processes' CPU use (in cores) above which a measured window counts as disturbed. */
const DISTURBED = 0.25;

/** Waits (at most QUIET_WAIT ms) until other processes leave the machine nearly idle. */
async function waitForQuiet(exclude: Set<number | undefined>): Promise<void> {
  const deadline = performance.now() + QUIET_WAIT;
  while (performance.now() < deadline) {
    const a = othersCpu(exclude);
    await sleep(300);
    const busy = othersBetween(a, othersCpu(exclude)) / 0.3;
    if (!(busy > 0.1)) return; // also without /proc (NaN)
  }
}

/** One load generator run; a run that other processes disturbed is done again, up to RETRIES times. */
async function load(server: Server, argv: string[]): Promise<Measured> {
  for (let attempt = 0; ; attempt++) {
    await waitForQuiet(new Set([process.pid, ...Object.values(servers).map((s) => s.child.process.pid)]));
    const m = await loadOnce(server, argv);
    if (!(m.otherCpu / m.result.seconds > DISTURBED) || attempt >= RETRIES) return m;
    if (VERBOSE) console.log(`disturbed (others used ${Math.round((m.otherCpu / m.result.seconds) * 100)}% CPU): again`);
  }
}

async function loadOnce(server: Server, argv: string[]): Promise<Measured> {
  const child = new Child(NODE, [LOAD_JS, `--port=${server.port}`, `--warmup=${WARMUP_MS}`, `--time=${TIME_MS}`, ...argv], "load generator", ROOT);
  const pid = server.child.process.pid;
  const exclude = new Set([process.pid, child.process.pid, ...Object.values(servers).map((s) => s.child.process.pid)]);
  const snapshot = () => ({ server: processCpu(pid), others: othersCpu(exclude) });
  let s0 = snapshot();
  let s1 = s0;
  for (;;) {
    const line = await child.next(WARMUP_MS + TIME_MS + 60_000);
    if (line.phase === "measure") s0 = snapshot();
    else if (line.phase === "end") s1 = snapshot();
    else {
      await child.exited;
      const serverCpu = s1.server - s0.server;
      const otherCpu = othersBetween(s0.others, s1.others);
      if (VERBOSE) console.log(JSON.stringify({ ...line, server: server.name, serverCpu, otherCpu }));
      return { result: line as unknown as LoadResult, serverCpu, otherCpu };
    }
  }
}

// ---- Measuring ----------------------------------------------------------------------------------

/** One table row's measurements: a value per round per side, and CPU shares. */
interface Row {
  label: string;
  unit: string;
  /** True when lower is better (latency, memory). */
  lower?: boolean;
  values: Partial<Record<Impl, number[]>>;
  cpu?: Partial<Record<Impl, { server: number[]; client: number[] }>>;
  /** Throughput rows: the ratio per server CPU-second is shown too. */
  perCpu?: boolean;
}

/** The most CPU (in cores) that other processes used during any measured window that was kept. */
let worstOther = 0;

const rows: Row[] = [];

function pushCpu(row: Row, impl: Impl, m: Measured): void {
  row.cpu ??= {};
  const c = (row.cpu[impl] ??= { server: [], client: [] });
  c.server.push(m.serverCpu / m.result.seconds);
  c.client.push(m.result.cpu / m.result.seconds);
  if (m.otherCpu / m.result.seconds > worstOther) worstOther = m.otherCpu / m.result.seconds;
}

async function runEcho(s: Echo, servers: Record<Impl, Server>): Promise<void> {
  const argv = [`--mode=echo`, `--conns=${s.conns}`, `--window=${s.window}`, `--size=${s.size}`];
  if (s.binary) argv.push("--binary");
  if (s.latency) argv.push("--latency");
  const main: Row = s.latency
    ? { label: `latency p50: ${s.title}`, unit: "µs", lower: true, values: {} }
    : { label: `${s.id}: ${s.title}`, unit: s.size < 1024 ? "msgs/s" : "MB/s", values: {}, perCpu: true };
  const p99: Row = { label: `latency p99: ${s.title}`, unit: "µs", lower: true, values: {} };
  for (let round = 0; round < ROUNDS; round++) {
    for (const impl of round % 2 === 0 ? IMPLS : [...IMPLS].reverse()) {
      const m = await load(servers[impl], argv);
      const r = m.result;
      pushCpu(main, impl, m);
      if (s.latency) {
        (main.values[impl] ??= []).push(r.latency!.p50);
        (p99.values[impl] ??= []).push(r.latency!.p99);
      } else {
        (main.values[impl] ??= []).push(s.size < 1024 ? r.count / r.seconds : r.bytes / r.seconds / 1e6);
      }
    }
  }
  rows.push(main);
  if (s.latency) rows.push(p99);
}

async function runHandshakes(s: Handshake, servers: Record<Impl, Server>): Promise<void> {
  const row: Row = { label: `handshakes: ${s.title}`, unit: "/s", values: {}, perCpu: true };
  for (let round = 0; round < ROUNDS; round++) {
    for (const impl of round % 2 === 0 ? IMPLS : [...IMPLS].reverse()) {
      const m = await load(servers[impl], [`--mode=handshake`, `--conns=${s.conns}`]);
      pushCpu(row, impl, m);
      (row.values[impl] ??= []).push(m.result.count / m.result.seconds);
    }
  }
  rows.push(row);
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** A fresh server per side; its memory with no connection, then with IDLE idle ones. */
async function runMemory(s: Memory): Promise<void> {
  const rss: Row = { label: `memory, RSS per conn: ${s.title}`, unit: "B", lower: true, values: {} };
  const heap: Row = { label: `memory, JS heap per conn: ${s.title}`, unit: "B", lower: true, values: {} };
  for (const impl of IMPLS) {
    const server = await startServer(impl);
    const client = new Child(NODE, [LOAD_JS, `--port=${server.port}`, "--mode=idle"], "load generator (idle)", ROOT);
    try {
      const expectOpen = async (n: number) => {
        const line = await client.next(120_000);
        if (line.open !== n) throw new Error(`load generator: ${line.open} connections open, expected ${n}`);
      };
      client.send("open 200");
      await expectOpen(200);
      client.send("close");
      await expectOpen(0);
      await sleep(300);
      const before = await memory(server);
      client.send(`open ${IDLE}`);
      await expectOpen(IDLE);
      await sleep(300);
      const after = await memory(server);
      rss.values[impl] = [(after.rss - before.rss) / IDLE];
      heap.values[impl] = [(after.heapUsed - before.heapUsed) / IDLE];
      client.send("close");
      await expectOpen(0);
    } finally {
      await client.quit();
      await server.child.quit();
    }
  }
  rows.push(rss, heap);
}

// ---- Reporting ----------------------------------------------------------------------------------

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/** anyws/reference: the median of the per-round ratios (rounds pair the two in time). */
function ratio(row: Row): number | undefined {
  const a = row.values.anyws;
  const r = row.values.ref;
  if (!a || !r) return undefined;
  return median(a.map((x, i) => x / r[i]));
}

/** The same per server CPU-second: what each server gets done with the CPU it used. */
function ratioPerCpu(row: Row): number | undefined {
  const a = row.values.anyws;
  const r = row.values.ref;
  const ac = row.cpu?.anyws?.server;
  const rc = row.cpu?.ref?.server;
  if (!row.perCpu || !a || !r || !ac || !rc) return undefined;
  const each = a.map((x, i) => x / ac[i] / (r[i] / rc[i]));
  return each.some((x) => !Number.isFinite(x)) ? undefined : median(each);
}

function format(value: number | undefined, unit: string): string {
  if (value === undefined) return "—";
  if (unit === "B") return `${Math.round(value).toLocaleString("en-US")} B`;
  if (unit === "µs") return `${value.toFixed(0)} µs`;
  if (unit === "MB/s") return `${value.toFixed(0)} MB/s`;
  return `${Math.round(value).toLocaleString("en-US")} ${unit}`;
}

function cpuText(row: Row, impl: Impl): string {
  const c = row.cpu?.[impl];
  if (!c) return "";
  const pct = (xs: number[]) => (xs.some(Number.isNaN) ? "?" : `${Math.round(median(xs) * 100)}%`);
  return `${pct(c.server)}/${pct(c.client)}`;
}

function table(cells: string[][]): string {
  const widths = cells[0].map((_, c) => Math.max(...cells.map((r) => r[c].length)));
  return cells.map((r) => r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join("  ")).join("\n");
}

/** Issue 3's targets for this runtime: messages/s (and, on Node, memory per connection). */
function targets(): string[] {
  const small = rows.find((r) => r.label.startsWith("small:"));
  const mem = rows.find((r) => r.label.startsWith("memory, RSS"));
  const lines: string[] = [];
  const line = (what: string, value: number | undefined, ok: (v: number) => boolean, shown: string) => {
    if (value === undefined) return;
    lines.push(`target ${what}: ${ok(value) ? "met" : "NOT met"} (${shown})`);
  };
  const r = small && ratio(small);
  if (RUNTIME === "node") {
    line("messages/s >= 1.3x ws", r, (v) => v >= 1.3, `${r?.toFixed(2)}x`);
    const a = mem?.values.anyws?.[0];
    const w = mem?.values.ref?.[0];
    if (a !== undefined && w !== undefined) line("memory per idle connection <= ws", a - w, (v) => v <= 0, `${format(a, "B")} vs ${format(w, "B")}`);
  } else if (RUNTIME === "deno") {
    line("messages/s >= Deno.serve", r, (v) => v >= 1, `${r?.toFixed(2)}x`);
  } else {
    line("messages/s >= 0.8x Bun.serve", r, (v) => v >= 0.8, `${r?.toFixed(2)}x`);
  }
  return lines;
}

// ---- Main ---------------------------------------------------------------------------------------

/** The load generator runs compiled; (re)compile when its sources are newer (Deno, Bun). */
function ensureLoadGenerator(): void {
  const sources = ["load.ts", "common.ts"].map((f) => join(ROOT, "bench", "echo", f));
  const outputs = ["load.js", "common.js"].map((f) => join(ROOT, "dist", "bench", "echo", f));
  const mtime = (f: string) => (existsSync(f) ? statSync(f).mtimeMs : -1);
  if (outputs.every((o, i) => mtime(o) >= mtime(sources[i]))) return;
  console.log("compiling the load generator (tsc -p tsconfig.json) …");
  spawnSync(join(ROOT, "node_modules", ".bin", "tsc"), ["-p", "tsconfig.json"], { cwd: ROOT, stdio: "ignore" });
  if (!outputs.every((o, i) => mtime(o) >= mtime(sources[i]))) throw new Error(`could not compile ${LOAD_JS}`);
}

async function main(): Promise<void> {
  if (SCENARIOS.length === 0) {
    console.log(`echo: no scenario matches --only=${ONLY} (small, 16k, 1m, latency, handshake, memory)`);
    return;
  }
  ensureLoadGenerator();
  const nodeVersion = spawnSync(NODE, ["--version"], { encoding: "utf8" }).stdout.trim();
  const version = RUNTIME === "node" ? `Node ${process.version}` : `${RUNTIME === "deno" ? "Deno" : "Bun"} ${process.versions[RUNTIME]}`;
  const echoes = SCENARIOS.filter((s) => s.kind !== "memory");
  const started = performance.now();
  try {
    if (echoes.length) for (const impl of IMPLS) servers[impl] = await startServer(impl);
    const names = servers.anyws?.name ?? "anyws";
    const refName = servers.ref?.name ?? { node: "ws", deno: "Deno.serve", bun: "Bun.serve" }[RUNTIME];
    console.log(`anyws echo benchmark on ${version}, ${process.arch}, ${cpus().length} CPUs, load average ${loadavg()[0].toFixed(2)}`);
    console.log(`servers: ${names} vs ${refName}, each in its own process`);
    console.log(`load generator: one Node ${nodeVersion} process, raw node:net sockets, frames masked in advance, every echo checked`);
    console.log(`per side and round: ${WARMUP_MS} ms warm-up, ${TIME_MS} ms measured; ${ROUNDS} round(s), alternating which side goes first`);
    for (const s of echoes) {
      if (s.kind === "echo") await runEcho(s, servers);
      else if (s.kind === "handshake") await runHandshakes(s, servers);
    }
  } finally {
    for (const impl of IMPLS) await servers[impl]?.child.quit();
  }
  for (const s of SCENARIOS) if (s.kind === "memory") await runMemory(s);

  const refLabel = { node: "ws", deno: "Deno.serve", bun: "Bun.serve" }[RUNTIME];
  const cells = [["scenario", "anyws", refLabel, "ratio", "per CPU-s", "CPU srv/load: anyws", refLabel]];
  for (const row of rows) {
    const r = ratio(row);
    const rc = ratioPerCpu(row);
    cells.push([
      `${row.label} (${row.lower ? "lower" : "higher"} is better)`,
      format(row.values.anyws && median(row.values.anyws), row.unit),
      format(row.values.ref && median(row.values.ref), row.unit),
      r === undefined ? "—" : `${r.toFixed(2)}x`,
      rc === undefined ? "" : `${rc.toFixed(2)}x`,
      cpuText(row, "anyws"),
      cpuText(row, "ref"),
    ]);
  }
  console.log("\n" + table(cells) + "\n");
  console.log(`ratio: anyws/${refLabel}, the median of the per-round ratios. per CPU-s: the same per second of the server's`);
  console.log("CPU time (all its threads), i.e. work per CPU, which holds even when a server was not saturated.");
  console.log("CPU srv/load: the server's and the load generator's CPU use over the measured window (100% = one");
  console.log("core); a load generator near 100% means it, not the server, was the limit.");
  if (worstOther > DISTURBED) {
    console.log(`WARNING: other processes used up to ${Math.round(worstOther * 100)}% CPU during a measured window (after ${RETRIES} retries): the numbers are disturbed.`);
  }
  for (const t of targets()) console.log(t);
  console.log(`(${((performance.now() - started) / 1000).toFixed(0)} s)`);
}

/**
 * `--runtimes=node,deno,bun`: runs this bench on each runtime in turn (the way `npm run bench:echo`
 * runs it everywhere), passing the other options on; output straight through.
 */
function dispatch(runtimes: string[]): boolean {
  const rest = args.filter((a) => !a.startsWith("--runtimes="));
  let ok = true;
  for (const rt of runtimes) {
    if (rt !== "node" && rt !== "deno" && rt !== "bun") throw new Error(`--runtimes: unknown runtime ${rt}`);
    const [command, argv] = runtimeCommand(rt, join("bench", "echo"));
    console.log(`\n━━━━ ${rt}`);
    ok = spawnSync(command, [...argv, ...rest], { cwd: ROOT, stdio: "inherit" }).status === 0 && ok;
  }
  return ok;
}

const runtimes = option(args, "runtimes")?.split(",").filter(Boolean);
if (runtimes) process.exitCode = dispatch(runtimes) ? 0 : 1;
else await main();
