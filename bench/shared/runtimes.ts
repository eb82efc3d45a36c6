/** Where a benchmark's child processes run from, and the command that runs a bench script on each runtime. */
import { dirname, join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { RUNTIME } from "./args.ts";

const HERE = dirname(fileURLToPath(import.meta.url));
/** The repository (this file is bench/shared/runtimes.ts, or dist/bench/shared/runtimes.js on Node). */
export const ROOT = import.meta.url.endsWith(".js") ? join(HERE, "..", "..", "..") : join(HERE, "..", "..");
const BIN = join(ROOT, "node_modules", ".bin");
/** The Node that runs the load generators: this one on Node, else $ANYWS_BENCH_NODE or `node` on the PATH. */
export const NODE = RUNTIME === "node" ? process.execPath : (process.env.ANYWS_BENCH_NODE ?? "node");

export type Runtime = "node" | "deno" | "bun";

/**
 * The command that runs `script` (a bench/ path without extension) on `runtime`: Node the
 * compiled copy in dist/, Deno and Bun the source; this process's own executable where it is
 * that runtime. `gc` exposes V8's gc(); `flags` go to the runtime.
 */
export function runtimeCommand(runtime: Runtime, script: string, options: { gc?: boolean; flags?: readonly string[] } = {}): [string, string[]] {
  const flags = options.flags ?? [];
  if (runtime === "node") return [NODE, [...(options.gc ? ["--expose-gc"] : []), ...flags, join(ROOT, "dist", `${script}.js`)]];
  if (runtime === "deno") {
    const deno = RUNTIME === "deno" ? process.execPath : join(BIN, "deno");
    return [deno, ["run", "-A", ...(options.gc ? ["--v8-flags=--expose-gc"] : []), ...flags, join(ROOT, `${script}.ts`)]];
  }
  return [RUNTIME === "bun" ? process.execPath : join(BIN, "bun"), [...flags, join(ROOT, `${script}.ts`)]];
}
