/**
 * A server process on a Redis backplane, for tests/backplane/redis.node.test.ts, on any runtime.
 * Environment: REDIS_URL, REDIS_CLIENT ("node-redis", "node-redis4" or "ioredis"), REDIS_SHARDED
 * ("1": sharded pub/sub, one channel per topic). Clients send "sub TOPIC"
 * (answered "subscribed TOPIC"); any other message is published to "room" (the sender excluded).
 * Prints JSON lines: {"port","origin"} once listening, then {"event":"up"|"down"},
 * {"event":"error","stage","message"}, {"event":"gap","origin","from","to"}.
 */
import process from "node:process";
import { runtimeName, serve } from "../../adapters/auto.ts";
import { type RedisClient, redisBackplane } from "../../adapters/backplane/mod.ts";

const url = process.env.REDIS_URL!;
const library = process.env.REDIS_CLIENT!;
const sharded = process.env.REDIS_SHARDED === "1";
const print = (value: unknown) => console.log(JSON.stringify(value));

let client: RedisClient;
if (library === "ioredis") {
  const { Redis } = await import("ioredis");
  client = new Redis(url, { retryStrategy: () => 100 });
} else if (library === "node-redis4") {
  const { createClient } = await import("redis4");
  client = createClient({ url, socket: { reconnectStrategy: () => 100 } });
} else {
  const { createClient } = await import("redis");
  client = createClient({ url, socket: { reconnectStrategy: () => 100 } });
}

const server = await serve({
  port: 0,
  backplane: {
    driver: redisBackplane(client, { sharded }),
    channels: sharded ? "topic" : "prefix",
    gap: (origin, from, to) => print({ event: "gap", origin, from, to }),
    error: (stage, error) => print({ event: "error", stage, message: error instanceof Error ? error.message : String(error) }),
    up: () => print({ event: "up" }),
    down: () => print({ event: "down" }),
  },
}, {
  message(ws, data) {
    if (typeof data === "string" && data.startsWith("sub ")) {
      ws.subscribe(data.slice(4));
      ws.send(`subscribed ${data.slice(4)}`);
    } else ws.publish("room", data);
  },
});
print({ port: server.port, origin: server.backplane!.origin, runtime: runtimeName, client: library });
