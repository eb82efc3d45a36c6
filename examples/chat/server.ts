/**
 * anyws chat & draw: chat rooms and a shared drawing board, a web page and its WebSocket on
 * one port, the same code on every runtime.
 *
 *   npm start                  (Node: compiles, then runs dist/examples/chat/server.js)
 *   npx deno task serve        (Deno from node_modules/.bin, or `deno task serve`)
 *   npm run serve              (Bun from node_modules/.bin, or `bun run serve`)
 *
 * Options come from flags or environment variables (`--help` lists them); the server prints
 * the URL to open. `--workers N` runs N servers on the port (workers.ts), `--redis URL` links
 * servers through Redis (broker.ts); either way every room, its history and its board are the
 * same whichever server a page lands on (peers.ts, rooms.ts). With neither, one process. The page is public/: plain HTML, CSS and JavaScript, using the browser's
 * own WebSocket.
 */
import process from "node:process";
import { runtimeName } from "../../adapters/auto.ts";
import { ConfigError, parseConfig, usage } from "./config.ts";
import { runServer, signalled, urlFor } from "./run.ts";
import { isWorker, launch, workersHelp } from "./workers.ts";

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  const program = runtimeName === "node" ? "npm start --" : runtimeName === "deno" ? "npx deno task serve" : "npm run serve --";
  const notes = [
    `--workers N on ${runtimeName}: ${workersHelp(runtimeName)}.`,
    "--redis URL: every process (of any runtime, on any machine) given the same URL shares the rooms;",
    "  it needs the `redis` npm package (npm install redis). Without --workers or --redis: one process, no broker.",
  ];
  if (argv.includes("--help") || argv.includes("-h")) {
    console.log(usage(program, notes));
    return 0;
  }
  let config;
  try {
    config = parseConfig(argv, process.env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    console.error(`${error.message}\n\n${usage(program, notes)}`);
    return 2;
  }
  if (config.workers > 1 || isWorker()) return await launch(config, (cfg, role) => runServer(cfg, role), urlFor);
  return await runServer(config, { worker: 0, workers: 1, reusePort: false, listening: () => {}, stop: signalled() });
}

process.exit(await main());
