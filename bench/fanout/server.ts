/**
 * One fan-out server under test, in its own process, started by bench/fanout.ts:
 *
 *   node --expose-gc dist/bench/fanout/server.js --impl=anyws|ws|uws|socketio [--redis=URL]
 *   deno run -A --v8-flags=--expose-gc bench/fanout/server.ts --impl=anyws|deno
 *   bun bench/fanout/server.ts --impl=anyws|bun
 *
 * Only the one under test is loaded. Prints one JSON line once listening
 * (`{"port":…,"name":…,"pid":…}`); then answers `mem` on stdin with its memory after a full
 * garbage collection (`{"gc":…,"rss":…,"heapUsed":…,"external":…}`). Exits when stdin closes.
 */
import process from "node:process";
import { answerMemoryRequests } from "../shared/memory.ts";
import { type FanoutModule, option } from "./common.ts";

const MODULES: Record<string, string> = { anyws: "anyws", ws: "ws", uws: "uws", bun: "native.bun", deno: "native.deno", socketio: "socketio" };

const args = process.argv.slice(2);
const impl = option(args, "impl") ?? "anyws";
if (!(impl in MODULES)) throw new Error(`--impl=${impl}: one of ${Object.keys(MODULES).join(", ")}`);

// A variable specifier: no runtime loads (or type-checks) another runtime's server.
const extension = import.meta.url.endsWith(".ts") ? ".ts" : ".js";
const specifier = new URL(`./${MODULES[impl]}${extension}`, import.meta.url).href;
const { start } = (await import(specifier)) as FanoutModule;
const server = await start({ hostname: option(args, "hostname") ?? "127.0.0.1", port: Number(option(args, "port") ?? 0), redis: option(args, "redis") });
process.stdout.write(JSON.stringify({ port: server.port, name: server.name, pid: process.pid }) + "\n");

answerMemoryRequests();
