/**
 * anyws's fan-out server, as a user writes it: the same file on Node, Deno and Bun. With a Redis
 * URL, the room is shared with other processes through the Redis backplane (node-redis client).
 */
import { runtimeName, serve } from "../../adapters/auto.ts";
import { type FanoutServer, ROOM, type StartOptions } from "./common.ts";

export async function start(options: StartOptions): Promise<FanoutServer> {
  let backplane;
  if (options.redis) {
    const { redisBackplane } = await import("../../adapters/backplane/mod.ts");
    const { createClient } = await import("redis");
    backplane = { driver: redisBackplane(createClient({ url: options.redis })), error: (stage: string, error: unknown) => console.error(`backplane ${stage}:`, error) };
  }
  const server = await serve({ hostname: options.hostname, port: options.port, backplane }, {
    open(ws) {
      ws.subscribe(ROOM);
    },
    message(_ws, data) {
      server.publish(ROOM, data); // framed once, to every subscriber (the sender too), then relayed
    },
  });
  await server.backplane?.ready;
  return { port: server.port, name: `anyws (${runtimeName} adapter)${options.redis ? " + Redis backplane" : ""}` };
}
