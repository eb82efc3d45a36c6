/** `Bun.serve`'s native pub/sub: `server.publish` to every subscriber (the sender too), defaults otherwise. */
import { type FanoutServer, ROOM } from "./common.ts";

export function start(options: { hostname: string; port: number }): Promise<FanoutServer> {
  const server = Bun.serve({
    hostname: options.hostname,
    port: options.port,
    fetch(request, server) {
      if (server.upgrade(request)) return undefined;
      return new Response("WebSocket upgrade expected", { status: 426 });
    },
    websocket: {
      open(ws) {
        ws.subscribe(ROOM);
      },
      message(_ws, message) {
        server.publish(ROOM, message);
      },
    },
  });
  return Promise.resolve({ port: server.port!, name: `Bun.serve ${Bun.version}` });
}
