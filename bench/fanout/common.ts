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

/** `--name=value` from an argument list. */
export function option(args: readonly string[], name: string): string | undefined {
  const prefix = `--${name}=`;
  return args.find((a) => a.startsWith(prefix))?.slice(prefix.length);
}

export function numberOption(args: readonly string[], name: string, fallback: number): number {
  const text = option(args, name);
  if (text === undefined) return fallback;
  const value = Number(text.replace(/_/g, ""));
  if (!Number.isFinite(value) || value < 0) throw new Error(`--${name}=${text}: not a number`);
  return value;
}

export const RUNTIME: "deno" | "bun" | "node" = "Deno" in globalThis ? "deno" : "Bun" in globalThis ? "bun" : "node";
