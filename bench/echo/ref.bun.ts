/**
 * The reference echo server on Bun: `Bun.serve` with its native (uWebSockets) `websocket`
 * handler, defaults otherwise (no permessage-deflate, 16 MiB maxPayloadLength and backpressure
 * limit, 120 s idle timeout).
 */
import type { EchoServer } from "./common.ts";

export function start(options: { hostname: string; port: number }): Promise<EchoServer> {
  const server = Bun.serve({
    hostname: options.hostname,
    port: options.port,
    fetch(request, server) {
      if (server.upgrade(request)) return undefined;
      return new Response("WebSocket upgrade expected", { status: 426 });
    },
    websocket: {
      message(ws, message) {
        ws.send(message); // a string back as text, a Buffer as binary
      },
    },
  });
  return Promise.resolve({ port: server.port!, name: `Bun.serve ${Bun.version}` });
}
