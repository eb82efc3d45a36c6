#!/usr/bin/env node
// The one test command (`npm test`). Plain JS so Node 20 runs it without a build.
//
//   node scripts/test.mjs              build + types + purity + the suite on Node (twice: the
//                                      machine's Node and Node 24), Deno and Bun
//   node scripts/test.mjs node bun     only the named steps (tsc, core-types, deno-check,
//                                      purity, node, node24, deno, bun); `node` and `node24`
//                                      imply `tsc`
//   node scripts/test.mjs --check      types only: tsc --noEmit, core-types, deno check, purity
//
// Two Node passes run the same compiled files: `node` on the Node that runs this script (the
// machine's), `node24` on Node 24 LTS from the npm package `node`, which this script installs
// into tools/node24/ (`npm ci --prefix tools/node24`, pinned by that directory's own
// package-lock.json) before any suite runs, when it is missing or not the pinned version: the
// other passes use it too, as a foreign client in tests/interop/cross-runtime.test.ts. It is
// kept out of the root package because a package whose bin is `node` would land in
// node_modules/.bin and so run every npm script, `npm start` included, on Node 24 instead of
// the machine's Node.
//
// Every step runs even when an earlier one failed; the exit status is 1 if any failed. The last
// line is always `N passed, N failed`: test counts summed over all the test passes, each taken
// from that runner's own summary. A step that fails without reporting a failed test (type
// errors, a crash, a timeout, zero tests run) adds one to "failed", so a failing run never
// ends with "0 failed".
//
// Test files are tests/**/*.test.ts. They run on all three runtimes, except files under a
// directory named node/, deno/ or bun/, or named *.node.test.ts, *.deno.test.ts,
// *.bun.test.ts, which run on that runtime only. Deno-only files are not compiled by tsc.

import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, delimiter, dirname, join, relative, sep } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { checkCorePurity, formatResult } from "./check-core-purity.mjs";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const BIN = join(ROOT, "node_modules", ".bin");
/** The nested package that holds Node 24 (see the header). */
const NODE24_DIR = join(ROOT, "tools", "node24");
const NODE24_BIN = join(NODE24_DIR, "node_modules", ".bin");
const RUNTIMES = ["node", "deno", "bun"];
/** A whole runner (one step) is killed after this long. */
const STEP_TIMEOUT_MS = Number(process.env.ANYWS_TEST_TIMEOUT_MS ?? 10 * 60 * 1000);
/** Per-test timeout for Node and Bun (Bun's default is 5 s; Deno has no such option). */
const PER_TEST_TIMEOUT_MS = 60 * 1000;
/** Directories whose .ts files are type-checked (by tsc and/or deno check). */
const SOURCE_DIRS = ["core", "adapters", "tests", "bench", "examples", "cli"];

/** @param {string} p */
const posix = (p) => p.split(sep).join("/");

/**
 * All files under `dir` (relative to ROOT, POSIX separators) whose name passes `keep`.
 * @param {string} dir
 * @param {(name: string) => boolean} keep
 * @returns {string[]}
 */
function walk(dir, keep) {
  const abs = join(ROOT, dir);
  if (!existsSync(abs)) return [];
  /** @type {string[]} */
  const found = [];
  /** @param {string} d */
  const visit = (d) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.name === "node_modules" || e.name.startsWith(".")) continue;
      const p = join(d, e.name);
      if (e.isDirectory()) visit(p);
      else if (e.isFile() && keep(e.name)) found.push(posix(relative(ROOT, p)));
    }
  };
  visit(abs);
  return found.sort();
}

/**
 * The runtime a file is reserved for, or null if it is for all of them.
 * @param {string} file POSIX path relative to ROOT
 */
function onlyFor(file) {
  const parts = file.split("/");
  const name = parts.pop() ?? "";
  for (const rt of RUNTIMES) {
    if (parts.includes(rt) || name.endsWith(`.${rt}.test.ts`) || name.endsWith(`.${rt}.ts`)) return rt;
  }
  return null;
}

const allTestFiles = walk("tests", (n) => n.endsWith(".test.ts"));
/** @param {string} rt */
const testFilesFor = (rt) => allTestFiles.filter((f) => onlyFor(f) === null || onlyFor(f) === rt);

// ---------------------------------------------------------------------------------------------
// Running a child process: streamed through, output kept for parsing, bounded in time.

/** @type {Set<import("node:child_process").ChildProcess>} */
const running = new Set();

/** @param {import("node:child_process").ChildProcess} child @param {NodeJS.Signals} signal */
function killGroup(child, signal) {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal); // the child leads its own process group (detached)
  } catch {
    try {
      child.kill(signal);
    } catch {
      // already gone
    }
  }
}

for (const sig of /** @type {const} */ (["SIGINT", "SIGTERM"])) {
  process.on(sig, () => {
    for (const child of running) killGroup(child, "SIGKILL");
    process.exit(130);
  });
}

/**
 * @param {string} cmd
 * @param {string[]} args
 * @param {{ env?: NodeJS.ProcessEnv }} [opts]
 * @returns {Promise<{ code: number | null, signal: string | null, output: string, timedOut: boolean, error?: string }>}
 */
function run(cmd, args, opts = {}) {
  return new Promise((resolveRun) => {
    if (!existsSync(cmd)) {
      const error = `${posix(relative(ROOT, cmd))} not found: run \`npm ci\` (or \`npm install\`) first`;
      console.error(error);
      resolveRun({ code: null, signal: null, output: "", timedOut: false, error });
      return;
    }
    const child = spawn(cmd, args, {
      cwd: ROOT,
      env: { ...process.env, ...opts.env },
      stdio: ["ignore", "pipe", "pipe"],
      detached: process.platform !== "win32",
    });
    running.add(child);
    const KEEP = 4 * 1024 * 1024; // parse only the tail; summaries come last
    let output = "";
    /** @param {Buffer} chunk @param {NodeJS.WriteStream} to */
    const onData = (chunk, to) => {
      to.write(chunk);
      output += chunk.toString("utf8");
      if (output.length > 2 * KEEP) output = output.slice(-KEEP);
    };
    child.stdout?.on("data", (c) => onData(c, process.stdout));
    child.stderr?.on("data", (c) => onData(c, process.stderr));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      console.error(`\n!! ${cmd === process.execPath ? "node" : posix(relative(ROOT, cmd))} exceeded ${STEP_TIMEOUT_MS / 1000}s: killing it`);
      killGroup(child, "SIGTERM");
      setTimeout(() => killGroup(child, "SIGKILL"), 5000).unref();
    }, STEP_TIMEOUT_MS);
    child.on("error", (err) => {
      clearTimeout(timer);
      running.delete(child);
      resolveRun({ code: null, signal: null, output, timedOut, error: String(err) });
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      running.delete(child);
      // nothing may outlive its runner (a server left listening, a stray worker)
      if (!timedOut) killGroup(child, "SIGKILL");
      resolveRun({ code, signal, output, timedOut });
    });
  });
}

/** @param {string} s */
const stripAnsi = (s) => s.replace(/\u001b\[[0-9;]*[A-Za-z]/g, "");

/**
 * Last match of `re` (which must have the g and m flags) in `text`, or null.
 * @param {string} text @param {RegExp} re
 */
function last(text, re) {
  /** @type {RegExpMatchArray | null} */
  let found = null;
  for (const m of text.matchAll(re)) found = m;
  return found;
}

// ---------------------------------------------------------------------------------------------
// Steps. Each returns a result for the summary.

/**
 * @typedef {{
 *   name: string, ok: boolean, seconds: number, skipped?: boolean,
 *   passed?: number, failed?: number, note?: string
 * }} StepResult
 */

/** @param {string} title @param {string} cmd @param {string[]} args */
function banner(title, cmd, args) {
  const shown = args.length > 12 ? [...args.slice(0, 10), `… (${args.length - 10} more)`] : args;
  const inRoot = posix(relative(ROOT, cmd));
  const shownCmd = cmd === process.execPath ? "node" : inRoot.startsWith("../") ? cmd : inRoot;
  console.log(`\n━━━━ ${title}: ${[shownCmd, ...shown].join(" ")}`);
}

/**
 * @param {Awaited<ReturnType<typeof run>>} r
 * @returns {string | null} why a finished process counts as failed, or null
 */
function processProblem(r) {
  if (r.error) return r.error;
  if (r.timedOut) return `timed out after ${STEP_TIMEOUT_MS / 1000}s`;
  if (r.signal) return `killed by ${r.signal}`;
  if (r.code !== 0) return `exit code ${r.code}`;
  return null;
}

/** @param {string} name @param {string} project @param {boolean} emit */
async function tscStep(name, project, emit) {
  const args = ["-p", project, ...(emit ? [] : ["--noEmit"])];
  banner(name, join(BIN, "tsc"), args);
  const t0 = performance.now();
  const r = await run(join(BIN, "tsc"), args);
  const problem = processProblem(r);
  const errors = (stripAnsi(r.output).match(/error TS\d+/g) ?? []).length;
  if (!problem) console.log("no type errors");
  return /** @type {StepResult} */ ({
    name,
    ok: !problem,
    seconds: (performance.now() - t0) / 1000,
    note: problem ? (errors ? `${errors} type error${errors === 1 ? "" : "s"}` : problem) : undefined,
  });
}

async function denoCheckStep() {
  // Everything Deno might load, except Bun-only files (Bun's globals are not Deno's).
  const files = SOURCE_DIRS.flatMap((d) => walk(d, (n) => n.endsWith(".ts")))
    .filter((f) => onlyFor(f) !== "bun");
  if (files.length === 0) return { name: "deno check", ok: true, skipped: true, seconds: 0, note: "no .ts files" };
  const args = ["check", "--quiet", ...files];
  banner("deno check", join(BIN, "deno"), args);
  const t0 = performance.now();
  const r = await run(join(BIN, "deno"), args, { env: { DENO_NO_UPDATE_CHECK: "1" } });
  const problem = processProblem(r);
  const errors = (stripAnsi(r.output).match(/^TS\d+ \[ERROR\]/gm) ?? []).length;
  if (!problem) console.log(`no type errors in ${files.length} files`);
  return /** @type {StepResult} */ ({
    name: "deno check",
    ok: !problem,
    seconds: (performance.now() - t0) / 1000,
    note: problem ? (errors ? `${errors} type error${errors === 1 ? "" : "s"}` : problem) : `${files.length} files`,
  });
}

function purityStep() {
  console.log("\n━━━━ purity: core/**/*.ts (scripts/check-core-purity.mjs)");
  const t0 = performance.now();
  const result = checkCorePurity(ROOT);
  const text = formatResult(result);
  (result.violations.length ? console.error : console.log)(text);
  return /** @type {StepResult} */ ({
    name: "purity",
    ok: result.violations.length === 0,
    seconds: (performance.now() - t0) / 1000,
    note: result.violations.length
      ? `${result.violations.length} violation${result.violations.length === 1 ? "" : "s"}`
      : `${result.files.length} core files`,
  });
}

/**
 * Turns a runner's process result and parsed counts into a step result.
 * @param {string} name
 * @param {number} fileCount
 * @param {number} t0
 * @param {Awaited<ReturnType<typeof run>>} r
 * @param {{ passed: number, failed: number, note?: string } | null} counts
 * @returns {StepResult}
 */
function testResult(name, fileCount, t0, r, counts) {
  const seconds = (performance.now() - t0) / 1000;
  const problems = [];
  const problem = processProblem(r);
  if (problem) problems.push(problem);
  if (!counts) problems.push("no test summary found in its output");
  else if (counts.passed + counts.failed === 0) problems.push(`ran 0 tests from ${fileCount} test files`);
  let passed = counts?.passed ?? 0;
  let failed = counts?.failed ?? 0;
  const ok = problems.length === 0 && failed === 0;
  if (!ok && failed === 0) failed = 1; // failed without naming a failed test: count it once
  const notes = [counts?.note, ...problems].filter(Boolean);
  return { name, ok, seconds, passed, failed, note: notes.join("; ") || undefined };
}

/**
 * The Node suite (the compiled test files) on one Node binary.
 * @param {string} name the step's name
 * @param {string} node path of the Node binary
 * @param {string} version what `node --version` prints, for the summary
 * @param {NodeJS.ProcessEnv} [env]
 */
async function nodeStep(name, node, version, env) {
  const files = testFilesFor("node");
  if (files.length === 0) return { name, ok: true, skipped: true, seconds: 0, note: "no test files" };
  const compiled = files.map((f) => "dist/" + f.replace(/\.ts$/, ".js"));
  const missing = compiled.filter((f) => !existsSync(join(ROOT, f)));
  const tmp = mkdtempSync(join(tmpdir(), "anyws-node-test-"));
  const tap = join(tmp, "report.tap");
  const args = [
    "--enable-source-maps",
    "--test",
    `--test-timeout=${PER_TEST_TIMEOUT_MS}`,
    "--test-reporter=spec",
    "--test-reporter-destination=stdout",
    "--test-reporter=tap",
    `--test-reporter-destination=${tap}`,
    ...compiled.filter((f) => !missing.includes(f)),
  ];
  banner(`${name} (${version})`, node, args);
  if (missing.length) console.error(`!! not compiled (tsc failed or excluded?): ${missing.join(", ")}`);
  const t0 = performance.now();
  const r = await run(node, args, { env });
  let report = "";
  try {
    report = readFileSync(tap, "utf8");
  } catch {
    // no report: counted as "no test summary"
  }
  rmSync(tmp, { recursive: true, force: true });
  const pass = last(report, /^# pass (\d+)$/gm);
  const fail = last(report, /^# fail (\d+)$/gm);
  const cancelled = last(report, /^# cancelled (\d+)$/gm);
  const counts = pass && fail
    ? { passed: Number(pass[1]), failed: Number(fail[1]) + Number(cancelled?.[1] ?? 0) }
    : null;
  const res = testResult(name, files.length, t0, r, counts);
  res.note = [version, res.note].filter(Boolean).join("; ");
  if (missing.length) {
    res.ok = false;
    res.failed = (res.failed ?? 0) + missing.length;
    res.note = [res.note, `${missing.length} test file(s) not compiled`].filter(Boolean).join("; ");
  }
  return res;
}

/** The npm that runs this script (`npm test`), else the first `npm` on the PATH. */
function findNpm() {
  const cli = process.env.npm_execpath;
  if (cli && basename(cli) === "npm-cli.js" && existsSync(cli)) return { cmd: process.execPath, args: [cli] };
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    const npm = join(dir, process.platform === "win32" ? "npm.cmd" : "npm");
    if (dir && existsSync(npm)) return { cmd: npm, args: [] };
  }
  return null;
}

/**
 * The `node` package's version that a package-lock.json pins, or that a package.json has.
 * @param {string} file @returns {string | undefined}
 */
function versionIn(file) {
  try {
    const json = JSON.parse(readFileSync(file, "utf8"));
    return file.endsWith("package-lock.json") ? json.packages?.["node_modules/node"]?.version : json.version;
  } catch {
    return undefined;
  }
}

/**
 * Node 24 from tools/node24, installed (again) when it is missing, does not run, or is not the
 * version its package-lock.json pins.
 * @returns {Promise<{ node: string, version: string } | { error: string }>}
 */
async function ensureNode24() {
  const node = join(NODE24_BIN, process.platform === "win32" ? "node.exe" : "node");
  const pinned = versionIn(join(NODE24_DIR, "package-lock.json"));
  const installed = versionIn(join(NODE24_DIR, "node_modules", "node", "package.json"));
  const probe = () => {
    try {
      return execFileSync(node, ["--version"], { encoding: "utf8", timeout: 30_000 }).trim();
    } catch {
      return null;
    }
  };
  let version = pinned !== undefined && installed === pinned ? probe() : null;
  if (version === null) {
    const npm = findNpm();
    if (!npm) return { error: "npm not found: cannot install tools/node24" };
    const args = [...npm.args, "ci", "--prefix", posix(relative(ROOT, NODE24_DIR)), "--no-audit", "--no-fund"];
    banner(`node24: installing Node ${pinned ?? "24"}`, npm.cmd, args);
    const problem = processProblem(await run(npm.cmd, args));
    if (problem) return { error: `npm ci --prefix tools/node24 failed: ${problem}` };
    version = probe();
    // The binary comes from the package's install script, which its allowScripts must allow.
    if (version === null) return { error: "npm ci --prefix tools/node24 left no working node binary" };
  }
  if (!version.startsWith("v24.")) return { error: `tools/node24 holds Node ${version}, not 24` };
  return { node, version };
}

/**
 * @param {Awaited<ReturnType<typeof ensureNode24>>} got
 * @param {number} installSeconds
 */
async function node24Step(got, installSeconds) {
  if ("error" in got) return { name: "node24", ok: false, seconds: installSeconds, passed: 0, failed: 1, note: got.error };
  // Anything the tests start as plain `node` (not process.execPath) runs on Node 24 too.
  const PATH = [NODE24_BIN, process.env.PATH].filter(Boolean).join(delimiter);
  const res = await nodeStep("node24", got.node, got.version, { PATH });
  res.seconds += installSeconds;
  return res;
}

async function denoStep() {
  const files = testFilesFor("deno");
  if (files.length === 0) return { name: "deno", ok: true, skipped: true, seconds: 0, note: "no test files" };
  const args = ["test", "-A", ...files];
  banner("deno", join(BIN, "deno"), args);
  const t0 = performance.now();
  const r = await run(join(BIN, "deno"), args, { env: { DENO_NO_UPDATE_CHECK: "1" } });
  // ok | 3 passed (5 steps) | 1 failed (2 steps) | 1 ignored (14ms)
  const m = last(
    stripAnsi(r.output),
    /^(?:ok|FAILED) \| (\d+) passed(?: \((\d+) steps?\))? \| (\d+) failed(?: \((\d+) steps?\))?/gm,
  );
  const counts = m
    ? {
      // Deno counts top-level tests and, separately, steps (node:test subtests, describe/it
      // inside a describe); both are tests here.
      passed: Number(m[1]) + Number(m[2] ?? 0),
      failed: Number(m[3]) + Number(m[4] ?? 0),
      note: `${Number(m[1]) + Number(m[3])} tests + ${Number(m[2] ?? 0) + Number(m[4] ?? 0)} steps`,
    }
    : null;
  return testResult("deno", files.length, t0, r, counts);
}

async function bunStep() {
  const files = testFilesFor("bun");
  if (files.length === 0) return { name: "bun", ok: true, skipped: true, seconds: 0, note: "no test files" };
  // "./" makes each argument a path: a bare `bun test tests/` is a substring filter that
  // would also pick up dist/tests/*.test.js.
  const args = ["test", `--timeout=${PER_TEST_TIMEOUT_MS}`, ...files.map((f) => "./" + f)];
  banner("bun", join(BIN, "bun"), args);
  const t0 = performance.now();
  const r = await run(join(BIN, "bun"), args);
  const out = stripAnsi(r.output);
  const pass = last(out, /^\s*(\d+) pass$/gm);
  const fail = last(out, /^\s*(\d+) fail$/gm);
  const counts = pass && fail ? { passed: Number(pass[1]), failed: Number(fail[1]) } : null;
  return testResult("bun", files.length, t0, r, counts);
}

// ---------------------------------------------------------------------------------------------

/** @param {StepResult[]} results */
function summarize(results) {
  const width = Math.max(...results.map((r) => r.name.length));
  console.log("\n━━━━ summary");
  let passed = 0;
  let failed = 0;
  for (const r of results) {
    const status = r.skipped ? "skip" : r.ok ? "ok" : "FAIL";
    const counts = r.passed !== undefined ? `${r.passed} passed, ${r.failed} failed` : "";
    const cols = [
      r.name.padEnd(width),
      status.padEnd(4),
      counts.padEnd(22),
      `${r.seconds.toFixed(1).padStart(6)}s`,
      r.note ? ` ${r.note}` : "",
    ];
    console.log("  " + cols.join("  ").trimEnd());
    if (r.passed !== undefined) passed += r.passed;
    if (r.failed !== undefined) failed += r.failed;
    else if (!r.ok) failed += 1; // a failed non-test step (types, purity) counts once
  }
  const bad = results.filter((r) => !r.ok).map((r) => r.name);
  console.log(bad.length ? `FAILED: ${bad.join(", ")}` : "all steps passed");
  console.log(`${passed} passed, ${failed} failed`);
  return bad.length === 0;
}

async function main() {
  const argv = process.argv.slice(2);
  const checkOnly = argv.includes("--check");
  const known = ["tsc", "core-types", "deno-check", "purity", "node", "node24", "deno", "bun"];
  const wanted = argv.filter((a) => !a.startsWith("--"));
  for (const w of wanted) {
    if (!known.includes(w)) {
      console.error(`unknown step "${w}"; steps: ${known.join(", ")}`);
      process.exit(2);
    }
  }
  /** @param {string} step */
  const want = (step) =>
    wanted.length === 0 || wanted.includes(step) ||
    (step === "tsc" && (wanted.includes("node") || wanted.includes("node24")));

  console.log(`anyws test: ${allTestFiles.length} test file${allTestFiles.length === 1 ? "" : "s"} under tests/`);
  /** @type {StepResult[]} */
  const results = [];
  if (checkOnly) {
    results.push(await tscStep("tsc --noEmit", "tsconfig.json", false));
    results.push(await tscStep("core-types", "tsconfig.core.json", false));
    results.push(await denoCheckStep());
    results.push(purityStep());
  } else {
    // tsc emits even with type errors (noEmitOnError is off), so Node still runs the suite.
    if (want("tsc")) results.push(await tscStep("tsc", "tsconfig.json", true));
    if (want("core-types")) results.push(await tscStep("core-types", "tsconfig.core.json", false));
    if (want("deno-check")) results.push(await denoCheckStep());
    if (want("purity")) results.push(purityStep());
    // Before any suite: every runtime's cross-runtime interop runs Node 24's client as a child.
    const t0 = performance.now();
    const node24 = ["node", "node24", "deno", "bun"].some(want) ? await ensureNode24() : null;
    const installSeconds = (performance.now() - t0) / 1000;
    if (node24 && "error" in node24) console.error(`!! ${node24.error}`);
    if (want("node")) results.push(await nodeStep("node", process.execPath, process.version));
    if (want("node24") && node24) results.push(await node24Step(node24, installSeconds));
    if (want("deno")) results.push(await denoStep());
    if (want("bun")) results.push(await bunStep());
  }
  const ok = summarize(results);
  process.exitCode = ok ? 0 : 1;
}

await main();
