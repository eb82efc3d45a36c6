/**
 * What links the chat's processes: nothing (one process), the node:cluster primary or a
 * BroadcastChannel (`--workers N` on one machine), or Redis (`--redis URL`: processes and
 * machines). The Redis client is the user's own `redis` package (node-redis), loaded only when
 * --redis is given: without the flag, nothing needs Redis or the package.
 */
import { runtimeName } from "../../adapters/auto.ts";
import { broadcastChannelDriver } from "../../adapters/backplane/broadcast-channel.ts";
import { clusterDriver, clusterHub } from "../../adapters/backplane/cluster.ts";
import { redisBackplane } from "../../adapters/backplane/redis.ts";
import type { BackplaneDriver } from "../../adapters/shared/backplane.ts";
import type { Config } from "./config.ts";

/** The chat cannot be linked as asked: the message says why and what to do. */
export class BrokerError extends Error {}

/** The driver for this server's link to the others, or null when it is alone. */
export async function brokerFor(config: Config, role: { workers: number }): Promise<BackplaneDriver | null> {
  if (config.redis !== "") return await redisDriver(config.redis);
  if (role.workers <= 1) return null;
  return runtimeName === "node" ? clusterDriver() : broadcastChannelDriver({ prefix: "anyws-chat:" });
}

/** In the node:cluster primary: relays between the workers when there is no Redis. */
export function relayCluster(): void {
  clusterHub({ error: (error) => console.error(`cluster relay: ${(error as Error)?.message ?? error}`) });
}

/** How long --redis waits for Redis at startup before giving up with a message. */
const CONNECT_TIMEOUT = 5000;

async function redisDriver(url: string): Promise<BackplaneDriver> {
  let redis: typeof import("redis");
  try {
    redis = await import("redis");
  } catch (error) {
    throw new BrokerError(
      `--redis needs the \`redis\` npm package (node-redis), which cannot be loaded here (${(error as Error).message}): ` +
        "run `npm install redis`, or leave out --redis for one process without a broker",
    );
  }
  const client = redis.createClient({ url, socket: { connectTimeout: CONNECT_TIMEOUT } });
  // Errors after the start are the backplane's to report (stage and all); before, they are ours.
  let fail: (error: unknown) => void = () => {};
  client.on("error", (error: unknown) => fail(error));
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await Promise.race([
      client.connect(),
      new Promise((_, reject) => {
        fail = reject;
        timer = setTimeout(() => reject(new Error(`no answer in ${CONNECT_TIMEOUT} ms`)), CONNECT_TIMEOUT);
      }),
    ]);
    fail = () => {};
  } catch (error) {
    client.destroy();
    const why = (error as Error)?.message || (error as { code?: string })?.code || String(error);
    throw new BrokerError(`cannot connect to Redis at ${url}: ${why} (is redis-server running there? leave out --redis for one process without a broker)`);
  } finally {
    clearTimeout(timer);
  }
  return redisBackplane(client);
}
