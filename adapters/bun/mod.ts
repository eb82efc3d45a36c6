/** anyws on Bun: `serve` on Bun.listen, and the `WebSocket` client on Bun.connect. */
import { createServe } from "../shared/server.ts";
import { createWebSocketClass } from "../shared/websocket.ts";
import { zlibCodec } from "../zlib/codec.ts";
import { bunRuntime } from "./runtime.ts";

export * from "../shared/mod.ts";
export { createZlibCodec, type ZlibCodec, type ZlibCodecOptions, type ZlibCodecStats, zlibCodec } from "../zlib/codec.ts";
export { WebSocketServer } from "../zlib/server.ts";
export { bunRuntime };

export const serve = createServe(bunRuntime, zlibCodec);
export const WebSocket = createWebSocketClass(bunRuntime, zlibCodec);
export type WebSocket = InstanceType<typeof WebSocket>;
