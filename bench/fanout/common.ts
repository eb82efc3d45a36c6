/**
 * What the fan-out benchmark's processes share: the servers' start contract and option parsing.
 * Used by bench/fanout.ts (the orchestrator) and bench/fanout/server.ts (a server under test).
 */

/** The topic every connection subscribes to. */
export const ROOM = "room";

/** A server under test: every connection joins ROOM; every message received is published to ROOM (its sender included). */
export interface FanoutServer {
  readonly port: number;
  /** What it is, for the table ("uWebSockets.js 20.30", "Bun.serve 1.4.5", …). */
  readonly name: string;
}

export interface StartOptions {
  hostname: string;
  port: number;
  /** A Redis URL: share the room with the servers of other processes through it. */
  redis?: string;
}

/** What each bench/fanout/<impl>.ts exports. */
export interface FanoutModule {
  start(options: StartOptions): Promise<FanoutServer>;
}

export { numberOption, option, RUNTIME } from "../shared/args.ts";
