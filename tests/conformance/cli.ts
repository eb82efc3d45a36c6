/**
 * The conformance suite as a program, on any runtime:
 *
 *   node dist/tests/conformance/cli.js [options]     (after `node_modules/.bin/tsc -p tsconfig.json`)
 *   deno run -A tests/conformance/cli.ts [options]
 *   bun tests/conformance/cli.ts [options]
 *
 * What to test (default: --run all):
 *   --run anyws-server,anyws-client,ws-server,ws-client   ours and the `ws` reference, both roles
 *   --url ws://HOST:PORT/PATH    the fuzzing client against any server there (it must echo)
 *   --listen PORT                the fuzzing server, for any client: it prints the case URLs,
 *                                then each result; Ctrl-C prints the summary per agent
 * Options:
 *   --cases 1,2,6.4,9.1.1        only these cases      --big       section 9 up to 16 MiB
 *   --seed N                     masking-key seed      --verbose   list NON-STRICT and INFO cases
 *   --json FILE                  write the run reports as JSON
 * RESULTS.md (see write-results.mjs):
 *   --merge A.json,B.json --write FILE [--command TEXT]
 *
 * The exit status is 1 if any case FAILED.
 */
import { readFile, writeFile } from "node:fs/promises";
import process from "node:process";
import { runtimeName } from "../../adapters/auto.ts";
import { CASES, selectCases } from "./cases.ts";
import { startFuzzingServer } from "./fuzzing-server.ts";
import { anywsClient, type ClientUnderTest, type ServerUnderTest, startAnywsServer, startWsServer, wsClient } from "./peers.ts";
import { formatNotOk, formatSummary, formatTimings, resultsMarkdown, type RunReport } from "./report.ts";
import type { CaseResult } from "./session.ts";
import { runAgainstClient, runAgainstServer, runtimeLabel, settingsFromEnv } from "./suite.ts";

function parseArgs(argv: string[]): Map<string, string> {
  const args = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith("--")) throw new Error(`unexpected argument ${a}`);
    const eq = a.indexOf("=");
    if (eq > 0) args.set(a.slice(2, eq), a.slice(eq + 1));
    else if (i + 1 < argv.length && !argv[i + 1].startsWith("--")) args.set(a.slice(2), argv[++i]);
    else args.set(a.slice(2), "");
  }
  return args;
}

const args = parseArgs(process.argv.slice(2));
const env = { ...process.env };
if (args.has("big")) env.ANYWS_CONFORMANCE_BIG = "1";
if (args.has("seed")) env.ANYWS_CONFORMANCE_SEED = args.get("seed");
const settings = settingsFromEnv(env);
const cases = args.has("cases") ? selectCases(args.get("cases")!.split(",")) : [...CASES];
const verbose = args.has("verbose");

function print(report: RunReport): void {
  console.log(`\n${formatSummary(report)}`);
  const notOk = formatNotOk(report, verbose ? ["FAILED", "NON-STRICT", "INFORMATIONAL"] : ["FAILED"]);
  if (notOk) console.log(notOk);
  if (report.results.some((r) => r.section === 9 && r.verdict !== "SKIPPED")) console.log(`section 9, time taken:\n${formatTimings(report)}`);
}

function report(role: "server" | "client", peer: string, ours: boolean, results: CaseResult[], seconds: number): RunReport {
  return { runtime: runtimeLabel, role, peer, ours, seed: settings.seed, maxMessageSize: settings.maxMessageSize, seconds, results };
}

async function merge(): Promise<number> {
  const reports: RunReport[] = [];
  for (const file of args.get("merge")!.split(",")) reports.push(...(JSON.parse(await readFile(file, "utf8")) as RunReport[]));
  const out = args.get("write");
  const markdown = resultsMarkdown(reports, {
    date: new Date().toISOString().slice(0, 10),
    command: args.get("command") || "node tests/conformance/write-results.mjs",
    notes: [
      "Runs: each implementation echoes every message. Ours with its defaults, except `perMessageDeflate: true` on `serve()` (off by default; the client offers it by default) (a second `serve()` with `fragmentSize: 1300` for 10.1.2–10.1.5, and the client with `fragmentSize` there); `ws` with `perMessageDeflate: true` and `maxFragments: 100000`, our default (its own default, 16384, fails 9.3.1 and 9.4.1 with 1008, a limit RFC 6455 §10.4 allows). Close codes in the last table are those of the peer's close frame.",
      `Sections 12 and 13 (permessage-deflate) send ${settings.deflateMessages} messages per case (Autobahn: 1000; ANYWS_CONFORMANCE_DEFLATE_MESSAGES=1000 for as many), with generated payloads of Autobahn's kinds; the fuzzer compresses and inflates with node:zlib directly.`,
    ],
  });
  if (out) await writeFile(out, markdown);
  else console.log(markdown);
  return reports.some((r) => r.ours && r.results.some((x) => x.verdict === "FAILED")) ? 1 : 0;
}

async function listen(): Promise<number> {
  const agents = new Map<string, CaseResult[]>();
  const fuzzer = await startFuzzingServer({
    cases,
    settings,
    port: Number(args.get("listen") || 9001),
    hostname: args.get("host") || "127.0.0.1",
    onResult(agent, r) {
      agents.set(agent, [...(agents.get(agent) ?? []), r]);
      console.log(`${agent}: ${r.id} ${r.verdict}${r.verdict === "OK" ? "" : ` — ${r.observed}`}`);
    },
  });
  console.log(`fuzzing server at ${fuzzer.url} on ${runtimeLabel}: ${cases.length} cases, seed ${settings.seed}`);
  console.log(`  ${fuzzer.url}/getCaseCount · ${fuzzer.url}/runCase?case=1..${cases.length}&agent=NAME · ${fuzzer.url}/runCase?casetuple=1.1.1&agent=NAME`);
  console.log("Ctrl-C prints the summary per agent.");
  await new Promise<void>((resolve) => process.once("SIGINT", () => resolve()));
  await fuzzer.close();
  let failed = false;
  for (const [agent, results] of agents) {
    print(report("client", agent, false, results, 0));
    failed ||= results.some((r) => r.verdict === "FAILED");
  }
  return failed ? 1 : 0;
}

async function run(): Promise<number> {
  const reports: RunReport[] = [];
  if (args.has("url")) {
    const url = args.get("url")!;
    const server: ServerUnderTest = { name: url, url, close: async () => {} };
    const t0 = performance.now();
    const results = await runAgainstServer(server, cases, settings, (r) => verbose && console.log(`${r.id} ${r.verdict}`));
    reports.push(report("server", url, false, results, (performance.now() - t0) / 1000));
    print(reports[0]);
  } else {
    const wanted = (args.get("run") || "all").split(",");
    const want = (name: string) => wanted.includes("all") || wanted.includes(name);
    const servers: [string, () => Promise<ServerUnderTest>, boolean][] = [["anyws-server", startAnywsServer, true], ["ws-server", startWsServer, false]];
    const clients: [string, ClientUnderTest, boolean][] = [["anyws-client", anywsClient, true], ["ws-client", wsClient, false]];
    for (const [name, start, ours] of servers) {
      if (!want(name)) continue;
      const server = await start();
      const t0 = performance.now();
      const results = await runAgainstServer(server, cases, settings);
      await server.close();
      reports.push(report("server", server.name, ours, results, (performance.now() - t0) / 1000));
      print(reports[reports.length - 1]);
    }
    for (const [name, client, ours] of clients) {
      if (!want(name)) continue;
      const fuzzer = await startFuzzingServer({ cases, settings });
      const t0 = performance.now();
      const results = await runAgainstClient(fuzzer, client, cases);
      await fuzzer.close();
      reports.push(report("client", client.name, ours, results, (performance.now() - t0) / 1000));
      print(reports[reports.length - 1]);
    }
  }
  if (args.has("json")) await writeFile(args.get("json")!, JSON.stringify(reports));
  return reports.some((r) => r.results.some((x) => x.verdict === "FAILED")) ? 1 : 0;
}

let status: number;
try {
  status = args.has("merge") ? await merge() : args.has("listen") ? await listen() : await run();
} catch (error) {
  console.error(error instanceof Error ? error.stack : error);
  status = 2;
}
// Servers' keepalive timers and lingering sockets must not keep the program alive.
process.exit(status);
