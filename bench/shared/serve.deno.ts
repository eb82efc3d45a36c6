/** A reference WebSocket server on Deno, as the echo and fan-out benchmarks start it. */

/**
 * `Deno.serve` + `Deno.upgradeWebSocket` (Deno's native WebSocket), 426 to a request that is not
 * an upgrade; `setUp` gets each new socket. Resolves once listening, with the port and the name
 * a benchmark prints for it.
 */
export function serveWebSockets(options: { hostname: string; port: number }, setUp: (socket: WebSocket) => void): Promise<{ port: number; name: string }> {
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
      setUp(socket);
      return response;
    });
  });
}
