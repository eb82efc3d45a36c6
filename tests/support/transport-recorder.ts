/**
 * What the transport tests (tests/adapters/{node,deno,bun,streams}/transport.test.ts) share: a
 * `TransportHandler` that records everything, and the listening, dialing and closing built on
 * it. Runtime-neutral: it uses no runtime's own API (the streams test runs on all three), only
 * the `Runtime` a test hands it; raw sockets and their cleanup stay in the runtime's test file.
 */
import assert from "node:assert/strict";
import type { TestContext } from "node:test";
import { concatBytes } from "../../core/bytes.ts";
import type {
  DialOptions,
  Listener,
  ListenOptions,
  Runtime,
  TlsClientOptions,
  TlsServerOptions,
  Transport,
  TransportHandler,
} from "../../adapters/shared/transport.ts";
import { assertBytes, utf8 } from "./bytes.ts";
import { until, withTimeout } from "./time.ts";

/** How long a recorder waits for an event it is asked for. */
const WAIT_MS = 10_000;

export type ChunkHook = (chunk: Uint8Array, self: Recorder) => void;
export type EndHook = (self: Recorder) => void;

/** Writes every chunk back. */
export const echoChunk: ChunkHook = (chunk, self) => self.transport.write([chunk]);
/** Ends this side once the peer has ended its side. */
export const endBack: EndHook = (self) => self.transport.end();

/**
 * A handler that records everything: the chunks (and copies taken as they arrived, to catch an
 * adapter that reuses read buffers), counts, the order of events, and the closes. A callback
 * after `onClose` fails the test. Hooks react (echo, pause, end, throw); promises wait, bounded.
 */
export class Recorder implements TransportHandler {
  transport!: Transport;
  chunks: Uint8Array[] = [];
  copies: Uint8Array[] = [];
  received = 0;
  ends = 0;
  drains = 0;
  readonly closes: (Error | undefined)[] = [];
  /** "data" (once for a run of chunks), "end" and "close", in the order they came. */
  readonly log: string[] = [];
  /** Called from onData after recording. */
  onChunk: ChunkHook | undefined;
  /** Called from onEnd after recording. */
  onEndHook: EndHook | undefined;
  #waiters: { bytes: number; resolve: () => void }[] = [];
  #endWaiters: (() => void)[] = [];
  #drainWaiters: (() => void)[] = [];
  #closeWaiters: ((error: Error | undefined) => void)[] = [];

  constructor(hooks: { onChunk?: ChunkHook; onEndHook?: EndHook } = {}) {
    this.onChunk = hooks.onChunk;
    this.onEndHook = hooks.onEndHook;
  }

  /** The `bind` a dial or a listener's accept takes. */
  bind = (transport: Transport): TransportHandler => {
    this.transport = transport;
    return this;
  };

  onData(chunk: Uint8Array): void {
    assert.equal(this.closes.length, 0, "onData after onClose");
    this.chunks.push(chunk);
    this.copies.push(chunk.slice());
    this.received += chunk.length;
    if (this.log.at(-1) !== "data") this.log.push("data");
    this.#waiters = this.#waiters.filter((w) => {
      if (this.received < w.bytes) return true;
      w.resolve();
      return false;
    });
    this.onChunk?.(chunk, this);
  }
  onEnd(): void {
    assert.equal(this.closes.length, 0, "onEnd after onClose");
    this.ends++;
    this.log.push("end");
    for (const w of this.#endWaiters.splice(0)) w();
    this.onEndHook?.(this);
  }
  onDrain(): void {
    assert.equal(this.closes.length, 0, "onDrain after onClose");
    this.drains++;
    for (const w of this.#drainWaiters.splice(0)) w();
  }
  onClose(error?: Error): void {
    this.closes.push(error);
    this.log.push("close");
    for (const w of this.#closeWaiters.splice(0)) w(error);
  }

  get closed(): boolean {
    return this.closes.length > 0;
  }
  /** Everything received, as one buffer. */
  data(): Uint8Array {
    return concatBytes(this.chunks);
  }

  /** Resolves once `n` bytes have been received in all. */
  whenBytes(n: number): Promise<void> {
    if (this.received >= n) return Promise.resolve();
    return withTimeout(new Promise((resolve) => this.#waiters.push({ bytes: n, resolve })), WAIT_MS, `${n} bytes`);
  }
  whenEnded(): Promise<void> {
    if (this.ends) return Promise.resolve();
    return withTimeout(new Promise((resolve) => this.#endWaiters.push(resolve)), WAIT_MS, "onEnd");
  }
  /** Resolves at the next onDrain. */
  whenDrained(): Promise<void> {
    return withTimeout(new Promise((resolve) => this.#drainWaiters.push(resolve)), WAIT_MS, "onDrain");
  }
  /** Resolves with the first onClose's error. */
  whenClosed(): Promise<Error | undefined> {
    if (this.closes.length) return Promise.resolve(this.closes[0]);
    return withTimeout(new Promise((resolve) => this.#closeWaiters.push(resolve)), WAIT_MS, "onClose");
  }
}

/** `a` ends, `b` ends back: both close without an error, once, each having seen one end. */
export async function endGracefully(a: Recorder, b: Recorder): Promise<void> {
  b.onEndHook = endBack;
  if (b.ends) b.transport.end();
  a.transport.end();
  assert.equal(await a.whenClosed(), undefined);
  assert.equal(await b.whenClosed(), undefined);
  assert.equal(a.closes.length, 1);
  assert.equal(b.closes.length, 1);
  assert.equal(a.ends, 1);
  assert.equal(b.ends, 1);
}

/** Dials with `rec`, which must be given the transport the dial resolves with. */
export async function dialRecorded(runtime: Runtime, options: DialOptions, rec = new Recorder()): Promise<Recorder> {
  const transport = await runtime.dial(options, rec.bind);
  assert.equal(transport, rec.transport, "dial resolves with the transport bind was given");
  return rec;
}

/**
 * Listens with `runtime`. Every accepted connection gets a recorder from `recorder` (a plain
 * one by default), bound, then given to `setup`; `next()` waits for the next one, and `dial()`
 * connects a client recorder and resolves with it and its accepted peer.
 */
export async function listenRecorded(
  runtime: Runtime,
  options: ListenOptions,
  accept: { recorder?: () => Recorder; setup?: (r: Recorder) => void } = {},
) {
  const accepted: Recorder[] = [];
  const waiting: ((r: Recorder) => void)[] = [];
  const listener = await runtime.listen(options, (transport) => {
    const r = accept.recorder?.() ?? new Recorder();
    r.bind(transport);
    accept.setup?.(r);
    accepted.push(r);
    waiting.shift()?.(r);
    return r;
  });
  /** The next connection accepted after this call. */
  const next = (): Promise<Recorder> =>
    withTimeout(new Promise((resolve) => waiting.push(resolve)), WAIT_MS, "an accepted connection");
  /** Dials the listener (at its hostname by default) with `client`; resolves with both ends. */
  const dial = async (to: Partial<DialOptions> = {}, client = new Recorder()) => {
    const peer = next();
    await dialRecorded(runtime, { host: options.hostname, port: listener.port, ...to }, client);
    return { client, peer: await peer };
  };
  return { listener, accepted, next, dial };
}

/**
 * Closes what a test opened, whatever its outcome: transports, then what `closeRaw` closes (a
 * runtime's raw sockets and servers), then listeners.
 */
export function trackTransports(t: TestContext, closeRaw: () => void = () => {}) {
  const listeners: Listener[] = [];
  const transports: Transport[] = [];
  t.after(async () => {
    for (const tr of transports) tr.destroy();
    closeRaw();
    await Promise.all(listeners.map((l) => l.close()));
  });
  return {
    listener<L extends Listener>(l: L): L {
      listeners.push(l);
      return l;
    },
    transport<T extends Transport>(tr: T): T {
      transports.push(tr);
      return tr;
    },
  };
}
export type Bag = ReturnType<typeof trackTransports>;

/**
 * `serve`, `connect` and `echoRoundTrip` over `runtime`, for tests that close what they open
 * with a bag (`trackTransports`); `tls: true` listens with `serverTls`.
 */
export function transportHarness(runtime: Runtime, serverTls: TlsServerOptions) {
  /** Listens on port 0, giving every accepted connection a fresh recorder (one that echoes by default). */
  async function serve(
    bag: Bag,
    options: { hostname?: string; tls?: boolean; recorder?: () => Recorder; pause?: boolean; runtime?: Runtime } = {},
  ) {
    const server = await listenRecorded(
      options.runtime ?? runtime,
      { port: 0, hostname: options.hostname ?? "127.0.0.1", tls: options.tls ? serverTls : undefined },
      {
        recorder: options.recorder ?? (() => new Recorder({ onChunk: echoChunk })),
        setup: (r) => {
          r.onEndHook ??= endBack; // a transport never ends itself: these tests end back, as a session would
          bag.transport(r.transport);
          if (options.pause) r.transport.pause();
        },
      },
    );
    bag.listener(server.listener);
    return server;
  }

  async function connect(
    bag: Bag,
    host: string,
    port: number,
    tlsOptions?: TlsClientOptions,
    rec = new Recorder(),
    via: Runtime = runtime,
  ): Promise<Recorder> {
    rec.onEndHook ??= endBack;
    try {
      return await dialRecorded(via, { host, port, tls: tlsOptions }, rec);
    } finally {
      if (rec.transport) bag.transport(rec.transport); // closed at the end, whatever the check said
    }
  }

  /** Echoes a few messages over a fresh connection and closes it cleanly. */
  async function echoRoundTrip(bag: Bag, host: string, port: number, tlsOptions?: TlsClientOptions) {
    const client = await connect(bag, host, port, tlsOptions);
    const messages = ["hello", "wörld", "x".repeat(100_000)].map(utf8);
    for (const m of messages) client.transport.write([m.subarray(0, 1), m.subarray(1)]);
    const expected = concatBytes(messages);
    await until(() => client.received >= expected.length, "the echo");
    assertBytes(client.data(), expected, "echo");
    client.transport.end();
    await until(() => client.closed, "the client to close");
    assert.deepEqual(client.closes, [undefined]);
    return client;
  }

  return { runtime, serve, connect, echoRoundTrip };
}
export type Harness = ReturnType<typeof transportHarness>;
