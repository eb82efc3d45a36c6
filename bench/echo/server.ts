/**
 * One echo server under test, in its own process, started by bench/echo.ts:
 *
 *   node --expose-gc dist/bench/echo/server.js --impl=anyws|ref
 *   deno run -A --v8-flags=--expose-gc bench/echo/server.ts --impl=anyws|ref
 *   bun bench/echo/server.ts --impl=anyws|ref
 *
 * `anyws` is bench/echo/anyws.ts; `ref` is the runtime's reference server
 * (bench/echo/ref.<runtime>.ts). Only the one under test is loaded, so that neither library's
 * code counts in the other's memory. Prints one JSON line once listening
 * (`{"port":…,"name":…}`); then answers `mem` on stdin with a JSON `MemoryReport` taken after a
 * full garbage collection. Exits when stdin closes.
 */
import process from "node:process";
import { answerMemoryRequests } from "../shared/memory.ts";
import { type EchoModule, option, RUNTIME } from "./common.ts";

const args = process.argv.slice(2);
const impl = option(args, "impl") ?? "anyws";
if (impl !== "anyws" && impl !== "ref") throw new Error(`--impl=${impl}: anyws or ref`);

// A variable specifier: no runtime loads (or type-checks) another runtime's reference server.
const extension = import.meta.url.endsWith(".ts") ? ".ts" : ".js";
const modulePath = impl === "anyws" ? `./anyws${extension}` : `./ref.${RUNTIME}${extension}`;
const { start } = (await import(modulePath)) as EchoModule;
const server = await start({ hostname: option(args, "hostname") ?? "127.0.0.1", port: Number(option(args, "port") ?? 0) });
process.stdout.write(JSON.stringify({ port: server.port, name: server.name }) + "\n");

answerMemoryRequests();
