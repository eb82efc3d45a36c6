/**
 * Backplane drivers: `publish` across processes. Pass one as `backplane: { driver }` in the
 * server's options; see the README's "Scaling out".
 */
export { MemoryHub, memoryBackplane } from "./memory.ts";
export { type IoRedisClient, type NodeRedisClient, type RedisBackplaneOptions, redisBackplane, type RedisClient } from "./redis.ts";
export {
  Backplane,
  type BackplaneDriver,
  type BackplaneOptions,
  type BackplaneSink,
  type BackplaneStage,
  type BackplaneStats,
  decodeEnvelope,
  encodeEnvelope,
  type Envelope,
  ENVELOPE_VERSION,
} from "../shared/backplane.ts";
