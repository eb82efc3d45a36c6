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
 * Envelope layout, version 1 (all integers big-endian):
 * version (1 byte) · flags (1 byte: bit 0 binary, other bits 0) · origin (16 bytes) ·
 * sequence (8 bytes, at most 2^53 - 1) · topic length (4 bytes) · topic (UTF-8) · payload (the rest).
 */
export const ENVELOPE_VERSION = 1;
const FLAG_BINARY = 0x01;
const ORIGIN_BYTES = 16;
const HEADER_BYTES = 2 + ORIGIN_BYTES + 8 + 4;
const TWO_32 = 2 ** 32;

/** One publish as it travels between processes. */
export interface Envelope {
  /** The publishing process's id (16 bytes). */
  origin: Uint8Array;
  /** 1 for the origin's first envelope on a channel, then one more for each. */
  sequence: number;
  topic: string;
  binary: boolean;
  /** The message: UTF-8 for text. A view into the envelope's bytes. */
  payload: Uint8Array;
}

const encoder = new TextEncoder();
const strictDecoder = new TextDecoder("utf-8", { fatal: true });

/** Encodes one envelope; a string payload is encoded as UTF-8 and flagged as text. */
export function encodeEnvelope(origin: Uint8Array, sequence: number, topic: string, payload: string | Uint8Array, binary = typeof payload !== "string"): Uint8Array {
  if (origin.length !== ORIGIN_BYTES) throw new RangeError(`an origin is ${ORIGIN_BYTES} bytes`);
  if (!Number.isSafeInteger(sequence) || sequence < 0) throw new RangeError("a sequence number is an integer from 0 to 2^53 - 1");
  const topicBytes = encoder.encode(topic);
  const payloadLength = typeof payload === "string" ? utf8Length(payload) : payload.length;
  const out = new Uint8Array(HEADER_BYTES + topicBytes.length + payloadLength);
  const view = new DataView(out.buffer);
  out[0] = ENVELOPE_VERSION;
  out[1] = binary ? FLAG_BINARY : 0;
  out.set(origin, 2);
  view.setUint32(2 + ORIGIN_BYTES, Math.floor(sequence / TWO_32));
  view.setUint32(6 + ORIGIN_BYTES, sequence >>> 0);
  view.setUint32(10 + ORIGIN_BYTES, topicBytes.length);
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
  const high = view.getUint32(2 + ORIGIN_BYTES);
  if (high >= 2 ** 21) throw new RangeError("envelope sequence number above 2^53 - 1");
  const sequence = high * TWO_32 + view.getUint32(6 + ORIGIN_BYTES);
  const topicLength = view.getUint32(10 + ORIGIN_BYTES);
  if (topicLength > bytes.length - HEADER_BYTES) throw new RangeError("envelope topic runs past its end");
  let topic: string;
  try {
    topic = strictDecoder.decode(bytes.subarray(HEADER_BYTES, HEADER_BYTES + topicLength));
  } catch {
    throw new RangeError("envelope topic is not valid UTF-8");
  }
  return {
    origin: bytes.subarray(2, 2 + ORIGIN_BYTES),
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
   * Messages from `origin` numbered `from` to `to` (inclusive) never arrived here: the local
   * subscribers missed them. `topic` is the channel's topic in "topic" mode.
   */
  gap?(origin: string, from: number, to: number, topic?: string): void;
  /**
   * Something failed at `stage`; the backplane goes on. "queue": a publish was dropped because
   * the relay queue was full (reported once per run of drops). Without a handler it is logged.
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
  /** Envelopes from other processes delivered to local subscribers. */
  received: number;
  /** Publishes not relayed: relay queue full, broker refused, or closed with them queued. */
  dropped: number;
  /** Gaps reported, and the messages they cover. */
  gaps: number;
  missed: number;
  /** Bytes published and not yet accepted by the broker. */
  queuedBytes: number;
  lastError: { stage: BackplaneStage | "queue"; error: unknown; time: number } | null;
}

interface Pending {
  channel: string;
  envelope: Uint8Array;
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
  /** Next sequence number per channel. */
  private readonly sequences = new Map<string, number>();
  /** Last sequence number seen per channel and origin. */
  private readonly seen = new Map<string, Map<string, number>>();
  private queue: Pending[] = [];
  private queueHead = 0;
  private pendingBytes = 0;
  private isUp = false;
  private closed = false;
  private dropping = false;
  private lastLogged = "";
  private resolveReady!: () => void;
  private counters = { relayed: 0, received: 0, dropped: 0, gaps: 0, missed: 0 };
  private lastError: BackplaneStats["lastError"] = null;

  constructor(options: BackplaneOptions, deliver: (topic: string, payload: Uint8Array, binary: boolean) => void) {
    this.options = options;
    this.driver = options.driver;
    this.deliver = deliver;
    this.prefix = options.prefix ?? "anyws";
    this.perTopic = options.channels === "topic";
    this.maxQueuedBytes = options.maxQueuedBytes ?? 16 * 1024 * 1024;
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
    if (!this.perTopic) this.attempt("subscribe", () => this.driver.subscribe(this.prefix));
  }

  /** Relays a local publish to the other processes. Never throws for the broker's state. */
  publish(topic: string, data: string | Uint8Array, binary = typeof data !== "string"): void {
    if (this.closed) return;
    const channel = this.perTopic ? `${this.prefix}:${topic}` : this.prefix;
    const sequence = this.sequences.get(channel) ?? 1;
    this.sequences.set(channel, sequence + 1);
    const envelope = encodeEnvelope(this.originBytes, sequence, topic, data, binary);
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
    this.seen.delete(channel);
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
    return { origin: this.origin, up: this.isUp, ...this.counters, queuedBytes: this.pendingBytes, lastError: this.lastError };
  }

  /** Stops relaying and closes the driver; what is still queued is dropped. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.isUp = false;
    this.counters.dropped += this.queue.length - this.queueHead;
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
    let origins = this.seen.get(channel);
    if (!origins) this.seen.set(channel, (origins = new Map()));
    const last = origins.get(origin);
    const sequence = envelope.sequence;
    if (last !== undefined) {
      if (sequence <= last) return; // already delivered: never twice
      if (sequence > last + 1) {
        this.counters.gaps++;
        this.counters.missed += sequence - last - 1;
        const handler = this.options.gap;
        if (handler) {
          try {
            handler(origin, last + 1, sequence - 1, this.perTopic ? envelope.topic : undefined);
          } catch (error) {
            console.error("anyws: the backplane's gap handler threw:", error);
          }
        }
      }
    }
    origins.set(origin, sequence);
    this.counters.received++;
    try {
      this.deliver(envelope.topic, envelope.payload, envelope.binary);
    } catch (error) {
      this.fail("receive", error);
    }
  }

  private onUp(): void {
    if (this.closed) return;
    this.isUp = true;
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
    // A broker that stays away fails the same way at every retry: log each kind once in a row.
    const text = `${stage}: ${error instanceof Error ? error.message : String(error)}`;
    if (text === this.lastLogged) return;
    this.lastLogged = text;
    console.error(`anyws: backplane ${text}`);
  }
}
