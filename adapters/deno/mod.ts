/** anyws on Deno: `serve` on Deno.listen / Deno.listenTls, and the `WebSocket` client on Deno.connect(Tls). */
import { createServe } from "../shared/server.ts";
import { createWebSocketClass } from "../shared/websocket.ts";
import { denoRuntime } from "./runtime.ts";

export * from "../shared/mod.ts";
export { denoRuntime };

export const serve: ReturnType<typeof createServe> = createServe(denoRuntime);
export const WebSocket: ReturnType<typeof createWebSocketClass> = createWebSocketClass(denoRuntime);
export type WebSocket = InstanceType<typeof WebSocket>;
