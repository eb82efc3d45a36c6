/**
 * anyws over any pair of Web Streams of bytes — a socket from another TCP stack, a pipe, a
 * TransformStream — in either role. The same server and WebSocket as on every runtime.
 */
import type { WebSocketServer as SharedWebSocketServer } from "../shared/server.ts";
import type { DialOptions, Runtime } from "../shared/transport.ts";
import { createWebSocketClass } from "../shared/websocket.ts";
import { zlibCodec } from "../zlib/codec.ts";
import { streamTransport } from "./runtime.ts";

export * from "../shared/mod.ts";
export { createZlibCodec, type ZlibCodec, type ZlibCodecOptions, type ZlibCodecStats, zlibCodec } from "../zlib/codec.ts";
export { WebSocketServer } from "../zlib/server.ts";
export { streamTransport };

/** A duplex byte stream as two Web Streams. */
export interface ByteStreams {
  readable: ReadableStream<Uint8Array>;
  writable: WritableStream<Uint8Array>;
}

/** Where a stream-borne connection comes from, for the upgrade hook's `remoteAddress`. */
export interface PeerInfo {
  remoteAddress?: string;
  remotePort?: number;
}

/**
 * Serves one connection that arrives as a stream pair (server role): its first bytes are the
 * upgrade request. Create the server with `new WebSocketServer(options, handlers)`.
 */
export function acceptStreams<T>(server: SharedWebSocketServer<T>, streams: ByteStreams, peer: PeerInfo = {}): void {
  streamTransport(streams, (transport) => server.accept(transport), peer);
}

/**
 * A WebSocket class (client role) whose connections run over the stream pairs `open` returns
 * for each URL's host and port, e.g. a socket opened by another TCP stack.
 */
export function createStreamsWebSocket(open: (target: DialOptions) => ByteStreams | Promise<ByteStreams>): ReturnType<typeof createWebSocketClass> {
  const runtime: Runtime = {
    name: "streams",
    listen: () => Promise.reject(new Error("the streams adapter does not listen: pass each connection to acceptStreams()")),
    dial: async (target, bind) => streamTransport(await open(target), bind),
  };
  return createWebSocketClass(runtime, zlibCodec);
}
