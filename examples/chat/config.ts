/**
 * The chat server's settings: flags first, then environment variables, then defaults.
 *
 *   --host 0.0.0.0 --port 8080 --history 50 ...   or   HOST=0.0.0.0 PORT=8080 CHAT_HISTORY=50 ...
 */

export interface Limits {
  /** Largest WebSocket message accepted, in bytes; bigger ones close the socket with 1009. */
  maxMessageSize: number;
  /** Longest chat message, in characters. */
  maxTextLength: number;
  /** Messages a room keeps and replays to a newcomer. */
  history: number;
  /** Chat messages (and other JSON requests) per second per socket; bursts of twice as many. */
  chatRate: number;
  /** Stroke messages per second per socket; bursts of twice as many. */
  drawRate: number;
  /** Bytes of strokes a room's board keeps; beyond, the oldest strokes are forgotten. */
  maxBoardBytes: number;
  /** Open WebSockets, in all. */
  maxClients: number;
  /** Open WebSockets from one address. */
  maxClientsPerAddress: number;
  /** Rooms in all. */
  maxRooms: number;
  /** Milliseconds a new socket has to join a room. */
  joinTimeout: number;
  /** Offer permessage-deflate (RFC 7692) to browsers. */
  deflate: boolean;
}

export interface Config {
  host: string;
  port: number;
  /** Server processes (or workers) sharing the port; 1 is one process with no broker. */
  workers: number;
  /** A Redis (or Valkey) URL connecting this server's processes to others', "" for none. */
  redis: string;
  limits: Limits;
}

interface Setting {
  flag: string;
  env: string;
  help: string;
  default: number | string | boolean;
  min?: number;
  max?: number;
}

const SETTINGS: Record<string, Setting> = {
  host: { flag: "host", env: "HOST", default: "127.0.0.1", help: "address to listen on (0.0.0.0 for every interface)" },
  port: { flag: "port", env: "PORT", default: 8080, min: 0, max: 65535, help: "port to listen on (0: any free port)" },
  workers: { flag: "workers", env: "CHAT_WORKERS", default: 1, min: 1, max: 256, help: "processes sharing the port (1: one process, no broker)" },
  redis: { flag: "redis", env: "CHAT_REDIS", default: "", help: "redis://host:port connecting processes and machines" },
  maxMessageSize: { flag: "max-message", env: "CHAT_MAX_MESSAGE", default: 16 * 1024, min: 1024, max: 64 * 1024 * 1024, help: "largest WebSocket message, bytes" },
  maxTextLength: { flag: "max-text", env: "CHAT_MAX_TEXT", default: 500, min: 1, max: 10_000, help: "longest chat message, characters" },
  history: { flag: "history", env: "CHAT_HISTORY", default: 50, min: 0, max: 10_000, help: "messages replayed to a newcomer" },
  chatRate: { flag: "chat-rate", env: "CHAT_RATE", default: 5, min: 0.1, max: 10_000, help: "chat messages per second per socket" },
  drawRate: { flag: "draw-rate", env: "CHAT_DRAW_RATE", default: 60, min: 1, max: 100_000, help: "stroke messages per second per socket" },
  maxBoardBytes: { flag: "max-board", env: "CHAT_MAX_BOARD", default: 2 * 1024 * 1024, min: 1024, max: 256 * 1024 * 1024, help: "bytes of strokes kept per room" },
  maxClients: { flag: "max-clients", env: "CHAT_MAX_CLIENTS", default: 500, min: 1, max: 1_000_000, help: "open WebSockets in all" },
  maxClientsPerAddress: { flag: "max-per-address", env: "CHAT_MAX_PER_ADDRESS", default: 50, min: 1, max: 1_000_000, help: "open WebSockets per client address" },
  maxRooms: { flag: "max-rooms", env: "CHAT_MAX_ROOMS", default: 100, min: 1, max: 1_000_000, help: "rooms in all" },
  joinTimeout: { flag: "join-timeout", env: "CHAT_JOIN_TIMEOUT", default: 10_000, min: 100, max: 3_600_000, help: "milliseconds a new socket has to join a room" },
  deflate: { flag: "deflate", env: "CHAT_DEFLATE", default: true, help: "permessage-deflate compression: on or off" },
};

export class ConfigError extends Error {}

/** The options, then `notes` (what --workers uses on this runtime). */
export function usage(program: string, notes: string[] = []): string {
  const lines = [`usage: ${program} [options]`, "", "options (flag, environment variable, default):"];
  for (const s of Object.values(SETTINGS)) {
    const shown = typeof s.default === "boolean" ? (s.default ? "on" : "off") : s.default === "" ? "none" : String(s.default);
    lines.push(`  --${s.flag.padEnd(16)} ${s.env.padEnd(21)} ${shown.padEnd(10)} ${s.help}`);
  }
  lines.push(`  --help`);
  if (notes.length !== 0) lines.push("", ...notes);
  return lines.join("\n");
}

/** Reads `--name value` / `--name=value` flags over `env`; throws ConfigError on anything wrong. */
export function parseConfig(argv: readonly string[], env: Record<string, string | undefined>): Config {
  const flags = new Map<string, string>();
  const byFlag = new Map(Object.entries(SETTINGS).map(([key, s]) => [s.flag, key]));
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const m = /^--([a-z-]+)(?:=(.*))?$/s.exec(arg);
    if (!m || !byFlag.has(m[1])) throw new ConfigError(`unknown option: ${arg}`);
    let value = m[2];
    if (value === undefined) {
      value = argv[++i];
      if (value === undefined) throw new ConfigError(`--${m[1]} needs a value`);
    }
    flags.set(byFlag.get(m[1])!, value);
  }
  const values: Record<string, number | string | boolean> = {};
  for (const [key, s] of Object.entries(SETTINGS)) {
    const fromFlag = flags.get(key);
    const fromEnv = env[s.env];
    const raw = fromFlag ?? (fromEnv !== undefined && fromEnv !== "" ? fromEnv : undefined);
    const source = fromFlag !== undefined ? `--${s.flag}` : s.env;
    if (raw === undefined) {
      values[key] = s.default;
    } else if (typeof s.default === "boolean") {
      const v = raw.trim().toLowerCase();
      if (!["on", "off", "true", "false", "1", "0", "yes", "no"].includes(v)) throw new ConfigError(`${source} must be on or off, not ${JSON.stringify(raw)}`);
      values[key] = ["on", "true", "1", "yes"].includes(v);
    } else if (typeof s.default === "string") {
      if (raw.trim() === "") throw new ConfigError(`${source} is empty`);
      values[key] = raw.trim();
    } else {
      const n = Number(raw);
      if (raw.trim() === "" || !Number.isFinite(n) || n < s.min! || n > s.max!) {
        throw new ConfigError(`${source} must be a number from ${s.min} to ${s.max}, not ${JSON.stringify(raw)}`);
      }
      if ((key === "port" || key === "workers") && !Number.isInteger(n)) throw new ConfigError(`${source} must be a whole number`);
      values[key] = n;
    }
  }
  if (values.redis !== "" && !/^rediss?:\/\/[^\s]+$/.test(values.redis as string)) {
    throw new ConfigError(`${flags.has("redis") ? "--redis" : "CHAT_REDIS"} must be a redis:// or rediss:// URL, not ${JSON.stringify(values.redis)}`);
  }
  const { host, port, workers, redis, ...limits } = values;
  return { host: host as string, port: port as number, workers: workers as number, redis: redis as string, limits: limits as unknown as Limits };
}
