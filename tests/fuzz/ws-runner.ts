/**
 * Runs `ws`'s frame parser (ws/lib/receiver.js, the `Receiver` the `ws` package uses for every
 * connection) on the same bytes, for the differential check. It is loaded from the installed
 * package by path on every runtime: `ws` does not export the subpath, and on Bun `import "ws"`
 * gives Bun's own implementation, whose `Receiver` throws "Not supported yet in Bun".
 */
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { Buffer } from "node:buffer";
import { hex } from "../support/bytes.ts";
import type { Normalized, Role, Verdict } from "./core-runner.ts";
import type { Limits } from "./streams.ts";

interface WsReceiver {
  on(event: string, listener: (...args: never[]) => void): void;
  _write(chunk: Buffer, encoding: string, callback: (error?: Error | null) => void): void;
}
type ReceiverClass = new (options: Record<string, unknown>) => WsReceiver;

const require = createRequire(import.meta.url);
const Receiver = require(join(dirname(require.resolve("ws/package.json")), "lib", "receiver.js")) as ReceiverClass;
/** ws/package.json's version, printed with a difference. */
export const wsVersion: string = (require("ws/package.json") as { version: string }).version;

export interface WsOutcome {
  events: Normalized[];
  verdict: Verdict;
  /** ws's error code (WS_ERR_*), when it failed. */
  errorCode: string | null;
}

// ignoreBOM: a BOM is part of the message (the core keeps it too).
const decoder = new TextDecoder("utf-8", { ignoreBOM: true });

/** The close code ws gives an error: in a property keyed by a private `Symbol('status-code')`. */
function statusCode(error: Error): number {
  for (const key of Object.getOwnPropertySymbols(error)) {
    if (key.description === "status-code") return (error as unknown as Record<symbol, number>)[key];
  }
  return (error as { statusCode?: number }).statusCode ?? -1;
}

/**
 * Feeds `bytes` cut at `cuts` to a fresh Receiver, with the core's limits and defaults. Its
 * `_write` is called directly: it runs synchronously, as `Writable#write` would run it, and the
 * error comes back through the callback instead of an `error` event a tick later.
 */
export function runWs(role: Role, bytes: Uint8Array, cuts: readonly number[], limits: Limits): WsOutcome {
  const receiver = new Receiver({
    isServer: role === "server",
    maxPayload: limits.maxMessageSize ?? 64 * 1024 * 1024,
    maxFragments: limits.maxFragments ?? 100_000,
  });
  const events: Normalized[] = [];
  let verdict: Verdict = { kind: "open" };
  let errorCode: string | null = null;
  receiver.on("message", (data: Buffer, isBinary: boolean) => {
    events.push(isBinary ? { type: "binary", data: hex(data) } : { type: "text", data: decoder.decode(data) });
  });
  receiver.on("ping", (data: Buffer) => events.push({ type: "ping", data: hex(data) }));
  receiver.on("pong", (data: Buffer) => events.push({ type: "pong", data: hex(data) }));
  receiver.on("conclude", (code: number, reason: Buffer) => {
    const r = decoder.decode(reason);
    events.push({ type: "close", code, reason: r });
    if (verdict.kind === "open") verdict = { kind: "close", code, reason: r };
  });
  receiver.on("error", () => {}); // reported through the callback below
  let from = 0;
  for (const to of [...cuts, bytes.length]) {
    if (to === from) continue;
    let failed: Error | null = null;
    receiver._write(Buffer.from(bytes.slice(from, to)), "buffer", (error) => {
      if (error) failed = error;
    });
    from = to;
    if (failed !== null) {
      const error: Error = failed;
      const code = statusCode(error);
      events.push({ type: "error", code });
      verdict = { kind: "fail", code };
      errorCode = (error as { code?: string }).code ?? null;
      break;
    }
  }
  return { events, verdict, errorCode };
}
