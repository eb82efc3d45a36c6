/** anyws on Node: `serve`, `attach` (share a port with an HTTP server) and the `WebSocket` client. */
import type { IncomingMessage, Server as HttpServer } from "node:http";
import type { Server as HttpsServer } from "node:https";
import type { Duplex } from "node:stream";
import type { Socket } from "node:net";
import { parseRequestTarget } from "../../core/mod.ts";
import { createServe, type ServerHandlers, type ServerOptions } from "../shared/server.ts";
import { createWebSocketClass } from "../shared/websocket.ts";
import type { TransportHandler } from "../shared/transport.ts";
import { zlibCodec } from "../zlib/codec.ts";
import { WebSocketServer } from "../zlib/server.ts";
import { nodeRuntime, socketTransport } from "./runtime.ts";

export * from "../shared/mod.ts";
export { createZlibCodec, type ZlibCodec, type ZlibCodecOptions, type ZlibCodecStats, zlibCodec } from "../zlib/codec.ts";
export { nodeRuntime, WebSocketServer };

export const serve = createServe(nodeRuntime, zlibCodec);
export const WebSocket = createWebSocketClass(nodeRuntime, zlibCodec);
export type WebSocket = InstanceType<typeof WebSocket>;

/** Every `upgrade` listener that `attach()` added, and the requests one of them took. */
const attachListeners = new WeakSet<(...args: never[]) => unknown>();
const taken = new WeakSet<IncomingMessage>();

/**
 * Serves WebSockets on an existing `http`/`https` server's port: upgrade requests (for
 * `options.path`, if given) become WebSocket connections; everything else stays the app's.
 * An upgrade for another path is left to the server's other `upgrade` listeners; when there are
 * none but `attach()`'s, the last of them answers it with 404, so that no request is left hanging.
 */
export function attach<T = undefined>(
  server: HttpServer | HttpsServer,
  options: ServerOptions,
  handlers: ServerHandlers<T>,
): WebSocketServer<T> {
  const wss = new WebSocketServer<T>(options, handlers);
  const listener = (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    // The path as the core parses the request-target: the server's own check sees the same one.
    if (!wss.servesPath(parseRequestTarget(request.url ?? "")?.path) && !answersTheRest(server, listener, request)) return;
    taken.add(request);
    let handler: TransportHandler | undefined;
    socketTransport(socket as Socket, (transport) => (handler = wss.accept(transport)));
    // Node has parsed the request already; the core checks it from its bytes, as for any stream.
    handler!.onData(requestHead(request));
    if (head.length !== 0) handler!.onData(new Uint8Array(head));
  };
  attachListeners.add(listener);
  server.on("upgrade", listener);
  return wss;
}

/** True when `listener` is the last `upgrade` listener, all are `attach()`'s, and none took `request`. */
function answersTheRest(server: HttpServer | HttpsServer, listener: (...args: never[]) => unknown, request: IncomingMessage): boolean {
  if (taken.has(request)) return false;
  const listeners = server.listeners("upgrade");
  return listeners[listeners.length - 1] === listener && listeners.every((l) => attachListeners.has(l as never));
}

function requestHead(request: IncomingMessage): Uint8Array {
  let head = `${request.method} ${request.url} HTTP/${request.httpVersion}\r\n`;
  const raw = request.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) head += `${raw[i]}: ${raw[i + 1]}\r\n`;
  return new Uint8Array(Buffer.from(head + "\r\n", "latin1"));
}
