/** A reference WebSocket server on Bun, as the echo and fan-out benchmarks start it. */

/** `Bun.serve` with its native (uWebSockets) `websocket` handlers, 426 to a request that is not an upgrade, defaults otherwise. */
export function serveWebSockets(options: { hostname: string; port: number }, websocket: Bun.WebSocketHandler<undefined>): Bun.Server<undefined> {
  return Bun.serve({
    hostname: options.hostname,
    port: options.port,
    fetch(request, server) {
      if (server.upgrade(request)) return undefined;
      return new Response("WebSocket upgrade expected", { status: 426 });
    },
    websocket,
  });
}

/** The port and the name a benchmark prints for it. */
export function described(server: Bun.Server<undefined>): { port: number; name: string } {
  return { port: server.port!, name: `Bun.serve ${Bun.version}` };
}
