/**
 * A connection's options, as given and as resolved once at construction, and `ConnectionSettings`:
 * the first layer of a connection, which holds them.
 *
 * A connection is one object built in layers, one file each, each using only the layers below it
 * (a hub's parts as separate objects would each hold references to the others and closures
 * over them, several times the memory of the state itself, for every connection a server holds):
 * settings (here) → events.ts → closing.ts → timers.ts → writer.ts → extension-pipeline.ts →
 * sender.ts → message.ts → connection.ts → server-connection.ts / client-connection.ts.
 * Calls upwards are abstract methods that connection.ts implements.
 */
import type { Connection } from "./connection.ts";
import { withDefaults } from "./defaults.ts";
import { WebSocketError } from "./errors.ts";
import type { HttpLimits } from "./http.ts";
import { FrameTracer, type TraceHook } from "./trace.ts";
import { PORTABLE_TUNING, type Tuning, checkTuning } from "./tuning.ts";

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
  /**
   * Options resolved once by `connectionConfig()`, for many connections (a server's): every
   * option above but `now` is then taken from it, and the connections share it.
   */
  config?: ConnectionConfig;
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

/** A connection's options resolved: every default filled in, frozen, to be shared by any number of connections. */
export interface ConnectionConfig extends Readonly<Required<Omit<ConnectionOptions, "now" | "config" | "httpLimits" | "trace">>> {
  readonly httpLimits: Partial<HttpLimits> | undefined;
  readonly trace: TraceHook | undefined;
}

/** Resolves options once (`ConnectionOptions.config`); throws a `WebSocketError` on a bad one. */
export function connectionConfig(options: Omit<ConnectionOptions, "now" | "config">): ConnectionConfig {
  const tuning = options.tuning ?? PORTABLE_TUNING;
  if (tuning !== PORTABLE_TUNING) checkTuning(tuning);
  const config: ConnectionConfig = {
    ...withDefaults(DEFAULTS, options),
    random: options.random ?? defaultRandom,
    onWake: options.onWake ?? NO_WAKE,
    tuning,
    httpLimits: options.httpLimits,
    trace: options.trace,
  };
  if (!(config.fragmentSize >= 1)) {
    throw new WebSocketError("ERR_INVALID_ARGUMENT", "fragmentSize must be at least 1");
  }
  return Object.freeze(config);
}

function defaultRandom(target: Uint8Array): void {
  crypto.getRandomValues(target);
}

const NO_WAKE = (): void => {};

/** The first layer of a connection: its role and its options, resolved once. */
export class ConnectionSettings {
  protected readonly isClient: boolean;
  protected readonly options: ConnectionConfig;
  /** Set while a trace hook is: it records frames and state changes, and stands between the frame parser and the message assembler. */
  protected readonly tracer: FrameTracer | null;

  constructor(isClient: boolean, options: ConnectionOptions) {
    this.isClient = isClient;
    const config = (this.options = options.config ?? connectionConfig(options));
    const hook = config.trace;
    this.tracer = hook === undefined ? null : new FrameTracer((record) => hook(record, this as unknown as Connection));
  }

  /** The speed choices this connection was created with (`ConnectionOptions.tuning`). */
  get tuning(): Tuning {
    return this.options.tuning;
  }
}
