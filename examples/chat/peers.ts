/**
 * The chat's processes talking to each other, through any backplane driver (Redis, Node
 * cluster IPC, BroadcastChannel, in memory): what one process's sockets do reaches the others,
 * which apply it to their copy of the room and deliver it to their own sockets.
 *
 * Room events travel here rather than through `server.publish` so that each process applies an
 * event to its copy of the room and delivers it to its sockets in one step: the history a late
 * joiner gets and the messages that follow it are one stream, with nothing missed or doubled
 * between them, whichever process it joins.
 *
 * The messages go through a `Backplane` of the chat's own (adapters/shared/backplane.ts): its
 * envelope, echo suppression, bounded queue while the broker is down, counters, and its gap
 * report — messages lost on the way (the broker was down, a subscriber fell behind) make the
 * chat ask for the rooms again. A process that starts asks the others for every room before it
 * serves anyone ("sync"); if no one answers, it is the first. A sync request is answered at once,
 * even by a process that is itself waiting for an answer. Each message also carries the chat's
 * own per-process number, so that a sync answer can say which messages it already holds.
 *
 * A message is a version byte (1), a 4-byte big-endian header length, the header as JSON
 * ({o: process, n: number, t: type, …}), then the body (strokes), in one backplane message.
 */
import { Backplane, type BackplaneDriver, type BackplaneStats } from "../../adapters/shared/backplane.ts";

const VERSION = 1;
/** A header larger than this is not the chat's. */
const MAX_HEADER = 16 * 1024 * 1024;

export interface Header {
  t: string;
  [key: string]: unknown;
}

export interface PeersHandler {
  /** A message from process `origin`, in that process's order (never one of this process's). */
  message(origin: string, header: Header, body: Uint8Array): void;
  /** Messages `from`..`to` of backplane origin `origin` never arrived. */
  gap(origin: string, from: number, to: number): void;
  /** `origin` has not been heard from for `goneAfter` ms. */
  gone(origin: string): void;
  /** Something to log. */
  log(line: string): void;
}

export interface PeersOptions {
  /** This process's id, unique in the chat. */
  node: string;
  /** The driver channel the chat's processes share. */
  channel: string;
  handler: PeersHandler;
  /** What each heartbeat says besides "still here". */
  hello(): Record<string, unknown>;
  /** Milliseconds between heartbeats. Default 2000. */
  helloInterval?: number;
  /** Milliseconds of silence after which a process is gone. Default 3 heartbeats and a half. */
  goneAfter?: number;
  /** Milliseconds `start()` waits for the broker. Default 10,000. */
  timeout?: number;
}

interface Received {
  origin: string;
  n: number;
  header: Header;
  body: Uint8Array;
  /** Already handed to the handler (a sync request, answered at once even while syncing). */
  handled?: boolean;
}

export class Peers {
  readonly node: string;
  private readonly backplane: Backplane;
  private readonly options: PeersOptions;
  private readonly handler: PeersHandler;
  private n = 0;
  /** The last number delivered from each process (a sync answer says which it holds). */
  private readonly seen = new Map<string, number>();
  private readonly heard = new Map<string, number>();
  /** While a sync is under way: what arrived meanwhile, applied once the rooms are in. */
  private buffer: Received[] | null = null;
  private waiting: { q: string; done(answer: Received | null): void } | null = null;
  private timer: ReturnType<typeof setInterval> | undefined;
  private closed = false;
  private readonly encoder = new TextEncoder();
  private readonly decoder = new TextDecoder();

  constructor(driver: BackplaneDriver, options: PeersOptions) {
    this.options = options;
    this.node = options.node;
    this.handler = options.handler;
    const log = this.handler.log;
    this.backplane = new Backplane({
      driver,
      prefix: options.channel,
      gap: (origin, from, to) => this.handler.gap(origin, from, to),
      error: (stage, error) => log(`backplane ${stage} error: ${(error as Error)?.message ?? error}`),
      up: () => log("backplane up"),
      down: () => log("backplane down: other processes miss what happens here until it is back"),
    }, (_topic, payload) => this.receive(payload));
  }

  /** The backplane's counters: relayed, received, dropped, gaps, last error. */
  stats(): BackplaneStats {
    return this.backplane.stats();
  }

  /** Waits until the backplane is up; rejects when it is not within `timeout`. */
  async start(): Promise<void> {
    const timeout = this.options.timeout ?? 10_000;
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      this.backplane.ready,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`the backplane is not up after ${timeout} ms`)), timeout);
      }),
    ]).finally(() => clearTimeout(timer));
    const interval = this.options.helloInterval ?? 2000;
    const goneAfter = this.options.goneAfter ?? interval * 3.5;
    this.timer = setInterval(() => {
      this.send({ t: "hello", ...this.options.hello() });
      const now = Date.now();
      for (const [origin, at] of this.heard) {
        if (now - at > goneAfter) {
          this.heard.delete(origin);
          this.seen.delete(origin);
          this.handler.gone(origin);
        }
      }
    }, interval);
    (this.timer as { unref?(): void }).unref?.();
  }

  /** Sends to every other process. Never throws: a broker error is logged. */
  send(header: Header, body: Uint8Array = new Uint8Array(0)): void {
    if (this.closed) return;
    const json = this.encoder.encode(JSON.stringify({ o: this.node, n: ++this.n, ...header }));
    const envelope = new Uint8Array(5 + json.length + body.length);
    envelope[0] = VERSION;
    new DataView(envelope.buffer).setUint32(1, json.length);
    envelope.set(json, 5);
    envelope.set(body, 5 + json.length);
    this.backplane.publish("chat", envelope, true);
  }

  /**
   * Asks the other processes for the rooms and waits up to `timeout` ms for the first answer;
   * what else arrives meanwhile is held back. `restore` gets the answer's header and body (or
   * null if no one answered), then what was held back is delivered, less what the answer
   * already holds.
   */
  sync(timeout: number, restore: (header: Header | null, body: Uint8Array) => void): Promise<void> {
    if (this.waiting !== null) return Promise.resolve();
    this.buffer ??= [];
    const q = `${this.node}.${this.n + 1}`;
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => this.waiting?.done(null), timeout);
      this.waiting = {
        q,
        done: (answer) => {
          clearTimeout(timer);
          this.waiting = null;
          if (answer !== null) {
            // The answer holds everything its sender had applied, and everything it sent itself.
            const held = { ...(answer.header.seen as Record<string, number>), [answer.origin]: answer.n };
            for (const [origin, n] of Object.entries(held)) {
              if (origin !== this.node) this.seen.set(origin, Math.max(n, this.seen.get(origin) ?? 0));
            }
          }
          try {
            restore(answer?.header ?? null, answer?.body ?? new Uint8Array(0));
          } catch (error) {
            this.handler.log(`sync: ${(error as Error).stack ?? error}`);
          }
          const held = this.buffer ?? [];
          this.buffer = null;
          for (const r of held) this.deliver(r);
          resolve();
        },
      };
      this.send({ t: "sync?", q });
    });
  }

  /** What this process has applied from each other process: sent with a sync answer. */
  applied(): Record<string, number> {
    return Object.fromEntries(this.seen);
  }

  /** The processes heard from lately (not this one). */
  others(): string[] {
    return [...this.heard.keys()];
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    this.waiting?.done(null);
    await this.backplane.close();
  }

  private receive(envelope: Uint8Array): void {
    let r: Received;
    try {
      if (envelope[0] !== VERSION) throw new Error(`version ${envelope[0]}`);
      const length = new DataView(envelope.buffer, envelope.byteOffset, envelope.byteLength).getUint32(1);
      if (length > MAX_HEADER || 5 + length > envelope.length) throw new Error(`header of ${length} bytes`);
      const header = JSON.parse(this.decoder.decode(envelope.subarray(5, 5 + length)));
      if (typeof header?.o !== "string" || !Number.isSafeInteger(header.n) || typeof header.t !== "string") {
        throw new Error("no origin, number or type");
      }
      r = { origin: header.o, n: header.n, header, body: envelope.slice(5 + length) };
    } catch (error) {
      this.handler.log(`backplane: a message that is not the chat's (${(error as Error).message})`);
      return;
    }
    this.heard.set(r.origin, Date.now());
    if (r.header.t === "sync" && r.header.to === this.node) {
      if (this.waiting !== null && r.header.q === this.waiting.q) this.waiting.done(r);
      return;
    }
    if (this.buffer !== null && r.header.t === "sync?") {
      // Answered at once: two processes resyncing at the same time must not wait for each other.
      this.handle(r);
      r.handled = true;
    }
    if (this.buffer !== null) this.buffer.push(r);
    else this.deliver(r);
  }

  private deliver(r: Received): void {
    const last = this.seen.get(r.origin);
    if (last !== undefined && r.n <= last) return; // already in the rooms (held back during a sync)
    this.seen.set(r.origin, r.n);
    if (!r.handled) this.handle(r);
  }

  private handle(r: Received): void {
    try {
      this.handler.message(r.origin, r.header, r.body);
    } catch (error) {
      this.handler.log(`backplane: ${(error as Error).stack ?? error}`);
    }
  }
}
