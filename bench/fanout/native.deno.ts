/**
 * Deno's native WebSocket: `Deno.serve` + `Deno.upgradeWebSocket`, a loop over the open sockets
 * (Deno has no pub/sub of its own), each sent the received data.
 */
import type { FanoutServer } from "./common.ts";

export function start(options: { hostname: string; port: number }): Promise<FanoutServer> {
  const sockets = new Set<WebSocket>();
  return new Promise((resolve) => {
    Deno.serve({
      hostname: options.hostname,
      port: options.port,
      onListen: (addr) => resolve({ port: addr.port, name: `Deno.serve ${Deno.version.deno}` }),
    }, (request) => {
      if (request.headers.get("upgrade")?.toLowerCase() !== "websocket") {
        return new Response("WebSocket upgrade expected", { status: 426 });
      }
      const { socket, response } = Deno.upgradeWebSocket(request);
      socket.onopen = () => sockets.add(socket);
      socket.onclose = () => sockets.delete(socket);
      socket.onerror = () => {};
      socket.onmessage = (event) => {
        for (const s of sockets) if (s.readyState === 1) s.send(event.data);
      };
      return response;
    });
  });
}
