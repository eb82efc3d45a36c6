/**
 * The reference echo server on Deno: `Deno.serve` + `Deno.upgradeWebSocket` (the WebSocket is
 * Deno's native one, in Rust), binary messages as ArrayBuffers (`binaryType = "arraybuffer"`,
 * what a user who cares for speed sets; Blobs would cost more), defaults otherwise.
 */
import type { EchoServer } from "./common.ts";

export function start(options: { hostname: string; port: number }): Promise<EchoServer> {
  return new Promise((resolve) => {
    const server = Deno.serve({
      hostname: options.hostname,
      port: options.port,
      onListen: (addr) => resolve({ port: addr.port, name: `Deno.serve ${Deno.version.deno}` }),
    }, (request) => {
      if (request.headers.get("upgrade")?.toLowerCase() !== "websocket") {
        return new Response("WebSocket upgrade expected", { status: 426 });
      }
      const { socket, response } = Deno.upgradeWebSocket(request);
      socket.binaryType = "arraybuffer";
      socket.onmessage = (event) => socket.send(event.data);
      socket.onerror = () => {}; // a client cut off mid-frame
      return response;
    });
    void server;
  });
}
