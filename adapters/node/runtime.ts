/**
 * Node's byte-moving layer: `node:net` and `node:tls` sockets as `Transport`s (the contract in
 * adapters/shared/transport.ts). No protocol logic lives here.
 */
import { Buffer } from "node:buffer";
import * as net from "node:net";
import process from "node:process";
import * as tls from "node:tls";
import type {
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
 * Wraps an already-connected socket. `bind` gets the transport before any of its events.
 * The socket is switched to half-open mode: after the peer's FIN our side stays writable until
 * `end()`.
 */
export function socketTransport(socket: net.Socket | tls.TLSSocket, bind: (transport: Transport) => TransportHandler): Transport {
  return new SocketTransport(socket, bind);
}

/**
 * The check phase, after every read of the loop turn was handled: the session hands its writes
 * out there, so what several peers' reads send to one socket goes in one write.
 */
const afterLoopReads: AfterReads = (task) => {
  setImmediate(task);
};

const kTransport = Symbol("anyws transport");

function transportOf(socket: net.Socket): SocketTransport {
  return (socket as net.Socket & { [kTransport]: SocketTransport })[kTransport];
}

class SocketTransport implements Transport {
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly #socket: net.Socket;
  readonly #handler: TransportHandler;
  #awaitingDrain = false;
  #closed = false;
  #error: Error | undefined;

  constructor(socket: net.Socket, bind: (t: Transport) => TransportHandler) {
    this.#socket = socket;
    this.remoteAddress = socket.remoteAddress ?? "";
    this.remotePort = socket.remotePort ?? 0;
    socket.allowHalfOpen = true; // the session decides when to end after the peer's FIN
    socket.setNoDelay(true);
    try {
      this.#handler = bind(this);
    } catch (e) {
      socket.destroy();
      throw e;
    }
    this.#error = socket.errored ?? undefined;
    this.#listen();
    if (socket.closed) process.nextTick(() => this.#onClose()); // 'close' came before us
  }

  get bufferedAmount(): number {
    return this.#socket.writableLength;
  }

  get highWaterMark(): number {
    return this.#socket.writableHighWaterMark;
  }

  /** Node drops its reference to a chunk once libuv has written it, when `writableLength` drops. */
  readonly releasesChunks = true;

  readonly afterReads = afterLoopReads;

  write(chunks: readonly Uint8Array[]): boolean {
    const socket = this.#socket;
    if (!socket.writable) return false; // after end(), destroy() or the close: dropped (the contract)
    if (chunks.length === 1) socket.write(chunks[0]);
    else {
      // The chunks of one call go out in one writev, as they are.
      socket.cork();
      for (const chunk of chunks) if (chunk.byteLength > 0) socket.write(chunk);
      socket.uncork();
    }
    const ok = !socket.writableNeedDrain;
    if (!ok) this.#awaitingDrain = true;
    return ok;
  }

  end(): void {
    const socket = this.#socket;
    if (socket.destroyed || socket.writableEnded) return;
    socket.end(); // flushes (and uncorks) what is buffered, then FIN
  }

  destroy(): void {
    this.#socket.destroy();
  }

  pause(): void {
    this.#socket.pause();
  }

  resume(): void {
    this.#socket.resume();
  }

  /**
   * One set of listener functions for every socket (each finds its transport through
   * `kTransport`), instead of five closures per connection: a server holds many idle ones.
   */
  #listen(): void {
    const socket = this.#socket as net.Socket & { [kTransport]?: SocketTransport };
    socket[kTransport] = this;
    socket.on("data", SocketTransport.#socketData);
    socket.on("end", SocketTransport.#socketEnd);
    socket.on("drain", SocketTransport.#socketDrain);
    socket.on("error", SocketTransport.#socketError);
    socket.on("close", SocketTransport.#socketClose);
  }

  static #socketData(this: net.Socket, data: Buffer): void {
    transportOf(this).#handler.onData(asUint8Array(data));
  }

  static #socketEnd(this: net.Socket): void {
    transportOf(this).#onEnd();
  }

  static #socketDrain(this: net.Socket): void {
    transportOf(this).#onDrain();
  }

  static #socketError(this: net.Socket, error: Error): void {
    transportOf(this).#error ??= error;
  }

  static #socketClose(this: net.Socket): void {
    transportOf(this).#onClose();
  }

  #onEnd(): void {
    this.#handler.onEnd();
  }

  #onDrain(): void {
    if (!this.#awaitingDrain) return;
    this.#awaitingDrain = false;
    this.#handler.onDrain();
  }

  #onClose(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#handler.onClose(this.#error);
  }
}

/**
 * A plain Uint8Array view of a Buffer (no copy). Node allocates a fresh Buffer for each read;
 * the view spares the shared layer Buffer's different `slice` (a view, not a copy).
 */
function asUint8Array(data: Buffer): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/** PEM text or bytes as Node's TLS options take them (no copy). */
function pem(value: string | Uint8Array): string | Buffer {
  return typeof value === "string" ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
}

export const listen: Listen = async (options, accept) => {
  if (options.reusePort) checkReusePort();
  const server = createServer(options);
  server.on(options.tls ? "secureConnection" : "connection", (socket: net.Socket) => {
    socketTransport(socket, accept);
  });
  await bindServer(server, options);
  server.on("error", () => {}); // e.g. EMFILE on accept: the server keeps listening
  return listener(server);
};

function createServer(options: ListenOptions): net.Server {
  const common = { allowHalfOpen: true, noDelay: true };
  if (!options.tls) return net.createServer(common);
  return tls.createServer({ ...common, cert: pem(options.tls.cert), key: pem(options.tls.key) });
}

function bindServer(server: net.Server, options: ListenOptions): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    const listenOptions: net.ListenOptions = { port: options.port, host: options.hostname };
    if (options.reusePort) listenOptions.reusePort = true;
    server.listen(listenOptions, () => {
      server.off("error", reject);
      resolve();
    });
  });
}

/**
 * Node takes `reusePort` from 22.12 and 23.1 on; an older Node would ignore it and fail to bind
 * the second process with EADDRINUSE.
 */
function checkReusePort(): void {
  checkReusePortPlatform(process.platform);
  const [major, minor] = process.versions.node.split(".").map(Number) as [number, number];
  if (major < 22 || (major === 22 && minor < 12) || (major === 23 && minor < 1)) {
    throw new Error(`anyws: reusePort needs Node >= 22.12 (or >= 23.1); this is Node ${process.versions.node}`);
  }
}

function listener(server: net.Server): Listener {
  const address = server.address() as net.AddressInfo;
  return {
    port: address.port,
    hostname: address.address,
    close() {
      // The listening socket closes now; the server's own callback would wait for every connection.
      server.close(() => {});
      return Promise.resolve();
    },
  };
}

export const dial: Dial = (options, bind) =>
  new Promise((resolve, reject) => {
    const socket = options.tls ? connectTls(options, options.tls) : net.connect(connectOptions(options));
    const fail = (error: Error) => {
      socket.destroy();
      reject(error);
    };
    socket.once("error", fail);
    socket.once(options.tls ? "secureConnect" : "connect", () => {
      socket.off("error", fail);
      try {
        resolve(socketTransport(socket, bind));
      } catch (e) {
        reject(e);
      }
    });
  });

function connectOptions(options: DialOptions): net.NetConnectOpts {
  return { host: options.host, port: options.port, allowHalfOpen: true, noDelay: true };
}

/** SNI only for names (RFC 6066 forbids IP addresses); the certificate is checked against the name or IP either way. */
function connectTls(options: DialOptions, tlsOptions: TlsClientOptions): tls.TLSSocket {
  const name = tlsOptions.servername ?? options.host;
  return tls.connect({
    ...connectOptions(options),
    servername: net.isIP(name) ? undefined : name,
    checkServerIdentity: (_host, cert) => tls.checkServerIdentity(name, cert),
    secureContext: tlsOptions.ca === undefined ? undefined : contextWithExtraCa(tlsOptions.ca),
    rejectUnauthorized: tlsOptions.rejectUnauthorized ?? true,
  });
}

/** Secure contexts trusting Node's root CAs plus extra ones, by their PEM text, because building one parses every root CA. */
const extraCaContexts = new Map<string, tls.SecureContext>();
const MAX_CACHED_CONTEXTS = 16;

function contextWithExtraCa(ca: NonNullable<TlsClientOptions["ca"]>): tls.SecureContext {
  const pems = [ca].flat().map((c) => (typeof c === "string" ? c : Buffer.from(c).toString("latin1")));
  const key = pems.join("\n");
  let context = extraCaContexts.get(key);
  if (!context) {
    // Node's `ca` replaces the default roots; the contract adds to them.
    context = tls.createSecureContext({ ca: [...defaultCas(), ...pems] });
    if (extraCaContexts.size >= MAX_CACHED_CONTEXTS) extraCaContexts.delete(extraCaContexts.keys().next().value!);
    extraCaContexts.set(key, context);
  }
  return context;
}

/** Node's default trust (with NODE_EXTRA_CA_CERTS, system store if enabled) where it can say; else its bundled roots. */
function defaultCas(): readonly string[] {
  return typeof tls.getCACertificates === "function" ? tls.getCACertificates("default") : tls.rootCertificates;
}

export const nodeRuntime: Runtime = { name: "node", listen, dial };
