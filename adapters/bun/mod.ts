/** anyws on Bun: `serve` on Bun.listen, and the `WebSocket` client on Bun.connect. */
import type { DeflateCodec } from "../../core/mod.ts";
import { createServe, type ServerHandlers, type ServerOptions, WebSocketServer as SharedWebSocketServer } from "../shared/server.ts";
import { createWebSocketClass } from "../shared/websocket.ts";
import { zlibCodec } from "../zlib/codec.ts";
import { bunRuntime } from "./runtime.ts";

export * from "../shared/mod.ts";
export { createZlibCodec, type ZlibCodec, type ZlibCodecOptions, type ZlibCodecStats, zlibCodec } from "../zlib/codec.ts";
export { bunRuntime };

export const serve = createServe(bunRuntime, zlibCodec);
export const WebSocket = createWebSocketClass(bunRuntime, zlibCodec);
export type WebSocket = InstanceType<typeof WebSocket>;

/** The server class, with `perMessageDeflate` on node:zlib (adapters/zlib/codec.ts). */
export class WebSocketServer<T = undefined> extends SharedWebSocketServer<T> {
  constructor(options: ServerOptions, handlers: ServerHandlers<T>, codec: DeflateCodec = zlibCodec) {
    super(options, handlers, codec);
  }
}
