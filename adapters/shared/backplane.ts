/**
 * The backplane: how `publish` reaches subscribers in other processes. The server delivers to
 * its own subscribers first; a driver carries one envelope per publish to the other processes,
 * which deliver it to theirs and never relay it further.
 */
import { utf8Length } from "./data.ts";

/** Where a driver reports what it receives and how its connection to the broker goes. */
export interface BackplaneSink {
  /** An envelope arrived on `channel` (bytes as published, any process's, our own included). */
  message(channel: string, envelope: Uint8Array): void;
  /** The broker connection failed at `stage`; the driver keeps retrying on its own. */
  error(stage: BackplaneStage, error: unknown): void;
  /** Subscribed and able to publish (first time, and again after each reconnect). */
  up(): void;
  /** Lost the broker: what is published until the next `up()` may not be delivered. */
  down(): void;
}

/** Where a broker error happened. */
export type BackplaneStage = "connect" | "subscribe" | "publish" | "receive" | "decode" | "close";

/**
 * Carries envelopes between processes: Redis, Node cluster IPC, BroadcastChannel, in memory.
 * A driver moves bytes only; envelopes, sequence numbers and gaps are the backplane's.
 */
export interface BackplaneDriver {
  /** Set when the driver works only with one broker channel per topic (`channels: "topic"`). */
  readonly requiresChannels?: "topic";
  /** Connects and from then on reports to `sink`; resolves once the first `up()` is reported. */
  start(sink: BackplaneSink): Promise<void>;
  /** Sends one envelope on `channel`; rejects (never throws synchronously) when the broker refused it. */
  publish(channel: string, envelope: Uint8Array): Promise<void>;
  /** Starts receiving `channel` (again after every reconnect, without being asked). */
  subscribe(channel: string): Promise<void>;
  unsubscribe(channel: string): Promise<void>;
  /** Stops; resolves when nothing of the driver's is left open. */
  close(): Promise<void>;
}

// ---- the envelope ---------------------------------------------------------------------------

/**
 * Envelope layout, version 2 (all integers big-endian):
 * version (1 byte) · flags (1 byte: bit 0 binary, other bits 0) · origin (16 bytes) ·
 * run (8 bytes) · sequence (8 bytes) · topic length (4 bytes) · topic (UTF-8) · payload (the rest).
 * Run and sequence are integers from 0 to 2^53 - 1.
 */
export const ENVELOPE_VERSION = 2;
const FLAG_BINARY = 0x01;
const ORIGIN_BYTES = 16;
const HEADER_BYTES = 2 + ORIGIN_BYTES + 8 + 8 + 4;
const TWO_32 = 2 ** 32;

/** One publish as it travels between processes. */
export interface Envelope {
  /** The publishing process's id (16 bytes). */
  origin: Uint8Array;
  /**
   * Which count of the origin's on this channel the sequence belongs to: a new run starts at 1
   * after the origin forgot the channel's counter (higher runs are later).
   */
  run: number;
  /** 1 for the origin's first envelope on a channel in this run, then one more for each. */
  sequence: number;
  topic: string;
  binary: boolean;
  /** The message: UTF-8 for text. A view into the envelope's bytes. */
  payload: Uint8Array;
}

const encoder = new TextEncoder();
const strictDecoder = new TextDecoder("utf-8", { fatal: true });

function writeUint53(view: DataView, at: number, value: number, what: string): void {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`a ${what} is an integer from 0 to 2^53 - 1`);
  view.setUint32(at, Math.floor(value / TWO_32));
  view.setUint32(at + 4, value >>> 0);
}

function readUint53(view: DataView, at: number, what: string): number {
  const high = view.getUint32(at);
  if (high >= 2 ** 21) throw new RangeError(`envelope ${what} above 2^53 - 1`);
  return high * TWO_32 + view.getUint32(at + 4);
}

/** Encodes one envelope; a string payload is encoded as UTF-8 and flagged as text. */
export function encodeEnvelope(
  origin: Uint8Array,
  run: number,
  sequence: number,
  topic: string,
  payload: string | Uint8Array,
  binary = typeof payload !== "string",
): Uint8Array {
  if (origin.length !== ORIGIN_BYTES) throw new RangeError(`an origin is ${ORIGIN_BYTES} bytes`);
  const topicBytes = encoder.encode(topic);
  const payloadLength = typeof payload === "string" ? utf8Length(payload) : payload.length;
  const out = new Uint8Array(HEADER_BYTES + topicBytes.length + payloadLength);
  const view = new DataView(out.buffer);
  writeUint53(view, 2 + ORIGIN_BYTES, run, "run");
  writeUint53(view, 10 + ORIGIN_BYTES, sequence, "sequence number");
  out[0] = ENVELOPE_VERSION;
  out[1] = binary ? FLAG_BINARY : 0;
  out.set(origin, 2);
  view.setUint32(18 + ORIGIN_BYTES, topicBytes.length);
  out.set(topicBytes, HEADER_BYTES);
  const at = HEADER_BYTES + topicBytes.length;
  if (typeof payload === "string") encoder.encodeInto(payload, out.subarray(at));
  else out.set(payload, at);
  return out;
}

/** Decodes an envelope without copying its payload; throws a RangeError on anything malformed. */
export function decodeEnvelope(bytes: Uint8Array): Envelope {
  if (bytes.length < HEADER_BYTES) throw new RangeError(`an envelope is at least ${HEADER_BYTES} bytes, got ${bytes.length}`);
  if (bytes[0] !== ENVELOPE_VERSION) throw new RangeError(`unknown envelope version ${bytes[0]}`);
  const flags = bytes[1]!;
  if ((flags & ~FLAG_BINARY) !== 0) throw new RangeError(`unknown envelope flags 0x${flags.toString(16)}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const run = readUint53(view, 2 + ORIGIN_BYTES, "run");
  const sequence = readUint53(view, 10 + ORIGIN_BYTES, "sequence number");
  const topicLength = view.getUint32(18 + ORIGIN_BYTES);
  if (topicLength > bytes.length - HEADER_BYTES) throw new RangeError("envelope topic runs past its end");
  let topic: string;
  try {
    topic = strictDecoder.decode(bytes.subarray(HEADER_BYTES, HEADER_BYTES + topicLength));
  } catch {
    throw new RangeError("envelope topic is not valid UTF-8");
  }
  return {
    origin: bytes.subarray(2, 2 + ORIGIN_BYTES),
    run,
    sequence,
    topic,
    binary: (flags & FLAG_BINARY) !== 0,
    payload: bytes.subarray(HEADER_BYTES + topicLength),
  };
}

function hex(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i++) s += (bytes[i]! < 16 ? "0" : "") + bytes[i]!.toString(16);
  return s;
}

// ---- the backplane --------------------------------------------------------------------------

/** `ServerOptions.backplane`: how this server's publishes reach other processes. */
export interface BackplaneOptions {
  /** Carries envelopes: `redisBackplane(...)`, `memoryBackplane(...)` from "anyws/backplane", or your own. */
  driver: BackplaneDriver;
  /** Broker channel name, or prefix of the per-topic channel names. Default "anyws". */
  prefix?: string;
  /**
   * "prefix" (default): every topic on one channel, `prefix`. "topic": one channel per topic,
   * `${prefix}:${topic}`, subscribed while a local socket holds the topic (for apps with many
   * topics, most of them held in few processes).
   */
  channels?: "prefix" | "topic";
  /**
   * Bytes of envelopes published but not yet accepted by the broker (waiting while the driver
   * is down, or handed to it and unanswered). A publish beyond it is not relayed: it is counted
   * as dropped and reported. Default 16 MiB.
   */
  maxQueuedBytes?: number;
  /**
   * Milliseconds after which an unused sequence counter (one per channel this process publishes
   * on) and what is known of another process on a channel are forgotten. Default 600000 (10 min).
   */
  forgetAfter?: number;
  /**
   * At most this many sequence counters, and this many other processes known per channel; beyond
   * it the least recently used is forgotten. Default 10000.
   */
  maxTracked?: number;
  /**
   * Messages from `origin` numbered `from` to `to` (inclusive) never arrived here: the local
   * subscribers missed them. `topic` is the channel's topic in "topic" mode. Numbers count from 1
   * again when the origin starts a new run on the channel (after it forgot its counter).
   */
  gap?(origin: string, from: number, to: number, topic?: string): void;
  /**
   * Something failed at `stage`; the backplane goes on. "queue": a publish was dropped because
   * the relay queue was full (reported once per run of drops). Without a handler it is logged,
   * each distinct error once until the driver is up again.
   */
  error?(stage: BackplaneStage | "queue", error: unknown): void;
  /** The driver is connected and subscribed (first time, and after each reconnect). */
  up?(): void;
  /** The driver lost its broker: publishes wait in the relay queue until it is back. */
  down?(): void;
}

/** A snapshot of the backplane's counters. */
export interface BackplaneStats {
  /** This process's id in envelopes (32 hex digits). */
  origin: string;
  /** Whether the driver is connected. */
  up: boolean;
  /** Envelopes the broker accepted. */
  relayed: number;
  /** Envelopes received from other processes (and handed to whichever local sockets hold their topic). */
  received: number;
  /** Publishes not relayed: relay queue full, broker refused, or closed with them queued. */
  dropped: number;
  /** Gaps reported, and the messages they cover. */
  gaps: number;
  missed: number;
  /** Bytes published and not yet accepted by the broker. */
  queuedBytes: number;
  /** Sequence counters held (channels published on and not forgotten). */
  counters: number;
  /** Other processes known on subscribed channels (one per origin and channel, not forgotten). */
  peers: number;
  lastError: { stage: BackplaneStage | "queue"; error: unknown; time: number } | null;
}

interface Pending {
  channel: string;
  envelope: Uint8Array;
}

/** A publisher's count on one channel. */
interface Counter extends Used {
  run: number;
  next: number;
}

/** The last envelope received from one origin on one channel. */
interface Heard extends Used {
  run: number;
  sequence: number;
}

interface Used {
  /** When last used (the clock's milliseconds). */
  used: number;
  /** When last moved to the end of its map: maps are kept in this order, oldest first. */
  order: number;
}

/**
 * Entries forgotten once unused for `idle` ms, or, beyond `cap`, oldest first. An entry moves to
 * the end of the map when used at most once per idle/8 ms, so a busy entry costs no map writes,
 * and the map stays ordered by `order` for sweeps and eviction to start at the front.
 */
class Recent<V extends Used> {
  readonly map = new Map<string, V>();
  private readonly cap: number;
  private readonly idle: number;

  constructor(cap: number, idle: number) {
    this.cap = cap;
    this.idle = idle;
  }

  get(key: string, now: number): V | undefined {
    const entry = this.map.get(key);
    if (entry === undefined) return undefined;
    entry.used = now;
    if (now - entry.order > this.idle / 8) {
      this.map.delete(key);
      this.map.set(key, entry);
      entry.order = now;
    }
    return entry;
  }

  add(key: string, entry: V): void {
    if (this.map.size >= this.cap) this.map.delete(this.map.keys().next().value!);
    this.map.set(key, entry);
  }

  sweep(now: number): void {
    for (const [key, entry] of this.map) {
      if (now - entry.order < this.idle) return; // the rest moved more recently still
      if (now - entry.used >= this.idle) this.map.delete(key);
    }
  }
}

/**
 * The server's side of the backplane: numbers and encodes local publishes, relays them through
 * the driver (queued, bounded, while it is down), and decodes what other processes publish.
 */
export class Backplane {
  /** This process's id (32 hex digits). */
  readonly origin: string;
  /** Resolves at the driver's first `up()`. */
  readonly ready: Promise<void>;
  private readonly originBytes: Uint8Array;
  private readonly driver: BackplaneDriver;
  private readonly options: BackplaneOptions;
  private readonly deliver: (topic: string, payload: Uint8Array, binary: boolean) => void;
  private readonly prefix: string;
  private readonly perTopic: boolean;
  private readonly maxQueuedBytes: number;
  /**
   * Sequence counter per channel, forgotten when unused: the next publish on that channel starts
   * a new run, which receivers tell from the old one by its number, so a forgotten counter never
   * shows as a false gap nor hides a loss in the new run.
   */
  private readonly sequences: Recent<Counter>;
  /** Runs started by this process (the next counter's run is one more). */
  private runs = 0;
  /**
   * Last envelope heard per subscribed channel and origin (an origin is a server's lifetime: a
   * restarted process is a new one). A channel's entry exists exactly while it is subscribed, so
   * a resubscription starts counting afresh; origins silent for long are forgotten.
   */
  private readonly seen = new Map<string, Recent<Heard>>();
  private readonly forgetAfter: number;
  private readonly maxTracked: number;
  private readonly now: () => number;
  private lastSweep: number;
  private queue: Pending[] = [];
  private queueHead = 0;
  private pendingBytes = 0;
  private isUp = false;
  private closed = false;
  private dropping = false;
  /** Errors logged since the driver was last up (without an error handler). */
  private readonly logged = new Set<string>();
  private resolveReady!: () => void;
  private counters = { relayed: 0, received: 0, dropped: 0, gaps: 0, missed: 0 };
  private lastError: BackplaneStats["lastError"] = null;

  /** `now` is the clock (milliseconds) that tells what went unused for `forgetAfter`. */
  constructor(
    options: BackplaneOptions,
    deliver: (topic: string, payload: Uint8Array, binary: boolean) => void,
    now: () => number = () => performance.now(),
  ) {
    this.options = options;
    this.driver = options.driver;
    this.deliver = deliver;
    this.prefix = options.prefix ?? "anyws";
    this.perTopic = options.channels === "topic";
    this.maxQueuedBytes = options.maxQueuedBytes ?? 16 * 1024 * 1024;
    this.forgetAfter = options.forgetAfter ?? 600_000;
    this.maxTracked = options.maxTracked ?? 10_000;
    if (!(this.forgetAfter > 0) || !(this.maxTracked >= 1)) throw new RangeError("backplane forgetAfter and maxTracked are positive");
    this.now = now;
    this.lastSweep = now();
    this.sequences = new Recent(this.maxTracked, this.forgetAfter);
    if (options.driver.requiresChannels === "topic" && !this.perTopic) {
      throw new TypeError('this backplane driver needs channels: "topic" in the backplane options (one broker channel per topic)');
    }
    this.originBytes = crypto.getRandomValues(new Uint8Array(ORIGIN_BYTES));
    this.origin = hex(this.originBytes);
    this.ready = new Promise((resolve) => (this.resolveReady = resolve));
    const sink: BackplaneSink = {
      message: (channel, envelope) => this.receive(channel, envelope),
      error: (stage, error) => this.fail(stage, error),
      up: () => this.onUp(),
      down: () => this.onDown(),
    };
    this.attempt("connect", () => this.driver.start(sink));
    // Before start() resolves: a driver's first up() covers the channels asked for so far.
    if (!this.perTopic) {
      this.seen.set(this.prefix, new Recent(this.maxTracked, this.forgetAfter));
      this.attempt("subscribe", () => this.driver.subscribe(this.prefix));
    }
  }

  /** Relays a local publish to the other processes. Never throws for the broker's state. */
  publish(topic: string, data: string | Uint8Array, binary = typeof data !== "string"): void {
    if (this.closed) return;
    const channel = this.perTopic ? `${this.prefix}:${topic}` : this.prefix;
    const now = this.tick();
    let counter = this.sequences.get(channel, now);
    if (counter === undefined) this.sequences.add(channel, counter = { run: ++this.runs, next: 1, used: now, order: now });
    const envelope = encodeEnvelope(this.originBytes, counter.run, counter.next++, topic, data, binary);
    if (this.pendingBytes + envelope.length > this.maxQueuedBytes) {
      // Its number is spent: receivers report it as missed.
      this.counters.dropped++;
      if (!this.dropping) {
        this.dropping = true;
        this.fail("queue", new RangeError(`backplane relay queue full (${this.pendingBytes} bytes): messages are dropped`));
      }
      return;
    }
    this.dropping = false;
    this.pendingBytes += envelope.length;
    if (this.isUp && this.queueHead === this.queue.length) this.send(channel, envelope);
    else this.queue.push({ channel, envelope });
  }

  /** A local socket is the first to hold `topic` (only "topic" channels subscribe per topic). */
  topicAdded(topic: string): void {
    if (!this.perTopic || this.closed) return;
    const channel = `${this.prefix}:${topic}`;
    this.seen.set(channel, new Recent(this.maxTracked, this.forgetAfter));
    this.attempt("subscribe", () => this.driver.subscribe(channel));
  }

  /** The last local socket holding `topic` let go of it. */
  topicRemoved(topic: string): void {
    if (!this.perTopic || this.closed) return;
    const channel = `${this.prefix}:${topic}`;
    this.seen.delete(channel);
    this.attempt("subscribe", () => this.driver.unsubscribe(channel));
  }

  stats(): BackplaneStats {
    let peers = 0;
    for (const origins of this.seen.values()) peers += origins.map.size;
    return {
      origin: this.origin,
      up: this.isUp,
      ...this.counters,
      queuedBytes: this.pendingBytes,
      counters: this.sequences.map.size,
      peers,
      lastError: this.lastError,
    };
  }

  /** Stops relaying and closes the driver; what is still queued is dropped. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.isUp = false;
    this.counters.dropped += this.queue.length - this.queueHead;
    for (let i = this.queueHead; i < this.queue.length; i++) this.pendingBytes -= this.queue[i]!.envelope.length;
    this.queue = [];
    this.queueHead = 0;
    try {
      await this.driver.close();
    } catch (error) {
      this.fail("close", error);
    }
  }

  private send(channel: string, envelope: Uint8Array): void {
    const size = envelope.length;
    let sent: Promise<void>;
    try {
      sent = this.driver.publish(channel, envelope);
    } catch (error) {
      sent = Promise.reject(error);
    }
    sent.then(
      () => {
        this.pendingBytes -= size;
        this.counters.relayed++;
      },
      (error) => {
        this.pendingBytes -= size;
        this.counters.dropped++;
        this.fail("publish", error);
      },
    );
  }

  private receive(channel: string, bytes: Uint8Array): void {
    if (this.closed) return;
    let envelope: Envelope;
    try {
      envelope = decodeEnvelope(bytes);
    } catch (error) {
      this.fail("decode", error);
      return;
    }
    const origin = hex(envelope.origin);
    if (origin === this.origin) return; // our own, delivered locally already
    const origins = this.seen.get(channel);
    if (origins === undefined) return; // a channel no longer subscribed (a driver may let a late one through)
    const now = this.tick();
    const { run, sequence } = envelope;
    const heard = origins.get(origin, now);
    if (heard === undefined) origins.add(origin, { run, sequence, used: now, order: now });
    else {
      // A later run restarts the numbers: what it numbered before this one never arrived.
      const last = run === heard.run ? heard.sequence : run > heard.run ? 0 : Infinity;
      if (sequence <= last) return; // already delivered (or of a run already over): never twice
      if (sequence > last + 1) this.gap(origin, last + 1, sequence - 1, envelope.topic);
      heard.run = run;
      heard.sequence = sequence;
    }
    this.counters.received++;
    try {
      this.deliver(envelope.topic, envelope.payload, envelope.binary);
    } catch (error) {
      this.fail("receive", error);
    }
  }

  private gap(origin: string, from: number, to: number, topic: string): void {
    this.counters.gaps++;
    this.counters.missed += to - from + 1;
    const handler = this.options.gap;
    if (!handler) return;
    try {
      handler(origin, from, to, this.perTopic ? topic : undefined);
    } catch (error) {
      console.error("anyws: the backplane's gap handler threw:", error);
    }
  }

  /** The clock, and at most every forgetAfter/2 ms a sweep of what went unused for forgetAfter. */
  private tick(): number {
    const now = this.now();
    if (now - this.lastSweep >= this.forgetAfter / 2) {
      this.lastSweep = now;
      this.sequences.sweep(now);
      for (const origins of this.seen.values()) origins.sweep(now);
    }
    return now;
  }

  private onUp(): void {
    if (this.closed) return;
    this.isUp = true;
    this.logged.clear();
    const queue = this.queue;
    for (let i = this.queueHead; i < queue.length; i++) this.send(queue[i]!.channel, queue[i]!.envelope);
    this.queue = [];
    this.queueHead = 0;
    this.resolveReady();
    this.notify(this.options.up);
  }

  private onDown(): void {
    if (this.closed || !this.isUp) return;
    this.isUp = false;
    this.notify(this.options.down);
  }

  private notify(handler: (() => void) | undefined): void {
    if (!handler) return;
    try {
      handler();
    } catch (error) {
      console.error("anyws: a backplane handler threw:", error);
    }
  }

  /** Runs a driver call whose failure is reported, never thrown. */
  private attempt(stage: BackplaneStage, call: () => Promise<void>): void {
    let done: Promise<void>;
    try {
      done = call();
    } catch (error) {
      done = Promise.reject(error);
    }
    done.catch((error) => this.fail(stage, error));
  }

  private fail(stage: BackplaneStage | "queue", error: unknown): void {
    if (this.closed && stage !== "close") return;
    this.lastError = { stage, error, time: Date.now() };
    const handler = this.options.error;
    if (handler) {
      try {
        handler(stage, error);
        return;
      } catch (inner) {
        error = inner;
      }
    }
    // A broker that stays away fails the same ways at every retry: log each once per outage.
    const text = `${stage}: ${error instanceof Error ? error.message : String(error)}`;
    if (this.logged.has(text) || this.logged.size >= 100) return;
    this.logged.add(text);
    console.error(`anyws: backplane ${text}`);
  }
}
