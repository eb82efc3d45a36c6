/**
 * The adapter of the runtime this runs on — Deno, Bun or Node — so that one program runs
 * unchanged on all three: `import { serve, WebSocket } from "anyws/auto"`.
 */
import type { createServe } from "./shared/server.ts";
import type { createWebSocketClass } from "./shared/websocket.ts";
import type { Runtime } from "./shared/transport.ts";

export * from "./shared/mod.ts";
export { createZlibCodec, type ZlibCodec, type ZlibCodecOptions, type ZlibCodecStats, zlibCodec } from "./zlib/codec.ts";
export { WebSocketServer } from "./zlib/server.ts";

const g = globalThis as { Deno?: unknown; Bun?: unknown };
/** Which runtime's adapter is in use. */
export const runtimeName: "deno" | "bun" | "node" = g.Deno ? "deno" : g.Bun ? "bun" : "node";

// Each runtime loads only its own adapter, by a fixed path; only the extension is filled in
// (.ts from source, .js compiled). That substitution keeps tsc and deno check from following
// the import into another runtime's adapter (Deno's and Bun's globals cannot be loaded
// together), while the fixed relative start lets `deno publish` analyze it (a wholly variable
// specifier is what it warns of).
const extension = import.meta.url.endsWith(".ts") ? ".ts" : ".js";
const adapter = (
  runtimeName === "deno"
    ? await import(`./deno/mod${extension}`)
    : runtimeName === "bun"
    ? await import(`./bun/mod${extension}`)
    : await import(`./node/mod${extension}`)
) as {
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
