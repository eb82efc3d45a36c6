/** anyws on Deno: `serve` on Deno.listen / Deno.listenTls, and the `WebSocket` client on Deno.connect(Tls). */
import { createServe } from "../shared/server.ts";
import { createWebSocketClass } from "../shared/websocket.ts";
import { zlibCodec } from "../zlib/codec.ts";
import { denoRuntime } from "./runtime.ts";

export * from "../shared/mod.ts";
export { createZlibCodec, type ZlibCodec, type ZlibCodecOptions, type ZlibCodecStats, zlibCodec } from "../zlib/codec.ts";
export { WebSocketServer } from "../zlib/server.ts";
export { denoRuntime };

export const serve: ReturnType<typeof createServe> = createServe(denoRuntime, zlibCodec);
export const WebSocket: ReturnType<typeof createWebSocketClass> = createWebSocketClass(denoRuntime, zlibCodec);
export type WebSocket = InstanceType<typeof WebSocket>;
