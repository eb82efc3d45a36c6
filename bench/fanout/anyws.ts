/** anyws's fan-out server, as a user writes it: the same file on Node, Deno and Bun. */
import { runtimeName, serve } from "../../adapters/auto.ts";
import { type FanoutServer, ROOM } from "./common.ts";

export async function start(options: { hostname: string; port: number }): Promise<FanoutServer> {
  const server = await serve(options, {
    open(ws) {
      ws.subscribe(ROOM);
    },
    message(_ws, data) {
      server.publish(ROOM, data); // framed once, to every subscriber (the sender too)
    },
  });
  return { port: server.port, name: `anyws (${runtimeName} adapter)` };
}
