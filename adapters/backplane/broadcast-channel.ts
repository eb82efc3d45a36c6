/**
 * The `BroadcastChannel` backplane driver: envelopes cross between the threads of one process
 * (Node `worker_threads`, Deno and Bun workers, the main thread) and between same-origin
 * contexts, by structured clone, so bytes stay bytes. No broker, so it is up at once and never
 * goes down.
 */
import type { BackplaneDriver, BackplaneSink } from "../shared/backplane.ts";

export interface BroadcastChannelDriverOptions {
  /** Prepended to each backplane channel's name to name its BroadcastChannel. Default "anyws.backplane:". */
  prefix?: string;
}

/** A driver on the runtime's global `BroadcastChannel` (throws where there is none). */
export function broadcastChannelDriver(options: BroadcastChannelDriverOptions = {}): BackplaneDriver {
  if (typeof globalThis.BroadcastChannel !== "function") {
    throw new Error("anyws: broadcastChannelDriver() needs a global BroadcastChannel, which this runtime does not have");
  }
  return new BroadcastChannelDriver(options.prefix ?? "anyws.backplane:");
}

class BroadcastChannelDriver implements BackplaneDriver {
  readonly #prefix: string;
  /** One BroadcastChannel per backplane channel in use, for sending and receiving both (a channel does not hear itself). */
  readonly #open = new Map<string, BroadcastChannel>();
  readonly #subscribed = new Set<string>();
  #sink: BackplaneSink | null = null;

  constructor(prefix: string) {
    this.#prefix = prefix;
  }

  #channel(channel: string): BroadcastChannel {
    let bc = this.#open.get(channel);
    if (bc === undefined) {
      bc = new BroadcastChannel(this.#prefix + channel);
      bc.onmessage = (event: { data: unknown }) => {
        const sink = this.#sink;
        if (sink === null || !this.#subscribed.has(channel)) return;
        const data: unknown = event.data;
        if (data instanceof Uint8Array) sink.message(channel, data);
        else sink.error("decode", new TypeError(`anyws: a message that is not a Uint8Array on BroadcastChannel "${this.#prefix + channel}"`));
      };
      bc.onmessageerror = () => this.#sink?.error("decode", new TypeError(`anyws: a message that could not be deserialized on BroadcastChannel "${this.#prefix + channel}"`));
      this.#open.set(channel, bc);
    }
    return bc;
  }

  start(sink: BackplaneSink): Promise<void> {
    this.#sink = sink;
    for (const channel of this.#subscribed) this.#channel(channel);
    sink.up();
    return Promise.resolve();
  }

  publish(channel: string, envelope: Uint8Array): Promise<void> {
    if (this.#sink === null) return Promise.reject(new Error("anyws: the BroadcastChannel driver is not started"));
    // Structured clone copies a view's whole buffer: send exactly the envelope's bytes.
    const whole = envelope.byteOffset === 0 && envelope.byteLength === envelope.buffer.byteLength;
    try {
      this.#channel(channel).postMessage(whole ? envelope : envelope.slice());
    } catch (error) {
      return Promise.reject(error);
    }
    return Promise.resolve();
  }

  subscribe(channel: string): Promise<void> {
    this.#subscribed.add(channel);
    if (this.#sink !== null) this.#channel(channel);
    return Promise.resolve();
  }

  unsubscribe(channel: string): Promise<void> {
    this.#subscribed.delete(channel);
    const bc = this.#open.get(channel);
    if (bc !== undefined) {
      this.#open.delete(channel);
      bc.close();
    }
    return Promise.resolve();
  }

  close(): Promise<void> {
    for (const bc of this.#open.values()) bc.close();
    this.#open.clear();
    this.#subscribed.clear();
    this.#sink = null;
    return Promise.resolve();
  }
}
