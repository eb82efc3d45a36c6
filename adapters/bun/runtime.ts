/**
 * Bun's byte-moving layer: `Bun.listen` and `Bun.connect` sockets as `Transport`s (the contract in
 * adapters/shared/transport.ts). No protocol logic lives here.
 *
 * What Bun 1.4.5 does, as found while writing this (tests/adapters/bun/transport.test.ts checks
 * what the adapter builds on):
 *
 * - `socket.write()` is unbuffered: one send(2) per call, even inside Bun's own callbacks (no
 *   automatic corking), returning how many bytes the kernel (or, over TLS, the TLS layer) took:
 *   possibly fewer, 0 when full, -1 once the socket is closed or shut down. `drain` fires when it
 *   can take more (over TLS also once, spuriously, after the handshake). The rest is ours: a queue
 *   of the caller's chunks or views into them (no copy), written in order from `drain`.
 * - There is no writev: each chunk is one send(2). The session (adapters/shared/session.ts) gives
 *   a loop turn's small frames as one chunk, so the transport writes chunks as they come.
 * - The `data` callback's bytes are a fresh ArrayBuffer per read (TCP and TLS, checked over long
 *   transfers): the handler owns them, unmasking in place is safe, nothing is copied here.
 * - `pause()`/`resume()` exist and stop/restart reading, but a `data` callback can still come
 *   after `pause()` (seen over TLS: 64 KiB right after a `pause()` in `open`). Such chunks, and
 *   a FIN behind them, are held here until `resume()`, so that a paused transport reads nothing.
 * - `end()` closes a TCP socket at once (its `close` callback runs inside `end()`) but leaves a
 *   TLS socket open until the peer's FIN; `shutdown()` is the half-close on both. So `end()` here
 *   is: flush the queue, `shutdown()`, wait for the peer's FIN (Bun then closes a TCP socket by
 *   itself; a TLS socket is closed from the `end` callback). How long to wait is the session's
 *   decision (adapters/shared/session.ts), as on every transport.
 * - `close()` closes gracefully (the kernel still delivers what it holds, then a FIN) and calls
 *   `close` synchronously on TCP; on TLS it first sends close_notify and, to a peer that does not
 *   read, never completes (the socket is then detached and even `terminate()` is ignored).
 *   `terminate()` resets (SO_LINGER 0) and closes at once. So `destroy()` is `close()` on TCP (as Node's `socket.destroy()`: the peer sees a FIN) and
 *   `terminate()` on TLS (the peer sees a reset).
 * - A client's TLS verdict: with a `handshake` callback, `open` and the `Bun.connect` promise come
 *   before the handshake, and a refused certificate closes the socket without an error anywhere
 *   else. The dial resolves (and calls `bind`) from `handshake`, or rejects with its error.
 * - A handler that throws makes Bun call the `error` callback and keep the socket open; here the
 *   transport is then destroyed and `onClose(error)` reports the exception.
 */
import { rootCertificates } from "node:tls";
import type {
  Accept,
  AfterReads,
  Dial,
  DialOptions,
  Listen,
  Listener,
  ListenOptions,
  Runtime,
  TlsClientOptions,
  Transport,
  TransportHandler,
} from "../shared/transport.ts";
import { checkReusePortPlatform } from "../shared/reuse-port.ts";

/**
 * The check phase, after every read of the loop turn was handled: the session hands its writes
 * out there, so what several peers' reads send to one socket goes in one write.
 */
const afterLoopReads: AfterReads = (task) => {
  setImmediate(task);
};

/**
 * `write()` returns false once more than this many bytes wait in the transport's own queue, i.e.
 * beyond what the kernel already took (its send buffer, often several MiB, comes first). As Node's
 * default socket high-water mark (64 KiB since Node 22).
 */
export const HIGH_WATER_MARK = 64 * 1024;

interface Settings {
  readonly highWaterMark: number;
}

/** What a Bun socket carries in `socket.data`: its transport, once there is one. */
type Slot = BunTransport | undefined;
type BunSocket = Bun.Socket<Slot>;

/** Reading and writing. */
const OPEN = 0;
/** `end()` was called; the queue is still being flushed. */
const FLUSHING = 1;
/** Our FIN is out (`shutdown()`); waiting for the peer's. */
const SHUT = 2;
const CLOSED = 3;
type State = typeof OPEN | typeof FLUSHING | typeof SHUT | typeof CLOSED;

class BunTransport implements Transport {
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly #socket: BunSocket;
  readonly #tls: boolean;
  readonly #settings: Settings;
  #handler: TransportHandler | undefined;
  #state: State = OPEN;
  /** Chunks not yet written (the caller's, or views into them), from `#head` on. */
  #queue: Uint8Array[] = [];
  #head = 0;
  #queued = 0;
  /** A `write()` returned false: `onDrain` is owed once the queue empties. */
  #owesDrain = false;
  /** The socket took less than it was given: nothing more until `drain`. */
  #blocked = false;
  #peerEnded = false;
  #paused = false;
  /** Chunks read while paused, for resume(); and whether the peer's FIN came behind them. */
  #held: Uint8Array[] | null = null;
  #endHeld = false;
  #error: Error | undefined;

  constructor(socket: BunSocket, tls: boolean, settings: Settings) {
    this.#socket = socket;
    this.#tls = tls;
    this.#settings = settings;
    this.remoteAddress = socket.remoteAddress ?? "";
    this.remotePort = socket.remotePort ?? 0;
    socket.data = this;
    socket.setNoDelay(true);
  }

  /** Connects the handler; from now on the socket's events reach it. */
  attach(handler: TransportHandler): void {
    this.#handler = handler;
  }

  get bufferedAmount(): number {
    return this.#queued;
  }

  get highWaterMark(): number {
    return this.#settings.highWaterMark;
  }

  /** `socket.write()` copies what it takes; the queue holds the rest until written. */
  readonly releasesChunks = true;

  readonly afterReads = afterLoopReads;

  write(chunks: readonly Uint8Array[]): boolean {
    if (this.#state !== OPEN) return false; // after end() or destroy(): dropped
    const queue = this.#queue;
    for (let i = 0; i < chunks.length; i++) {
      const chunk = chunks[i];
      if (chunk.byteLength === 0) continue;
      queue.push(chunk);
      this.#queued += chunk.byteLength;
    }
    if (!this.#blocked) this.#flush();
    if (this.#queued <= this.#settings.highWaterMark) return true;
    this.#owesDrain = true;
    return false;
  }

  end(): void {
    if (this.#state !== OPEN) return;
    this.#state = FLUSHING;
    if (!this.#blocked) this.#flush(); // and, once the queue is empty, shutdown
  }

  destroy(): void {
    this.#close(undefined);
  }

  pause(): void {
    if (this.#state === CLOSED || this.#paused) return;
    this.#paused = true;
    this.#socket.pause();
  }

  resume(): void {
    if (this.#state === CLOSED || !this.#paused) return;
    this.#paused = false;
    this.#socket.resume();
    if (this.#held !== null) queueMicrotask(this.#deliverHeld);
  }

  // --- Bun's socket events ---

  onData(chunk: Uint8Array): void {
    if (this.#state === CLOSED) return;
    // Bun may still hand over what it had read (over TLS: decrypted) when pause() came.
    if (this.#paused || this.#held !== null) (this.#held ??= []).push(chunk);
    else this.#handler!.onData(chunk);
  }

  /** After resume(): what arrived while paused, in order, then a FIN that came behind it. */
  readonly #deliverHeld = (): void => {
    while (this.#held !== null && !this.#paused && this.#state !== CLOSED) {
      const chunk = this.#held.shift()!;
      if (this.#held.length === 0) this.#held = null;
      this.#handler!.onData(chunk);
    }
    if (this.#held === null && this.#endHeld && this.#state !== CLOSED) {
      this.#endHeld = false;
      this.#peerEnd();
    }
  };

  onDrain(): void {
    if (this.#state !== OPEN && this.#state !== FLUSHING) return;
    this.#blocked = false;
    this.#flush();
  }

  /** The peer's FIN (Bun's `end`). */
  onEnd(): void {
    if (this.#state === CLOSED || this.#peerEnded) return;
    if (this.#held !== null) this.#endHeld = true; // after the held data, on resume()
    else this.#peerEnd();
  }

  /** Tells the handler; our side stays open until `end()` (the contract). */
  #peerEnd(): void {
    this.#peerEnded = true;
    this.#handler!.onEnd();
    // Both FINs are out: Bun closes TCP sockets by itself, TLS ones on `end()`.
    if (this.#state === SHUT) this.#socket.end();
  }

  /** Bun's `error`: an exception from a handler, or a failed TLS session. */
  onError(error: Error): void {
    if (this.#state === CLOSED) {
      rethrow(error); // thrown by onClose itself: nothing left to report it to
      return;
    }
    this.#error ??= error;
    this.#close(this.#error);
  }

  onClose(error: Error | undefined): void {
    if (this.#state === CLOSED) return;
    // Nothing more will come: what was held for resume() goes to the handler now.
    const held = this.#held;
    this.#held = null;
    if (held !== null) for (const chunk of held) this.#handler!.onData(chunk);
    // After our FIN, Bun closes a TCP socket on the peer's FIN without calling `end`.
    if ((this.#endHeld || (this.#state === SHUT && error === undefined)) && !this.#peerEnded) {
      this.#peerEnded = true;
      this.#handler!.onEnd();
    }
    this.#finish(error ?? this.#error);
  }

  // --- writing ---

  /** Writes what is queued, in order, until the socket takes no more (then `drain` follows). */
  #flush(): void {
    const socket = this.#socket;
    const queue = this.#queue;
    let head = this.#head;
    let moved = 0;
    while (head < queue.length) {
      const chunk = queue[head];
      const written = socket.write(chunk);
      if (written < 0) break; // closed or shutting down: `close` follows
      moved += written;
      if (written < chunk.length) {
        this.#blocked = true;
        queue[head] = chunk.subarray(written);
        break;
      }
      queue[head++] = EMPTY;
    }
    if (this.#state === CLOSED) return; // closed from inside write(): the queue is gone
    this.#queued -= moved;
    if (head === queue.length) {
      this.#queue = [];
      this.#head = 0;
    } else if (head > 1024 && head * 2 > queue.length) {
      this.#queue = queue.slice(head);
      this.#head = 0;
    } else {
      this.#head = head;
    }
    if (this.#head !== this.#queue.length) return;
    if (this.#state === FLUSHING) this.#shutdown();
    else if (this.#owesDrain && this.#state === OPEN) {
      this.#owesDrain = false;
      this.#handler!.onDrain();
    }
  }

  // --- closing ---

  /** Everything is written: send our FIN and wait for the peer's. */
  #shutdown(): void {
    this.#state = SHUT;
    this.#socket.shutdown();
    // Both FINs are out: close now (Bun would too, a moment later).
    if (this.#peerEnded && this.#state === SHUT) this.#socket.end();
  }

  /** Closes now, dropping the queue; `onClose(error)` once. */
  #close(error: Error | undefined): void {
    if (this.#state === CLOSED) return;
    try {
      this.#finish(error);
    } finally {
      // Bun's `close` callback follows (synchronously) and finds the state Closed.
      // TCP: a graceful close (the peer sees a FIN); TLS: a reset, as close() can wait forever.
      if (this.#tls) this.#socket.terminate();
      else this.#socket.close();
    }
  }

  #finish(error: Error | undefined): void {
    if (this.#state === CLOSED) return;
    this.#state = CLOSED;
    this.#dropQueue();
    this.#owesDrain = false;
    this.#held = null;
    this.#handler?.onClose(error);
  }

  #dropQueue(): void {
    this.#queue = [];
    this.#head = 0;
    this.#queued = 0;
  }
}

const EMPTY = new Uint8Array(0);

// ---------------------------------------------------------------------------------------------
// Errors

/** An Error saying what failed, keeping the cause's `code` (ECONNREFUSED, EADDRINUSE, …). */
function wrapError(message: string, cause: unknown): Error {
  const code = (cause as { code?: unknown } | null)?.code;
  let detail = cause instanceof Error ? cause.message : String(cause);
  if (typeof code === "string" && !detail.includes(code)) detail += ` (${code})`;
  const error = new Error(`${message}: ${detail}`, { cause }) as Error & { code?: string };
  if (typeof code === "string") error.code = code;
  return error;
}

/** `host:port`, IPv6 in brackets. */
function hostPort(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

/** The transport of a connected socket, given to its handler; when `bind` throws, the socket is closed and the error passes on. */
function bound(socket: BunSocket, tls: boolean, settings: Settings, bind: Accept): BunTransport {
  const transport = new BunTransport(socket, tls, settings);
  try {
    transport.attach(bind(transport));
  } catch (e) {
    socket.data = undefined;
    socket.terminate();
    throw e;
  }
  return transport;
}

// ---------------------------------------------------------------------------------------------
// listen

function makeListen(settings: Settings): Listen {
  return (options: ListenOptions, accept) => {
    const tls = options.tls !== undefined;
    let server: Bun.TCPSocketListener<Slot>;
    try {
      if (options.reusePort) checkReusePortPlatform(process.platform);
      server = Bun.listen<Slot>({
        hostname: options.hostname,
        port: options.port,
        // Bun.listen takes it (Linux), though its types list it for connect only.
        ...(options.reusePort ? { reusePort: true } : {}),
        tls: options.tls ? { cert: options.tls.cert, key: options.tls.key } : undefined,
        allowHalfOpen: true, // we decide when to end after the peer's FIN
        socket: {
          binaryType: "uint8array",
          // TLS: called once the handshake is done (no `handshake` callback is given).
          open(socket) {
            try {
              bound(socket, tls, settings, accept);
            } catch (e) {
              rethrow(e); // as an uncaught exception, as Node's `connection` listener would
            }
          },
          data: (socket, chunk) => socket.data?.onData(chunk),
          drain: (socket) => socket.data?.onDrain(),
          end: (socket) => socket.data?.onEnd(),
          error: (socket, error) => socket.data?.onError(error),
          close: (socket, error) => socket.data?.onClose(error),
        },
      });
    } catch (e) {
      return Promise.reject(wrapError(`anyws: cannot listen on ${hostPort(options.hostname, options.port)}`, e));
    }
    let closed = false;
    const listener: Listener = {
      port: server.port,
      hostname: server.hostname,
      close() {
        if (!closed) {
          closed = true;
          server.stop(false); // stop accepting; open connections are left alone
        }
        return Promise.resolve();
      },
    };
    return Promise.resolve(listener);
  };
}

/** Reports `error` as an uncaught exception, outside Bun's socket callbacks (which would catch it). */
function rethrow(error: unknown): void {
  queueMicrotask(() => {
    throw error;
  });
}

// ---------------------------------------------------------------------------------------------
// dial

const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/;
const isIpAddress = (host: string) => host.includes(":") || IPV4.test(host);

/** Bun's client TLS options for the contract's. */
function clientTls(host: string, options: TlsClientOptions): Bun.TLSOptions {
  const name = options.servername ?? host;
  const extra = options.ca === undefined ? [] : Array.isArray(options.ca) ? options.ca : [options.ca];
  return {
    // Bun's `ca` replaces the default roots; the contract adds to them.
    ca: extra.length ? [...rootCertificates, ...extra] : undefined,
    // "" sends no SNI (RFC 6066 allows names only; Bun would send the IP) and still checks the
    // certificate against the IP. An explicit servername is sent and checked as given.
    serverName: isIpAddress(name) && options.servername === undefined ? "" : name,
    rejectUnauthorized: options.rejectUnauthorized !== false,
  };
}

function makeDial(settings: Settings): Dial {
  return (options: DialOptions, bind) =>
    new Promise<Transport>((resolve, reject) => {
      const where = hostPort(options.host, options.port);
      const tls = options.tls !== undefined;
      let settled = false;
      const fail = (error: unknown, what: string) => {
        if (settled) return;
        settled = true;
        reject(wrapError(`anyws: ${what} ${where}`, error));
      };
      const established = (socket: BunSocket) => {
        if (settled) {
          socket.terminate();
          return;
        }
        settled = true;
        try {
          resolve(bound(socket, tls, settings, bind));
        } catch (e) {
          reject(e);
        }
      };
      const handlers: Bun.SocketHandler<Slot> = {
        binaryType: "uint8array",
        open(socket) {
          if (!tls) established(socket);
        },
        data: (socket, chunk) => socket.data?.onData(chunk),
        drain: (socket) => socket.data?.onDrain(),
        end: (socket) => socket.data?.onEnd(),
        error(socket, error) {
          if (socket.data) socket.data.onError(error);
          else {
            fail(error, "TLS failed with");
            socket.terminate();
          }
        },
        close(socket, error) {
          if (socket.data) socket.data.onClose(error);
          else fail(error ?? new Error("the connection closed"), "cannot connect to");
        },
        connectError: (_socket, error) => fail(error, "cannot connect to"),
      };
      if (tls) {
        // With this callback, `open` comes before the handshake and Bun leaves the verdict to us.
        handlers.handshake = (socket, authorized, authorizationError) => {
          if (authorized) established(socket);
          else {
            fail(authorizationError ?? new Error("certificate not trusted"), "TLS: certificate not accepted for");
            socket.terminate();
          }
        };
      }
      Bun.connect<Slot>({
        hostname: options.host,
        port: options.port,
        tls: options.tls ? clientTls(options.host, options.tls) : undefined,
        allowHalfOpen: true,
        socket: handlers,
      }).catch((e: unknown) => fail(e, "cannot connect to"));
    });
}

// ---------------------------------------------------------------------------------------------

const settings: Settings = { highWaterMark: HIGH_WATER_MARK };

export const bunRuntime: Runtime = { name: "bun", listen: makeListen(settings), dial: makeDial(settings) };
