/** The server class that every entry (auto, node, deno, bun, streams) exports: one class, whichever entry it is imported from. */
import type { DeflateCodec } from "../../core/mod.ts";
import { type ServerHandlers, type ServerOptions, WebSocketServer as SharedWebSocketServer } from "../shared/server.ts";
import { zlibCodec } from "./codec.ts";

/** The server class, with `perMessageDeflate` on node:zlib (adapters/zlib/codec.ts). */
export class WebSocketServer<T = undefined> extends SharedWebSocketServer<T> {
  constructor(options: ServerOptions, handlers: ServerHandlers<T>, codec: DeflateCodec = zlibCodec) {
    super(options, handlers, codec);
  }
}
