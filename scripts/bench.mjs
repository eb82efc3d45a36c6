#!/usr/bin/env node
// `npm run bench`: runs every bench/*.ts on Node (compiled by tsc into dist/), Deno and Bun,
// one after another, output straight through. `node scripts/bench.mjs deno` runs on one
// runtime only; other arguments (`--time=100`) are passed to every benchmark. Files named
// *.node.ts, *.deno.ts, *.bun.ts run on that runtime only.

import { spawnSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const BIN = join(ROOT, "node_modules", ".bin");
const RUNTIMES = ["node", "deno", "bun"];
const wanted = process.argv.slice(2).filter((a) => RUNTIMES.includes(a));
const runtimes = wanted.length ? wanted : RUNTIMES;
const passOn = process.argv.slice(2).filter((a) => !RUNTIMES.includes(a));

const dir = join(ROOT, "bench");
const files = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith(".ts")).sort() : [];
if (files.length === 0) {
  console.log("no benchmarks yet (bench/*.ts)");
  process.exit(0);
}

/** @param {string} cmd @param {string[]} args */
const sh = (cmd, args) => {
  console.log(`\n━━━━ ${[cmd === process.execPath ? "node" : cmd.slice(ROOT.length + 1), ...args].join(" ")}`);
  return spawnSync(cmd, args, { cwd: ROOT, stdio: "inherit" }).status === 0;
};

let ok = true;
if (runtimes.includes("node")) ok = sh(join(BIN, "tsc"), ["-p", "tsconfig.json"]) && ok;
for (const f of files) {
  const only = RUNTIMES.find((rt) => f.endsWith(`.${rt}.ts`));
  for (const rt of runtimes) {
    if (only && only !== rt) continue;
    if (rt === "node") ok = sh(process.execPath, [join("dist", "bench", f.replace(/\.ts$/, ".js")), ...passOn]) && ok;
    if (rt === "deno") ok = sh(join(BIN, "deno"), ["run", "-A", join("bench", f), ...passOn]) && ok;
    if (rt === "bun") ok = sh(join(BIN, "bun"), ["run", join("bench", f), ...passOn]) && ok;
  }
}
process.exit(ok ? 0 : 1);
