/** `Bun.serve`'s native pub/sub: `server.publish` to every subscriber (the sender too), defaults otherwise. */
import { described, serveWebSockets } from "../shared/serve.bun.ts";
import { type FanoutServer, ROOM } from "./common.ts";

export function start(options: { hostname: string; port: number }): Promise<FanoutServer> {
  const server = serveWebSockets(options, {
    open(ws) {
      ws.subscribe(ROOM);
    },
    message(_ws, message) {
      server.publish(ROOM, message);
    },
  });
  return Promise.resolve(described(server));
}
