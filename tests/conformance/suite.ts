/**
 * Runs the catalogue against an implementation in one role, and the node:test wiring that the
 * three test files share: one test per section (a FAILED case fails it, with what was
 * observed), then one that prints the run's summary table.
 *
 * Environment:
 *   ANYWS_CONFORMANCE_BIG=1        run section 9 up to 16 MiB (default: messages up to 4 MiB)
 *   ANYWS_CONFORMANCE_CASES=6.4,7  only these cases ("6.4.1", "6.4", "6.*", "9"), comma-separated
 *   ANYWS_CONFORMANCE_SEED=n       the seed of the masking keys (default: random, printed)
 *   ANYWS_CONFORMANCE_PATIENCE=ms  the waits of 5.19, 5.20 and 6.4.x (default 250)
 *   ANYWS_CONFORMANCE_TIMESCALE=x  multiplies the give-up timers of the cases (default 2)
 *   ANYWS_CONFORMANCE_VERBOSE=1    also list the NON-STRICT and INFORMATIONAL cases
 *   ANYWS_CONFORMANCE_DEFLATE_MESSAGES=n  messages per case in sections 12, 13 (default 10; Autobahn: 1000)
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import { runtimeName } from "../../adapters/auto.ts";
import { CASES, SECTIONS, selectCases } from "./cases.ts";
import { runFuzzingClient } from "./fuzzing-client.ts";
import { startFuzzingServer, type FuzzingServer } from "./fuzzing-server.ts";
import type { ClientUnderTest, ServerUnderTest } from "./peers.ts";
import { formatNotOk, formatSummary, formatTimings, type RunReport } from "./report.ts";
import { type CaseDef, type CaseResult, DEFAULT_SETTINGS, notRun, type Settings } from "./session.ts";

export const runtimeLabel = `${runtimeName} ${(process.versions as Record<string, string | undefined>)[runtimeName] ?? "?"}`;

export function settingsFromEnv(env: Record<string, string | undefined> = process.env): Settings {
  const seed = env.ANYWS_CONFORMANCE_SEED ? Number(env.ANYWS_CONFORMANCE_SEED) : Math.floor(Math.random() * 2 ** 31);
  return {
    ...DEFAULT_SETTINGS,
    seed,
    maxMessageSize: env.ANYWS_CONFORMANCE_BIG === "1" ? 16 * 1024 * 1024 : DEFAULT_SETTINGS.maxMessageSize,
    patience: env.ANYWS_CONFORMANCE_PATIENCE ? Number(env.ANYWS_CONFORMANCE_PATIENCE) : DEFAULT_SETTINGS.patience,
    timeScale: env.ANYWS_CONFORMANCE_TIMESCALE ? Number(env.ANYWS_CONFORMANCE_TIMESCALE) : DEFAULT_SETTINGS.timeScale,
    deflateMessages: env.ANYWS_CONFORMANCE_DEFLATE_MESSAGES ? Number(env.ANYWS_CONFORMANCE_DEFLATE_MESSAGES) : DEFAULT_SETTINGS.deflateMessages,
  };
}

export function casesFromEnv(env: Record<string, string | undefined> = process.env): CaseDef[] {
  const patterns = env.ANYWS_CONFORMANCE_CASES?.split(",").map((s) => s.trim()).filter(Boolean);
  return patterns?.length ? selectCases(patterns) : [...CASES];
}

// ---- running a role -------------------------------------------------------------------------

/** The fuzzing client against a server under test. */
export async function runAgainstServer(
  server: ServerUnderTest,
  cases: readonly CaseDef[],
  settings: Settings,
  onResult?: (r: CaseResult) => void,
): Promise<CaseResult[]> {
  return runFuzzingClient(cases, {
    url: server.url,
    fragmentingUrl: server.fragmentingUrl,
    peerFragmentSize: server.peerFragmentSize,
    settings,
    onResult,
  });
}

let agents = 0;

/** A client under test against the fuzzing server, case by case. */
export async function runAgainstClient(
  fuzzer: FuzzingServer,
  client: ClientUnderTest,
  cases: readonly CaseDef[],
  onResult?: (r: CaseResult) => void,
): Promise<CaseResult[]> {
  const agent = `${client.name} #${++agents}`;
  const results: CaseResult[] = [];
  for (const c of cases) {
    let r: CaseResult;
    if (c.pending) {
      r = notRun(c, "PENDING", c.pending);
    } else if ((c.messageSize ?? 0) > fuzzer.settings.maxMessageSize) {
      r = notRun(c, "SKIPPED", `messages of ${c.messageSize} B are above the run's limit of ${fuzzer.settings.maxMessageSize} B`);
    } else {
      const fragmentSize = c.peerFragmentSize !== undefined && client.canFragment ? c.peerFragmentSize : undefined;
      const result = fuzzer.result(agent, c.id);
      const limit = (c.timeout ?? 15_000) * fuzzer.settings.timeScale + 5000;
      const ran = await within(client.run(fuzzer.caseUrl(c, agent, { fragmentSize }), fragmentSize), limit);
      const got = ran ? await within(result, 5000) : await within(result, 0);
      if (got === null) {
        r = notRun(c, "SKIPPED", "");
        r.verdict = "FAILED";
        r.observed = ran ? "the client closed, but the fuzzing server saw no case run" : `the client did not finish the case within ${limit} ms`;
      } else {
        r = got;
      }
    }
    results.push(r);
    onResult?.(r);
  }
  return results;
}

/** The value of `promise` if it settles within `ms`, else null (it is left to settle). */
async function within<T>(promise: Promise<T>, ms: number): Promise<T | null> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), ms)));
  try {
    return await Promise.race([promise.then((v) => v ?? (true as T)), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

// ---- the tests ------------------------------------------------------------------------------

export type UnderTest =
  | { role: "server"; name: string; ours: boolean; start(): Promise<ServerUnderTest> }
  | { role: "client"; name: string; ours: boolean; client: ClientUnderTest };

/**
 * Declares the tests of one run: a test per section, then the summary. Sections whose cases
 * are all PENDING still get a test, which says so.
 */
export function conformanceTests(under: UnderTest): void {
  const settings = settingsFromEnv();
  const cases = casesFromEnv();
  const sections = [...new Set(cases.map((c) => c.section))];
  const report: RunReport = {
    runtime: runtimeLabel,
    role: under.role,
    peer: under.name,
    ours: under.ours,
    seed: settings.seed,
    maxMessageSize: settings.maxMessageSize,
    seconds: 0,
    results: [],
  };
  let server: ServerUnderTest | null = null;
  let fuzzer: FuzzingServer | null = null;
  let started = 0;

  for (const section of sections) {
    const sectionCases = cases.filter((c) => c.section === section);
    const pending = sectionCases.every((c) => c.pending);
    test(`${section} ${SECTIONS[section]}${pending ? " (PENDING: permessage-deflate)" : ""}: ${sectionCases.length} cases`, { timeout: 60_000 }, async () => {
      if (started === 0) started = performance.now();
      let results: CaseResult[];
      if (under.role === "server") {
        server ??= await under.start();
        results = await runAgainstServer(server, sectionCases, settings);
      } else {
        fuzzer ??= await startFuzzingServer({ cases, settings });
        results = await runAgainstClient(fuzzer, under.client, sectionCases);
      }
      report.results.push(...results);
      report.seconds = (performance.now() - started) / 1000;
      const failed = results.filter((r) => r.verdict === "FAILED");
      assert.equal(
        failed.length,
        0,
        `${failed.length} FAILED in section ${section} (${under.name} on ${runtimeLabel}, seed ${settings.seed}):\n` +
          failed.map((r) => `  ${r.id} ${r.description}\n      ${r.observed}${r.notes.length ? ` [${r.notes.join("; ")}]` : ""}`).join("\n"),
      );
    });
  }

  test(`summary: ${under.name}`, async () => {
    await server?.close();
    await fuzzer?.close();
    report.seconds = started ? (performance.now() - started) / 1000 : 0;
    const verbose = process.env.ANYWS_CONFORMANCE_VERBOSE === "1";
    const text = [
      "",
      formatSummary(report),
      formatNotOk(report, verbose ? ["FAILED", "NON-STRICT", "INFORMATIONAL"] : ["FAILED"]),
      report.results.some((r) => r.section === 9) ? `section 9, time taken:\n${formatTimings(report)}` : "",
    ].filter(Boolean).join("\n");
    console.log(text);
    assert.equal(report.results.length, cases.length, "every case ran (a section test crashed before reporting)");
  });
}
