/** A connection's options, as given and as resolved once at construction. */
import type { Connection } from "./connection.ts";
import { WebSocketError } from "./errors.ts";
import type { HttpLimits } from "./http.ts";
import type { TraceHook } from "./trace.ts";
import type { Tuning } from "./tuning.ts";

export interface ConnectionOptions {
  /** Largest message accepted, in bytes, after extensions (1009 beyond). Default 64 MiB. */
  maxMessageSize?: number;
  /** Most frames one message may be split into (1009 beyond). Default 100,000. */
  maxFragments?: number;
  /** Messages that grow beyond this many bytes arrive as `fragment` events. Default: never. */
  streamThreshold?: number;
  /** Answer pings with pongs (RFC 6455 §5.5.2). Default true. */
  autoPong?: boolean;
  /** Outgoing messages are split into frames of at most this many payload bytes. Default: never. */
  fragmentSize?: number;
  /** Milliseconds for the opening handshake; 0 for none. Default 10,000. */
  handshakeTimeout?: number;
  /** Milliseconds to wait for the peer's close frame, and for a client the server's TCP close. Default 10,000. */
  closeTimeout?: number;
  /** Close with 1001 after this many milliseconds without a frame either way; 0 for never. Default 0. */
  idleTimeout?: number;
  /** Ping after this many milliseconds without receiving anything; 0 for never. Default 0. */
  keepaliveInterval?: number;
  /** Fail with 1011 when nothing arrives this long after a keepalive ping. Default 10,000. */
  pongTimeout?: number;
  /** The time now, in milliseconds, on any clock the owner keeps using for `tick()`. Default 0. */
  now?: number;
  /** Fills a buffer with random bytes (masking and handshake keys). Default `crypto.getRandomValues`. */
  random?: (target: Uint8Array) => void;
  /** Called, with the connection, when asynchronous extension work has produced events or output to poll. */
  onWake?: (connection: Connection) => void;
  /** Limits on the handshake's HTTP head. */
  httpLimits?: Partial<HttpLimits>;
  /**
   * Speed choices for the JavaScript engine this runs on (core/tuning.ts), read once here.
   * Default `PORTABLE_TUNING`; each runtime adapter passes its engine's.
   */
  tuning?: Tuning;
  /**
   * Receives a record of each frame read or written and of each ready-state change, as it
   * happens (core/trace.ts); for seeing protocol problems in production. Default: none.
   */
  trace?: TraceHook;
}

export interface SendOptions {
  /** False: more parts of this message follow (a fragmented message; extensions are not applied). */
  fin?: boolean;
  /** False: do not let extensions (compression) transform this message. */
  compress?: boolean;
}

const DEFAULTS = {
  maxMessageSize: 64 * 1024 * 1024,
  maxFragments: 100_000,
  streamThreshold: Infinity,
  autoPong: true,
  fragmentSize: Infinity,
  handshakeTimeout: 10_000,
  closeTimeout: 10_000,
  idleTimeout: 0,
  keepaliveInterval: 0,
  pongTimeout: 10_000,
};

export type ResolvedOptions = Required<Omit<ConnectionOptions, "onWake" | "httpLimits" | "now" | "tuning" | "trace">>;

export function resolveOptions(options: ConnectionOptions): ResolvedOptions {
  const resolved: ResolvedOptions = {
    maxMessageSize: options.maxMessageSize ?? DEFAULTS.maxMessageSize,
    maxFragments: options.maxFragments ?? DEFAULTS.maxFragments,
    streamThreshold: options.streamThreshold ?? DEFAULTS.streamThreshold,
    autoPong: options.autoPong ?? DEFAULTS.autoPong,
    fragmentSize: options.fragmentSize ?? DEFAULTS.fragmentSize,
    handshakeTimeout: options.handshakeTimeout ?? DEFAULTS.handshakeTimeout,
    closeTimeout: options.closeTimeout ?? DEFAULTS.closeTimeout,
    idleTimeout: options.idleTimeout ?? DEFAULTS.idleTimeout,
    keepaliveInterval: options.keepaliveInterval ?? DEFAULTS.keepaliveInterval,
    pongTimeout: options.pongTimeout ?? DEFAULTS.pongTimeout,
    random: options.random ?? defaultRandom,
  };
  if (!(resolved.fragmentSize >= 1)) {
    throw new WebSocketError("ERR_INVALID_ARGUMENT", "fragmentSize must be at least 1");
  }
  return Object.freeze(resolved);
}


function defaultRandom(target: Uint8Array): void {
  crypto.getRandomValues(target);
}
