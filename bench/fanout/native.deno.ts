/**
 * Deno's native WebSocket: `Deno.serve` + `Deno.upgradeWebSocket`, a loop over the open sockets
 * (Deno has no pub/sub of its own), each sent the received data.
 */
import { serveWebSockets } from "../shared/serve.deno.ts";
import type { FanoutServer } from "./common.ts";

export function start(options: { hostname: string; port: number }): Promise<FanoutServer> {
  const sockets = new Set<WebSocket>();
  return serveWebSockets(options, (socket) => {
    socket.onopen = () => sockets.add(socket);
    socket.onclose = () => sockets.delete(socket);
    socket.onerror = () => {};
    socket.onmessage = (event) => {
      for (const s of sockets) if (s.readyState === 1) s.send(event.data);
    };
  });
}
