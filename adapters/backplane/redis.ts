/**
 * The Redis (and Valkey) backplane driver, on the client the application already has: node-redis
 * 4/5 (`redis`) or `ioredis`, recognised by their shape, never imported. Envelopes travel as
 * binary pub/sub messages (no base64): node-redis in buffer mode, ioredis' `messageBuffer` (and
 * `smessageBuffer` for sharded pub/sub).
 *
 * Bun's built-in `Bun.RedisClient` is not supported: it hands pub/sub messages to listeners as
 * strings decoded from UTF-8, every invalid byte becoming U+FFFD, so an envelope (random origin
 * bytes, binary payloads) does not survive it. Use node-redis or ioredis on Bun.
 */
import type { BackplaneDriver, BackplaneSink, BackplaneStage } from "../shared/backplane.ts";

// Loose on purpose: the libraries' own signatures are generic and overloaded.
// deno-lint-ignore no-explicit-any
type Listener = (...args: any[]) => void;

/** What the driver uses of a node-redis 4/5 client (`createClient()` from "redis"). */
export interface NodeRedisClient {
  readonly isOpen: boolean;
  readonly isReady: boolean;
  connect(): Promise<unknown>;
  duplicate(): NodeRedisClient;
  publish(channel: string, message: never): Promise<unknown>;
  subscribe(channels: string | string[], listener: Listener, bufferMode: true): Promise<unknown>;
  unsubscribe(channels?: string | string[]): Promise<unknown>;
  /** Sharded pub/sub (Redis >= 7; node-redis 4.7 and 5 have it). */
  sPublish?(channel: string, message: never): Promise<unknown>;
  sSubscribe?(channels: string | string[], listener: Listener, bufferMode: true): Promise<unknown>;
  sUnsubscribe?(channels?: string | string[]): Promise<unknown>;
  on(event: string, listener: Listener): unknown;
  off(event: string, listener: Listener): unknown;
  /** node-redis 5 */
  destroy?(): void;
  /** node-redis 4 */
  disconnect?(): Promise<unknown>;
}

/** What the driver uses of an ioredis client (`new Redis()` from "ioredis"). */
export interface IoRedisClient {
  readonly status: string;
  connect(): Promise<unknown>;
  duplicate(): IoRedisClient;
  publish(channel: string, message: never): Promise<unknown>;
  subscribe(...channels: string[]): Promise<unknown>;
  unsubscribe(...channels: string[]): Promise<unknown>;
  /** Sharded pub/sub (Redis >= 7; ioredis 6 has it). */
  spublish?(channel: string, message: never): Promise<unknown>;
  ssubscribe?(...channels: string[]): Promise<unknown>;
  sunsubscribe?(...channels: string[]): Promise<unknown>;
  on(event: string, listener: Listener): unknown;
  off(event: string, listener: Listener): unknown;
  disconnect(): void;
}

export type RedisClient = NodeRedisClient | IoRedisClient;

export interface RedisBackplaneOptions {
  /**
   * The connection to receive on (a connection in subscriber mode can do nothing else). Default:
   * `client.duplicate()`, which the driver then also closes. A subscriber you pass is the
   * driver's to (un)subscribe, and stays yours to close.
   */
  subscriber?: RedisClient;
  /**
   * Sharded pub/sub (SPUBLISH/SSUBSCRIBE, Redis >= 7, also on a server that is not a cluster):
   * needs `channels: "topic"` in the backplane options, so that each topic's channel can live
   * on its own shard.
   */
  sharded?: boolean;
}

/**
 * A backplane driver over Redis pub/sub with `client` (node-redis 4/5 or ioredis): publishes on
 * it, and receives on a second connection. `client` stays the application's: the driver
 * connects it if it is not yet, and never closes it.
 */
export function redisBackplane(client: RedisClient, options: RedisBackplaneOptions = {}): BackplaneDriver {
  return new RedisDriver(client, options);
}

type Bytes = Uint8Array;
const NodeBuffer = (globalThis as { Buffer?: { from(buffer: ArrayBufferLike, offset: number, length: number): Bytes } }).Buffer;

/** One connection, whichever library: ready/lost reported, subscriptions made on demand. */
interface Connection {
  readonly ready: boolean;
  connect(): Promise<void>;
  publish(channel: string, message: Bytes): Promise<void>;
  /** Subscribes (again, after a reconnect: what the library did on its own is undone first). */
  subscribe(channels: string[]): Promise<void>;
  unsubscribe(channels: string[]): Promise<void>;
  close(owned: boolean): Promise<void>;
}

interface ConnectionEvents {
  ready(): void;
  lost(): void;
  error(error: unknown): void;
  message(channel: string, message: Bytes): void;
}

function isIoRedis(client: RedisClient): client is IoRedisClient {
  return typeof (client as IoRedisClient).status === "string";
}

function isNodeRedis(client: RedisClient): client is NodeRedisClient {
  return typeof (client as NodeRedisClient).isOpen === "boolean";
}

function connection(client: RedisClient, events: ConnectionEvents, sharded: boolean): Connection {
  if (isIoRedis(client)) return ioRedisConnection(client, events, sharded);
  if (isNodeRedis(client)) return nodeRedisConnection(client, events, sharded);
  throw new TypeError(
    "redisBackplane() takes a node-redis (createClient) or ioredis client; Bun.RedisClient cannot carry binary pub/sub messages",
  );
}

/** The client's method `name`, bound, or a TypeError saying the client has no sharded pub/sub. */
function method<F>(client: object, name: string): F {
  const f = (client as Record<string, unknown>)[name];
  if (typeof f !== "function") {
    throw new TypeError(`redisBackplane({ sharded: true }) needs a client with ${name}(): a node-redis or ioredis version with sharded pub/sub`);
  }
  return f.bind(client) as F;
}

type Publish = (channel: string, message: never) => Promise<unknown>;
type NodeRedisSubscribe = (channels: string[], listener: Listener, bufferMode: true) => Promise<unknown>;
type NodeRedisUnsubscribe = (channels: string[]) => Promise<unknown>;
type IoRedisSubscribe = (...channels: string[]) => Promise<unknown>;

function nodeRedisConnection(client: NodeRedisClient, events: ConnectionEvents, sharded: boolean): Connection {
  const publish = method<Publish>(client, sharded ? "sPublish" : "publish");
  const subscribe = method<NodeRedisSubscribe>(client, sharded ? "sSubscribe" : "subscribe");
  const unsubscribe = method<NodeRedisUnsubscribe>(client, sharded ? "sUnsubscribe" : "unsubscribe");
  let subscribed = false;
  const decoder = new TextDecoder();
  const onMessage = (message: Bytes, channel: Bytes | string) =>
    events.message(typeof channel === "string" ? channel : decoder.decode(channel), message);
  const listeners: [string, Listener][] = [
    ["ready", () => events.ready()],
    ["reconnecting", () => events.lost()],
    ["end", () => events.lost()],
    ["error", (error: unknown) => events.error(error)],
  ];
  for (const [event, listener] of listeners) client.on(event, listener);
  return {
    get ready() {
      return client.isReady;
    },
    async connect() {
      if (!client.isOpen) await client.connect();
    },
    async publish(channel, message) {
      await publish(channel, toBuffer(message) as never);
    },
    async subscribe(channels) {
      if (channels.length === 0) return;
      // node-redis resubscribes by itself after a reconnect, with our listener: drop that, so
      // the listener is there once and the server's subscriptions are the ones asked for here.
      if (subscribed) await unsubscribe(channels);
      subscribed = true;
      await subscribe(channels, onMessage as never, true);
    },
    async unsubscribe(channels) {
      await unsubscribe(channels);
    },
    async close(owned) {
      for (const [event, listener] of listeners) client.off(event, listener);
      client.on("error", () => {}); // late socket errors of a closing client must not go unhandled
      // At once: a subscriber has nothing to flush, and a graceful close would wait for a broker that may be gone.
      if (!owned || !client.isOpen) return;
      if (client.destroy) client.destroy();
      else await client.disconnect?.();
    },
  };
}

function ioRedisConnection(client: IoRedisClient, events: ConnectionEvents, sharded: boolean): Connection {
  const publish = method<Publish>(client, sharded ? "spublish" : "publish");
  const subscribe = method<IoRedisSubscribe>(client, sharded ? "ssubscribe" : "subscribe");
  const unsubscribe = method<IoRedisSubscribe>(client, sharded ? "sunsubscribe" : "unsubscribe");
  const decoder = new TextDecoder();
  const listeners: [string, Listener][] = [
    ["ready", () => events.ready()],
    ["close", () => events.lost()],
    ["error", (error: unknown) => events.error(error)],
    [sharded ? "smessageBuffer" : "messageBuffer", (channel: Bytes, message: Bytes) => events.message(decoder.decode(channel), message)],
  ];
  for (const [event, listener] of listeners) client.on(event, listener);
  return {
    get ready() {
      return client.status === "ready";
    },
    async connect() {
      if (client.status === "wait") await client.connect();
    },
    async publish(channel, message) {
      await publish(channel, toBuffer(message) as never);
    },
    async subscribe(channels) {
      // SUBSCRIBE to a channel already subscribed is a no-op for Redis: ioredis' own
      // resubscription and ours may both happen.
      if (channels.length !== 0) await subscribe(...channels);
    },
    async unsubscribe(channels) {
      await unsubscribe(...channels);
    },
    async close(owned) {
      for (const [event, listener] of listeners) client.off(event, listener);
      client.on("error", () => {});
      if (owned && client.status !== "end") client.disconnect();
    },
  };
}

/** The clients send bytes only as a Buffer: a view of the same memory. */
function toBuffer(bytes: Bytes): Bytes {
  if (!NodeBuffer) throw new TypeError("the Redis clients need a global Buffer (Node, Deno 2, Bun)");
  return NodeBuffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

class RedisDriver implements BackplaneDriver {
  readonly requiresChannels: "topic" | undefined;
  private readonly sharded: boolean;
  private readonly client: RedisClient;
  private readonly subscriberGiven: boolean;
  private readonly subscriberClient: RedisClient;
  private publisher!: Connection;
  private subscriber!: Connection;
  private sink: BackplaneSink | null = null;
  private readonly channels = new Set<string>();
  /** Subscription commands run one after the other, in the order asked. */
  private chain: Promise<void> = Promise.resolve();
  /** Whether the subscriber connection has (re)subscribed since it last connected. */
  private subscribed = false;
  private up = false;
  private closed = false;
  private started: (() => void) | null = null;

  constructor(client: RedisClient, options: RedisBackplaneOptions) {
    this.client = client;
    this.subscriberGiven = options.subscriber !== undefined;
    this.sharded = options.sharded === true;
    // Sharded channels are per topic: one channel for every topic would sit on a single shard.
    this.requiresChannels = this.sharded ? "topic" : undefined;
    // Shape checked now, so that a wrong client fails where it is passed.
    if (!isIoRedis(client) && !isNodeRedis(client)) connection(client, null as never, false);
    if (this.sharded) {
      for (const c of [client, options.subscriber ?? client]) {
        for (const name of isIoRedis(c) ? ["spublish", "ssubscribe", "sunsubscribe"] : ["sPublish", "sSubscribe", "sUnsubscribe"]) method(c, name);
      }
    }
    this.subscriberClient = options.subscriber ?? client.duplicate();
  }

  start(sink: BackplaneSink): Promise<void> {
    this.sink = sink;
    const started = new Promise<void>((resolve) => (this.started = resolve));
    this.publisher = connection(this.client, {
      ready: () => this.update(),
      lost: () => this.lost("publish"),
      error: (error) => this.report("publish", error),
      message: () => {},
    }, this.sharded);
    this.subscriber = connection(this.subscriberClient, {
      ready: () => this.resubscribe(),
      lost: () => {
        this.subscribed = false;
        this.lost("receive");
      },
      error: (error) => this.report("receive", error),
      message: (channel, message) => {
        if (this.channels.has(channel)) this.sink?.message(channel, message);
      },
    }, this.sharded);
    this.publisher.connect().then(() => this.update(), (error) => this.report("connect", error));
    this.subscriber.connect().then(() => {
      if (this.subscriber.ready && !this.subscribed) this.resubscribe();
    }, (error) => this.report("connect", error));
    return started;
  }

  publish(channel: string, envelope: Uint8Array): Promise<void> {
    if (this.closed) return Promise.reject(new Error("the Redis backplane driver is closed"));
    return this.publisher.publish(channel, envelope);
  }

  subscribe(channel: string): Promise<void> {
    this.channels.add(channel);
    return this.queue(() => (this.subscribed && this.channels.has(channel) ? this.subscriber.subscribe([channel]) : undefined));
  }

  unsubscribe(channel: string): Promise<void> {
    this.channels.delete(channel);
    return this.queue(() => (this.subscribed && !this.channels.has(channel) ? this.subscriber.unsubscribe([channel]) : undefined));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.sink = null;
    await Promise.all([this.publisher?.close(false), this.subscriber?.close(!this.subscriberGiven)]);
  }

  /** Runs a subscription command after those before it; its failure is the caller's. */
  private queue(command: () => Promise<void> | undefined): Promise<void> {
    const run = this.chain.then(() => (this.closed ? undefined : command()));
    this.chain = run.catch(() => {});
    return run;
  }

  /** The subscriber (re)connected: subscribe to every channel ourselves, then we are up. */
  private resubscribe(): void {
    if (this.closed) return;
    this.queue(async () => {
      if (this.subscribed || !this.subscriber.ready) return;
      // In a cluster, one SSUBSCRIBE takes channels of one slot only: one command per channel.
      if (this.sharded) for (const channel of this.channels) await this.subscriber.subscribe([channel]);
      else await this.subscriber.subscribe([...this.channels]);
      this.subscribed = true;
      this.update();
    }).catch((error) => this.report("subscribe", error));
  }

  private update(): void {
    const up = !this.closed && this.publisher.ready && this.subscriber.ready && this.subscribed;
    if (up === this.up) return;
    this.up = up;
    if (up) {
      this.sink?.up();
      this.started?.();
      this.started = null;
    } else this.sink?.down();
  }

  private lost(stage: BackplaneStage): void {
    if (this.closed) return;
    if (this.up) {
      this.report(stage, new Error(`the ${stage === "receive" ? "subscriber" : "publisher"}'s connection to Redis was lost (a subscriber too slow for client-output-buffer-limit pubsub is cut off too)`));
    }
    this.update();
  }

  private report(stage: BackplaneStage, error: unknown): void {
    if (!this.closed) this.sink?.error(stage, error);
  }
}
