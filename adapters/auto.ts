/**
 * The adapter of the runtime this runs on — Deno, Bun or Node — so that one program runs
 * unchanged on all three: `import { serve, WebSocket } from "anyws/auto"`.
 */
import type { createServe } from "./shared/server.ts";
import type { createWebSocketClass } from "./shared/websocket.ts";
import type { Runtime } from "./shared/transport.ts";

export * from "./shared/mod.ts";

const g = globalThis as { Deno?: unknown; Bun?: unknown };
/** Which runtime's adapter is in use. */
export const runtimeName: "deno" | "bun" | "node" = g.Deno ? "deno" : g.Bun ? "bun" : "node";

// A variable specifier keeps each runtime from loading (or type-checking) the others' adapters.
// Compiled for Node the modules are .js, run from source (Deno, Bun) they are .ts.
const extension = import.meta.url.endsWith(".ts") ? ".ts" : ".js";
const modulePath = `./${runtimeName}/mod${extension}`;
const adapter = (await import(modulePath)) as {
  serve: ReturnType<typeof createServe>;
  WebSocket: ReturnType<typeof createWebSocketClass>;
  nodeRuntime?: Runtime;
  denoRuntime?: Runtime;
  bunRuntime?: Runtime;
};

export const serve = adapter.serve;
export const WebSocket = adapter.WebSocket;
export type WebSocket = InstanceType<typeof WebSocket>;
export const runtime: Runtime = (adapter.nodeRuntime ?? adapter.denoRuntime ?? adapter.bunRuntime)!;
