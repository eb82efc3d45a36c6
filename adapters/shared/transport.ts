/**
 * The contract between the runtime adapters and the shared layer. An adapter only moves bytes:
 * it turns its runtime's sockets into `Transport`s and calls a `TransportHandler` for what
 * happens on them. Everything else (the protocol, timers, the API) is written once above it.
 */

/** What the shared layer is told about one byte stream. */
export interface TransportHandler {
  /** Bytes received. The handler takes ownership of `chunk`: the adapter must not reuse its memory. */
  onData(chunk: Uint8Array): void;
  /**
   * The peer ended its side of the stream (TCP FIN, stream end). Our side stays open for writing
   * until `end()`: the transport never ends itself.
   */
  onEnd(): void;
  /** The write buffer has emptied after a `write()` that returned false. */
  onDrain(): void;
  /** The transport is closed for good, after `end()`, `destroy()`, the peer or an error. Called once. */
  onClose(error?: Error): void;
}

/** One byte stream, as the shared layer uses it. */
export interface Transport {
  /**
   * Writes chunks in order, as they are: merging small writes is the session's job
   * (adapters/shared/session.ts), so a transport neither copies chunks together nor waits for
   * more. It keeps references to them until written. Returns false
   * when its buffer is above its high-water mark: the data is still queued, and `onDrain` follows
   * once the buffer is empty. After `end()` or `destroy()`, and once the transport is closed,
   * the chunks are dropped and it returns false (no `onDrain` follows): a write that races with
   * the end is not an error, as a send that races with the peer's close is not one in the core.
   */
  write(chunks: readonly Uint8Array[]): boolean;
  /**
   * Bytes accepted by `write()` and not yet handed to the operating system. Only `write()` makes
   * it grow (the session counts on it: between its writes the amount can only shrink).
   */
  readonly bufferedAmount: number;
  /** `write()` returns false once `bufferedAmount` is over this. The same for the transport's life. */
  readonly highWaterMark: number;
  /**
   * True when the transport holds no reference to a written chunk's memory once `bufferedAmount`
   * no longer counts it (sent or copied): the session then reuses its merge buffers. False where
   * the chunk itself reaches the other end (an in-process pipe).
   */
  readonly releasesChunks: boolean;
  /**
   * Sends what is buffered, then ends our side (TCP: FIN); `onClose` follows once the peer has
   * ended its side too. The transport sets no timer of its own: how long to wait for the peer
   * is the caller's decision (adapters/shared/session.ts: `endTimeout`, then `destroy()`).
   * Calling it again, or after `destroy()`, does nothing.
   */
  end(): void;
  /** Closes at once and drops anything buffered; `onClose` follows (at once or soon). */
  destroy(): void;
  /** Stops reading (the kernel buffers, then TCP flow control pushes back on the peer). */
  pause(): void;
  resume(): void;
  /** The peer's address (IPv6 without brackets) and port; "" and 0 where the stream has none. */
  readonly remoteAddress: string;
  readonly remotePort: number;
  /**
   * Runs a task once every read of the current event-loop turn was handled: the session hands
   * its writes out then, so that what several peers' reads send to this one goes in one write.
   * Absent: at the end of the current tick (a microtask).
   */
  readonly afterReads?: AfterReads;
}

/** Schedules `task` to run once (see `Transport.afterReads`); the same function for every transport of a runtime. */
export type AfterReads = (task: () => void) => void;

/** Server-side TLS: PEM text or bytes. */
export interface TlsServerOptions {
  cert: string | Uint8Array;
  key: string | Uint8Array;
}

/** Client-side TLS. */
export interface TlsClientOptions {
  /** Extra trusted CA certificates (PEM). */
  ca?: string | Uint8Array | (string | Uint8Array)[];
  /** The name to verify and send as SNI; defaults to the host (never an IP address for SNI). */
  servername?: string;
  /** False accepts any certificate (testing only). Default true. */
  rejectUnauthorized?: boolean;
}

export interface ListenOptions {
  port: number;
  hostname: string;
  tls?: TlsServerOptions;
  /** SO_REUSEPORT: other processes may listen on the same port, and the kernel balances connections (Linux only). */
  reusePort?: boolean;
}

/** A listening socket. */
export interface Listener {
  /** The port actually bound (useful with port 0). */
  readonly port: number;
  readonly hostname: string;
  /** Stops accepting; connections already accepted are left alone. */
  close(): Promise<void>;
}

/** Called for each accepted connection; returns the handler its events go to. */
export type Accept = (transport: Transport) => TransportHandler;

/** Listens on a TCP (or TLS) port. Rejects if the port cannot be bound. */
export type Listen = (options: ListenOptions, accept: Accept) => Promise<Listener>;

export interface DialOptions {
  host: string; // a name, an IPv4 address, or an IPv6 address without brackets
  port: number;
  tls?: TlsClientOptions;
}

/**
 * Opens a TCP (or TLS) connection. `bind` is called with the transport before any of its
 * events, and returns the handler for them. Rejects if the connection cannot be made.
 */
export type Dial = (options: DialOptions, bind: (transport: Transport) => TransportHandler) => Promise<Transport>;

/** A runtime's way of listening and dialing. */
export interface Runtime {
  readonly name: string;
  listen: Listen;
  dial: Dial;
}
