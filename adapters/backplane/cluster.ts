/**
 * The `node:cluster` backplane driver: worker processes relay envelopes through the primary over
 * the cluster's IPC channels, so the processes of one machine share topics without a broker.
 *
 * In the primary, `clusterHub()` (once, before or after forking) fans each envelope out to the
 * other processes subscribed to its channel; in each worker, `clusterDriver()` is the driver to
 * give the server. A primary that serves too uses `hub.driver()`.
 *
 * Binary-safe with either IPC serialization: with `serialization: "advanced"` envelopes cross as
 * bytes; with the default `"json"` (which turns a Uint8Array into an object) they cross as
 * base64 text. The hub finds out each worker's mode from a probe in its hello.
 *
 * Runs on Node, and on Deno and Bun through their `node:cluster`.
 */
import cluster, { type Worker } from "node:cluster";
import { Buffer } from "node:buffer";
import process from "node:process";
import type { BackplaneDriver, BackplaneSink } from "../shared/backplane.ts";

/** Marks the IPC messages that are ours, among whatever else the application sends. */
const MARK = "anyws.backplane";
/** Bytes whose arrival as a Uint8Array (or not) tells which serialization a channel uses. */
const PROBE = [0, 255];

type Payload = Uint8Array | string;

/** Every message of this driver carries `MARK: 1`. */
type HubMessage =
  | { t: "hello"; probe: unknown; channels: string[] } // worker → hub: here I am
  | { t: "welcome"; binary: boolean } // hub → worker: send bytes (advanced) or base64 (json)
  | { t: "hub" } // hub → worker: a hub started; say hello (again)
  | { t: "closed" } // hub → worker: the hub stopped relaying
  | { t: "sub" | "unsub"; c: string } // worker → hub
  | { t: "bye" } // worker → hub: the driver closed
  | { t: "pub"; c: string; e: Payload }; // either way: one envelope on channel c

function isOurs(message: unknown): message is HubMessage & { [MARK]: 1 } {
  return typeof message === "object" && message !== null && (message as Record<string, unknown>)[MARK] === 1;
}

function tagged(message: HubMessage): HubMessage & { [MARK]: 1 } {
  return { [MARK]: 1, ...message };
}

function toBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");
}

/** The envelope's bytes, from either form; null when it is neither. */
function toBytes(payload: unknown): Uint8Array | null {
  if (payload instanceof Uint8Array) return payload;
  if (typeof payload === "string") {
    const b = Buffer.from(payload, "base64");
    return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  }
  return null;
}

function payloadFor(bytes: Uint8Array, binary: boolean): Payload {
  return binary ? bytes : toBase64(bytes);
}

export interface ClusterDriverOptions {
  /** How long `start()` waits for the primary's `clusterHub()` to answer. Default 10000 ms. */
  timeout?: number;
}

/**
 * The driver for a `node:cluster` worker. Throws in any other process: in the primary, serve
 * with `clusterHub().driver()`.
 */
export function clusterDriver(options: ClusterDriverOptions = {}): BackplaneDriver {
  if (!cluster.isWorker || typeof process.send !== "function") {
    throw new Error(
      "anyws: clusterDriver() runs in a node:cluster worker; in the primary, call clusterHub() and serve with hub.driver()",
    );
  }
  return new WorkerDriver(options.timeout ?? 10_000);
}

class WorkerDriver implements BackplaneDriver {
  readonly #timeout: number;
  readonly #channels = new Set<string>();
  #sink: BackplaneSink | null = null;
  /** How the hub wants envelopes (null until a hub has welcomed us). */
  #binary: boolean | null = null;
  /** A hub has welcomed us and has not closed since. */
  #up = false;
  #connected = true;
  #welcomed: (() => void) | null = null;

  constructor(timeout: number) {
    this.#timeout = timeout;
  }

  readonly #onMessage = (message: unknown): void => {
    if (!isOurs(message)) return;
    const sink = this.#sink;
    if (!sink) return;
    switch (message.t) {
      case "hub":
        this.#hello();
        break;
      case "welcome":
        this.#binary = message.binary;
        if (!this.#up) {
          this.#up = true;
          sink.up();
          this.#welcomed?.();
          this.#welcomed = null;
        }
        break;
      case "closed":
        if (this.#up) {
          this.#up = false;
          sink.down();
        }
        break;
      case "pub": {
        if (!this.#channels.has(message.c)) return;
        const bytes = toBytes(message.e);
        if (bytes === null) sink.error("decode", new TypeError("anyws: a cluster envelope that is neither bytes nor base64"));
        else sink.message(message.c, bytes);
        break;
      }
    }
  };

  readonly #onDisconnect = (): void => {
    this.#connected = false;
    if (this.#up) {
      this.#up = false;
      this.#sink?.down();
    }
  };

  #send(message: HubMessage): Promise<void> {
    if (!this.#connected || !process.connected) {
      return Promise.reject(new Error("anyws: the IPC channel to the cluster primary is closed"));
    }
    return new Promise((resolve, reject) => {
      try {
        process.send!(tagged(message), undefined, {}, (error: Error | null) => (error ? reject(error) : resolve()));
      } catch (error) {
        reject(error);
      }
    });
  }

  #hello(): void {
    this.#send({ t: "hello", probe: new Uint8Array(PROBE), channels: [...this.#channels] }).catch((error) =>
      this.#sink?.error("connect", error)
    );
  }

  start(sink: BackplaneSink): Promise<void> {
    this.#sink = sink;
    process.on("message", this.#onMessage);
    process.on("disconnect", this.#onDisconnect);
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#welcomed = null;
        reject(new Error(`anyws: no clusterHub() answered from the cluster primary within ${this.#timeout} ms: call clusterHub() in the primary`));
      }, this.#timeout);
      this.#welcomed = () => {
        clearTimeout(timer);
        resolve();
      };
      this.#hello();
    });
  }

  publish(channel: string, envelope: Uint8Array): Promise<void> {
    if (!this.#up || this.#binary === null) return Promise.reject(new Error("anyws: no cluster hub is relaying (not started, or the primary's hub closed)"));
    return this.#send({ t: "pub", c: channel, e: payloadFor(envelope, this.#binary) });
  }

  subscribe(channel: string): Promise<void> {
    this.#channels.add(channel);
    // Before start, the hello will carry it; after, the hub takes it in order after the hello.
    return this.#sink === null ? Promise.resolve() : this.#send({ t: "sub", c: channel });
  }

  unsubscribe(channel: string): Promise<void> {
    this.#channels.delete(channel);
    return this.#sink === null ? Promise.resolve() : this.#send({ t: "unsub", c: channel });
  }

  async close(): Promise<void> {
    process.off("message", this.#onMessage);
    process.off("disconnect", this.#onDisconnect);
    const wasUp = this.#up && this.#connected;
    this.#up = false;
    this.#binary = null;
    this.#channels.clear();
    if (wasUp) await this.#send({ t: "bye" }).catch(() => {});
    this.#sink = null;
  }
}

// ---------------------------------------------------------------------------------------------
// The hub, in the primary

/** One process the hub relays to: a worker, or the primary's own driver. */
interface Member {
  readonly channels: Set<string>;
  /** Delivers one envelope; `bytes` and `text` are the same envelope in the two forms, made on demand. */
  deliver(channel: string, envelope: LazyPayload): void;
}

/** One envelope, converted to the other form at most once however many members need it. */
class LazyPayload {
  #bytes: Uint8Array | null;
  #text: string | null;
  constructor(payload: Payload) {
    this.#bytes = typeof payload === "string" ? null : payload;
    this.#text = typeof payload === "string" ? payload : null;
  }
  bytes(): Uint8Array {
    return (this.#bytes ??= toBytes(this.#text)!);
  }
  text(): string {
    return (this.#text ??= toBase64(this.#bytes!));
  }
}

export interface ClusterHubOptions {
  /**
   * Called when relaying to a worker failed (it is gone or going), or when envelopes for a worker
   * are dropped because its backlog is full (once per run of drops); the others are not affected.
   */
  error?(error: unknown): void;
  /**
   * Bytes of envelopes the hub may hold for one worker that has not read them yet (handed to its
   * IPC channel and not yet written). Beyond it, envelopes for that worker are dropped, which its
   * backplane reports as a gap. Default 16 MiB. Deno's `node:cluster` calls a send's callback
   * before the worker has taken the bytes: there only what is sent within one turn of the event
   * loop is bounded, not the backlog of a worker that stays stalled.
   */
  maxQueuedBytes?: number;
}

export interface ClusterHub {
  /** The driver for a primary that serves WebSockets too. */
  driver(): BackplaneDriver;
  /** Stops relaying: workers report `down()`, until a new hub welcomes them. */
  close(): void;
}

let activeHub: ClusterHub | null = null;

/**
 * The relay in the cluster primary: each envelope a process publishes goes to every other
 * process subscribed to its channel, in the order the publisher sent it. One hub per primary.
 */
export function clusterHub(options: ClusterHubOptions = {}): ClusterHub {
  if (!cluster.isPrimary) throw new Error("anyws: clusterHub() runs in the cluster primary; in a worker, use clusterDriver()");
  if (activeHub) throw new Error("anyws: a clusterHub() is already running in this process");
  const members = new Map<Worker | PrimaryDriver, Member>();
  const report = (error: unknown) => options.error?.(error);
  const maxQueuedBytes = options.maxQueuedBytes ?? 16 * 1024 * 1024;
  /**
   * With a callback, a failed send (a worker exiting: EPIPE) comes back here instead of as the
   * Worker's 'error' event, which would throw; `done` runs once the message is written or failed.
   */
  const sendTo = (worker: Worker, message: HubMessage, onError: (error: unknown) => void = report, done?: () => void): void => {
    try {
      worker.send(tagged(message), undefined, (error: Error | null) => {
        done?.();
        if (error) onError(error);
      });
    } catch (error) {
      done?.();
      onError(error);
    }
  };

  const relay = (from: Member, channel: string, payload: LazyPayload): void => {
    const local: Member[] = [];
    for (const [key, member] of members) {
      if (member === from || !member.channels.has(channel)) continue;
      if (key instanceof PrimaryDriver) local.push(member);
      else member.deliver(channel, payload);
    }
    // The primary's own subscribers last: what they publish in reply then follows this envelope
    // into every worker's IPC channel.
    for (const member of local) member.deliver(channel, payload);
  };

  const workerMember = (worker: Worker, binary: boolean, channels: string[]): Member => {
    // What IPC holds for this worker until it reads: counted, so one stalled worker cannot make the primary grow without end.
    let queued = 0;
    let dropping = false;
    return {
      channels: new Set(channels),
      deliver(channel, payload) {
        if (!worker.isConnected()) return;
        const e = binary ? payload.bytes() : payload.text();
        if (queued + e.length > maxQueuedBytes) {
          if (!dropping) report(new RangeError(`anyws: cluster hub backlog for worker ${worker.id} full (${queued} bytes): envelopes for it are dropped`));
          dropping = true;
          return;
        }
        dropping = false;
        queued += e.length;
        sendTo(worker, { t: "pub", c: channel, e }, report, () => (queued -= e.length));
      },
    };
  };

  const onMessage = (worker: Worker, message: unknown): void => {
    if (!isOurs(message)) return;
    switch (message.t) {
      case "hello": {
        const binary = message.probe instanceof Uint8Array;
        members.set(worker, workerMember(worker, binary, message.channels));
        sendTo(worker, { t: "welcome", binary });
        break;
      }
      case "sub":
        members.get(worker)?.channels.add(message.c);
        break;
      case "unsub":
        members.get(worker)?.channels.delete(message.c);
        break;
      case "bye":
        members.delete(worker);
        break;
      case "pub": {
        const from = members.get(worker);
        if (from) relay(from, message.c, new LazyPayload(message.e));
        break;
      }
    }
  };
  const onExit = (worker: Worker): void => {
    members.delete(worker);
  };

  cluster.on("message", onMessage);
  cluster.on("exit", onExit);
  // Workers forked before the hub started have said hello to nobody: ask them again.
  for (const worker of Object.values(cluster.workers ?? {})) {
    if (worker?.isConnected()) {
      sendTo(worker, { t: "hub" });
    }
  }

  const hub: ClusterHub = {
    driver: () => new PrimaryDriver(members, relay),
    close() {
      cluster.off("message", onMessage);
      cluster.off("exit", onExit);
      for (const key of members.keys()) {
        if (key instanceof PrimaryDriver || !key.isConnected()) continue;
        sendTo(key, { t: "closed" }, () => {}); // a worker already on its way out needs no telling
      }
      for (const [key] of members) if (key instanceof PrimaryDriver) key.hubClosed();
      members.clear();
      if (activeHub === hub) activeHub = null;
    },
  };
  activeHub = hub;
  return hub;
}

/** The primary's own driver: a member of the hub, in process. */
class PrimaryDriver implements BackplaneDriver {
  readonly #members: Map<Worker | PrimaryDriver, Member>;
  readonly #relay: (from: Member, channel: string, payload: LazyPayload) => void;
  #sink: BackplaneSink | null = null;
  #open = false;
  readonly #member: Member;

  constructor(members: Map<Worker | PrimaryDriver, Member>, relay: (from: Member, channel: string, payload: LazyPayload) => void) {
    this.#members = members;
    this.#relay = relay;
    this.#member = {
      channels: new Set(),
      deliver: (channel, payload) => this.#sink?.message(channel, payload.bytes()),
    };
  }

  hubClosed(): void {
    this.#open = false;
    this.#sink?.down();
  }

  start(sink: BackplaneSink): Promise<void> {
    this.#sink = sink;
    this.#open = true;
    this.#members.set(this, this.#member);
    sink.up();
    return Promise.resolve();
  }

  publish(channel: string, envelope: Uint8Array): Promise<void> {
    if (!this.#open) return Promise.reject(new Error("anyws: the cluster hub is closed"));
    this.#relay(this.#member, channel, new LazyPayload(envelope));
    return Promise.resolve();
  }

  subscribe(channel: string): Promise<void> {
    this.#member.channels.add(channel);
    return Promise.resolve();
  }

  unsubscribe(channel: string): Promise<void> {
    this.#member.channels.delete(channel);
    return Promise.resolve();
  }

  close(): Promise<void> {
    this.#open = false;
    this.#members.delete(this);
    this.#sink = null;
    return Promise.resolve();
  }
}
