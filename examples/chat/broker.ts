/**
 * What links the chat's processes: nothing (one process), the node:cluster primary or a
 * BroadcastChannel (`--workers N` on one machine), or Redis (`--redis URL`: processes and
 * machines). The Redis client is the user's own `redis` package (node-redis), loaded only when
 * --redis is given, so that no flag never needs it.
 */
import type { Cluster } from "node:cluster";
import { runtimeName } from "../../adapters/auto.ts";
import { broadcastChannelDriver } from "../../adapters/backplane/broadcast-channel.ts";
import { clusterDriver, clusterHub } from "../../adapters/backplane/cluster.ts";
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
export function relayCluster(_cluster: Cluster): void {
  clusterHub({ error: (error) => console.error(`cluster relay: ${(error as Error)?.message ?? error}`) });
}

async function redisDriver(url: string): Promise<BackplaneDriver> {
  throw new BrokerError(`--redis ${url}: not yet`);
}
