#!/usr/bin/env node
// Regenerates tests/conformance/RESULTS.md: runs the whole conformance catalogue on Node, Deno
// and Bun, against anyws and the `ws` reference in both roles (the server under test by the
// fuzzing client, the client under test by the fuzzing server), one runtime after the other,
// then writes the tables per runtime and role.
//
//   node tests/conformance/write-results.mjs              all of section 9, up to 16 MiB
//   node tests/conformance/write-results.mjs --small      section 9 up to 4 MiB (as `npm test`)
//   node tests/conformance/write-results.mjs --no-build   use dist/ as it is
//   node tests/conformance/write-results.mjs --runtimes node,bun
//
// Exits non-zero if any case of ours FAILED (the file is written anyway: it shows them).

import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const BIN = join(ROOT, "node_modules", ".bin");
const argv = process.argv.slice(2);
const big = !argv.includes("--small");
const build = !argv.includes("--no-build");
const runtimesArg = argv.find((a) => a.startsWith("--runtimes"));
const runtimes = runtimesArg
  ? (runtimesArg.includes("=") ? runtimesArg.split("=")[1] : argv[argv.indexOf(runtimesArg) + 1]).split(",")
  : ["node", "deno", "bun"];

/**
 * Runs a command, its output streamed through.
 * @param {string} cmd @param {string[]} args @param {Record<string, string>} [env]
 * @returns {Promise<number | null>}
 */
function run(cmd, args, env = {}) {
  console.log(`\n━━━━ ${[cmd.replace(ROOT + "/", ""), ...args].join(" ")}`);
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: ROOT, stdio: "inherit", env: { ...process.env, DENO_NO_UPDATE_CHECK: "1", ...env } });
    child.on("error", (error) => {
      console.error(String(error));
      resolve(null);
    });
    child.on("close", (code) => resolve(code));
  });
}

const seed = String(Math.floor(Math.random() * 2 ** 31));
const tmp = mkdtempSync(join(tmpdir(), "anyws-conformance-"));
try {
  if (build) {
    // tsc emits even when files of others have type errors; only the emitted CLI matters here.
    await run(join(BIN, "tsc"), ["-p", "tsconfig.json"]);
  }
  const cliJs = join(ROOT, "dist", "tests", "conformance", "cli.js");
  if (!existsSync(cliJs)) throw new Error(`${cliJs} is missing: run \`node_modules/.bin/tsc -p tsconfig.json\``);
  const common = ["--run", "all", "--seed", seed, ...(big ? ["--big"] : [])];
  /** @type {Record<string, [string, string[]]>} */
  const commands = {
    node: [process.execPath, [cliJs]],
    deno: [join(BIN, "deno"), ["run", "-A", "tests/conformance/cli.ts"]],
    bun: [join(BIN, "bun"), ["tests/conformance/cli.ts"]],
  };
  const files = [];
  for (const rt of runtimes) {
    const [cmd, args] = commands[rt] ?? [];
    if (!cmd) throw new Error(`unknown runtime ${rt}`);
    const file = join(tmp, `${rt}.json`);
    const code = await run(cmd, [...args, ...common, "--json", file]);
    if (!existsSync(file)) throw new Error(`${rt}: no report written (exit ${code})`);
    files.push(file);
  }
  const command = `node tests/conformance/write-results.mjs${big ? "" : " --small"}`;
  const out = join(ROOT, "tests", "conformance", "RESULTS.md");
  const code = await run(process.execPath, [cliJs, "--merge", files.join(","), "--write", out, "--command", command]);
  console.log(`\nwrote ${out}${code ? " (a case of ours FAILED)" : ""}`);
  process.exitCode = code ?? 1;
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
