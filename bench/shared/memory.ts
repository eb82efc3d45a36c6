/** Memory as the benchmarks measure it: after a full garbage collection. */
import process from "node:process";
import { createInterface } from "node:readline";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

/** A process's memory (bytes). */
export interface MemoryReport {
  rss: number;
  heapUsed: number;
  external: number;
}

/**
 * A full garbage collection where the runtime lets a program ask: `Bun.gc`, or V8's `gc`, given
 * to a process started without --expose-gc by setting the flag now. False where neither works.
 */
export function collectGarbage(): boolean {
  const g = globalThis as { Bun?: { gc(force: boolean): void }; gc?: () => void };
  if (g.Bun) {
    g.Bun.gc(true);
    return true;
  }
  if (typeof g.gc !== "function") {
    try {
      setFlagsFromString("--expose-gc");
      g.gc = runInNewContext("gc") as () => void;
    } catch {
      return false;
    }
  }
  g.gc?.();
  return typeof g.gc === "function";
}

/** `rounds` collections, each followed by a turn of the event loop: finalizers and weak callbacks free native memory. */
export async function settle(rounds: number, pauseMs = 50): Promise<boolean> {
  let collected = false;
  for (let i = 0; i < rounds; i++) {
    collected = collectGarbage();
    await new Promise((resolve) => setTimeout(resolve, pauseMs));
  }
  return collected;
}

/**
 * A benchmark's server process: answers each `mem` line on stdin with one JSON line, its
 * `MemoryReport` after full collections and `gc` (whether one could be forced); exits when stdin
 * closes.
 */
export function answerMemoryRequests(): void {
  createInterface({ input: process.stdin }).on("line", async (line) => {
    if (line.trim() !== "mem") return;
    const gc = await settle(2);
    const m = process.memoryUsage();
    const report: MemoryReport = { rss: m.rss, heapUsed: m.heapUsed, external: m.external };
    process.stdout.write(JSON.stringify({ gc, ...report }) + "\n");
  }).on("close", () => process.exit(0));
}
