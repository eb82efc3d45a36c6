/**
 * An echo server run as a child process by tests/hostile/, on the runtime that runs the test, so
 * that its memory (RSS) is measured alone. Options come as JSON in ANYWS_FLOOD_OPTIONS. It
 * prints one JSON object a line: `listening` (port), `open`, `close` (code, wasClean), and
 * `stats` (rss after a garbage collection, messages received, echoes accepted and dropped) for
 * each `stats` line read on stdin.
 */
import process from "node:process";
import { serve, type ServerOptions } from "../../adapters/auto.ts";

const options = JSON.parse(process.env.ANYWS_FLOOD_OPTIONS ?? "{}") as ServerOptions;
const print = (line: object) => process.stdout.write(JSON.stringify(line) + "\n");

let received = 0;
let accepted = 0;
let dropped = 0;
let pongs = 0;

const server = await serve({ ...options, port: 0, hostname: "127.0.0.1" }, {
  open: () => print({ type: "open" }),
  message(ws, data) {
    received++;
    if (ws.send(data) === 0) dropped++;
    else accepted++;
  },
  pong: () => void pongs++,
  close: (_ws, code, _reason, wasClean) => print({ type: "close", code, wasClean }),
});

/** Collects garbage where the runtime lets a program ask (node --expose-gc, deno --v8-flags=--expose-gc, Bun.gc). */
function collectGarbage(): void {
  const g = globalThis as { gc?: () => void; Bun?: { gc(force: boolean): void } };
  if (g.Bun) g.Bun.gc(true);
  else g.gc?.();
}

let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk: string) => {
  input += chunk;
  let end: number;
  while ((end = input.indexOf("\n")) !== -1) {
    const command = input.slice(0, end).trim();
    input = input.slice(end + 1);
    if (command === "stats") {
      collectGarbage();
      print({ type: "stats", rss: process.memoryUsage().rss, received, accepted, dropped, pongs });
    } else if (command === "exit") {
      void server.close({ timeout: 100 }).then(() => process.exit(0));
    }
  }
});
process.stdin.on("end", () => process.exit(0));

print({ type: "listening", port: server.port });
