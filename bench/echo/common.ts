/**
 * What the echo benchmark's processes share: the servers' start contract, the lines they print,
 * and option parsing. Used by bench/echo.ts (the orchestrator), bench/echo/server.ts (a server
 * under test) and bench/echo/load.ts (the load generator, always on Node).
 */

/** An echo server under test, started by bench/echo/server.ts. */
export interface EchoServer {
  readonly port: number;
  /** What it is, for the table header ("ws 8.23.0", "Bun.serve", …). */
  readonly name: string;
}

/** What bench/echo/anyws.ts and bench/echo/ref.<runtime>.ts export. */
export interface EchoModule {
  start(options: { hostname: string; port: number }): Promise<EchoServer>;
}

/** The server's answer to `mem` on its stdin (bytes). */
export type { MemoryReport } from "../shared/memory.ts";

/** What the load generator prints at the end of an `echo` or `handshake` run (one JSON line). */
export interface LoadResult {
  /** Messages echoed (or handshakes completed) inside the measured window. */
  count: number;
  /** Payload bytes echoed inside the measured window. */
  bytes: number;
  seconds: number;
  /** The load generator's own CPU time inside the window, in seconds (user + system). */
  cpu: number;
  /** Round-trip times in microseconds, when measured. */
  latency?: { p50: number; p90: number; p99: number; max: number; samples: number };
  /** Messages sent and verified over the whole run, warm-up included (every one came back intact). */
  verified: number;
}

export { numberOption, option, RUNTIME } from "../shared/args.ts";
