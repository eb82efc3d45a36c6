/**
 * A server run as a child process by tests/adapters/reuse-port.test.ts, on the runtime that runs
 * the test: it listens on ANYWS_PORT (0: any) with `reusePort` as ANYWS_REUSE_PORT says, greets
 * each client with its pid, and prints one JSON line: `listening` (port, pid) or `error`.
 */
import process from "node:process";
import { serve } from "../../adapters/auto.ts";

const print = (line: object) => process.stdout.write(JSON.stringify(line) + "\n");

try {
  const server = await serve(
    { port: Number(process.env.ANYWS_PORT ?? 0), hostname: "127.0.0.1", reusePort: process.env.ANYWS_REUSE_PORT === "1" },
    { open: (ws) => void ws.send(String(process.pid)) },
  );
  print({ type: "listening", port: server.port, pid: process.pid });
} catch (error) {
  print({ type: "error", message: String((error as Error).message) });
  process.exit(0);
}
