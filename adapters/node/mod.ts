/** anyws on Node: `serve`, `attach` (share a port with an HTTP server) and the `WebSocket` client. */
import type { IncomingMessage, Server as HttpServer } from "node:http";
import type { Server as HttpsServer } from "node:https";
import type { Duplex } from "node:stream";
import type { Socket } from "node:net";
import { createServe, type ServerHandlers, type ServerOptions, WebSocketServer } from "../shared/server.ts";
import { createWebSocketClass } from "../shared/websocket.ts";
import type { TransportHandler } from "../shared/transport.ts";
import { nodeRuntime, socketTransport } from "./runtime.ts";

export * from "../shared/mod.ts";
export { nodeRuntime };

export const serve = createServe(nodeRuntime);
export const WebSocket = createWebSocketClass(nodeRuntime);
export type WebSocket = InstanceType<typeof WebSocket>;

/**
 * Serves WebSockets on an existing `http`/`https` server's port: upgrade requests (for
 * `options.path`, if given) become WebSocket connections; everything else stays the app's.
 */
export function attach<T = undefined>(
  server: HttpServer | HttpsServer,
  options: ServerOptions,
  handlers: ServerHandlers<T>,
): WebSocketServer<T> {
  const wss = new WebSocketServer<T>(options, handlers);
  server.on("upgrade", (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    if (options.path !== undefined && new URL(request.url ?? "/", "http://h").pathname !== options.path) return;
    let handler: TransportHandler | undefined;
    socketTransport(socket as Socket, (transport) => (handler = wss.accept(transport)));
    // Node has parsed the request already; the core checks it from its bytes, as for any stream.
    handler!.onData(requestHead(request));
    if (head.length !== 0) handler!.onData(new Uint8Array(head));
  });
  return wss;
}

function requestHead(request: IncomingMessage): Uint8Array {
  let head = `${request.method} ${request.url} HTTP/${request.httpVersion}\r\n`;
  const raw = request.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) head += `${raw[i]}: ${raw[i + 1]}\r\n`;
  return new Uint8Array(Buffer.from(head + "\r\n", "latin1"));
}
