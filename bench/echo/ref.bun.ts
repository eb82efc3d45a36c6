/**
 * The reference echo server on Bun: `Bun.serve` with its native (uWebSockets) `websocket`
 * handler, defaults otherwise (no permessage-deflate, 16 MiB maxPayloadLength and backpressure
 * limit, 120 s idle timeout).
 */
import { described, serveWebSockets } from "../shared/serve.bun.ts";
import type { EchoServer } from "./common.ts";

export function start(options: { hostname: string; port: number }): Promise<EchoServer> {
  const server = serveWebSockets(options, {
    message(ws, message) {
      ws.send(message); // a string back as text, a Buffer as binary
    },
  });
  return Promise.resolve(described(server));
}
