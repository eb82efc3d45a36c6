/**
 * The Deno adapter: `Deno.listen` / `Deno.listenTls` for servers, `Deno.connect` (+
 * `Deno.startTls`) for clients. It only moves bytes: each `Deno.Conn` becomes a `ByteChannel`
 * over `Conn#read` / `Conn#write`, driven by the shared channel transport
 * (adapters/shared/channel.ts), as the Web Streams adapter is.
 *
 * Why `read()`/`write()` and not `conn.readable`/`conn.writable`: the readable allocates a fresh
 * 64 KiB buffer per read, however few bytes arrived, so small round trips cost more through it
 * (bench/NOTES.md, Adapters). Closing `conn.writable` also closes the whole connection, where
 * `end()` needs a half-close (`closeWrite()`) to keep receiving the peer's last bytes.
 *
 * Reads go into one reused buffer (4 KiB, growing to 128 KiB while reads fill it). A read that
 * filled less than three quarters of it is copied out (exactly its size); a bigger one is handed
 * over whole and a new buffer is allocated. So `onData` always owns its chunk, and a small chunk
 * never pins a big buffer. Conn#write is done with the bytes once it resolves
 * (`writeReleasesChunk`).
 *
 * Known limits of Deno 2.9 (documented, not worked around):
 * - `Deno.listenTls` connections expose no `setNoDelay()`, and Deno leaves Nagle's algorithm on:
 *   on the server side of TLS, a small write that follows an unacknowledged one waits for the
 *   peer's (possibly delayed, up to ~40 ms) ACK. Plain TCP connections and TLS clients (connected
 *   over TCP with `setNoDelay(true)`, then `Deno.startTls`) are not affected.
 * - There is no per-connection way to skip certificate verification. With
 *   `rejectUnauthorized: false` only the hostname check is disabled; the chain is still verified
 *   unless Deno runs with `--unsafely-ignore-certificate-errors`, and an untrusted certificate
 *   makes `dial` reject with an error saying so.
 */
import type {
  Dial,
  Listen,
  Listener,
  Runtime,
  TlsClientOptions,
  Transport,
  TransportHandler,
} from "../shared/transport.ts";
import { checkReusePortPlatform } from "../shared/reuse-port.ts";
import { type ByteChannel, createTransport } from "../shared/channel.ts";

/** Reads start this small (an idle connection keeps its pending read's buffer: many of them add up)… */
const MIN_READ_SIZE = 4 * 1024;
/**
 * …and grow fourfold each time a read fills the buffer, up to this. Not 64 KiB: a burst is often
 * 64 KiB and a few bytes (4 frames of 16 KiB + 4-byte headers are 65552), and a 64 KiB read left
 * those for a second read and split a frame across chunks, which the core then copies together.
 */
const MAX_READ_SIZE = 128 * 1024;
/** This many reads in a row that fill less than an eighth of a grown buffer shrink it back. */
const SHRINK_AFTER = 16;
/** How long an accepted TLS connection may take to finish its handshake. */
const TLS_HANDSHAKE_TIMEOUT = 10_000;
/** Pause before accepting again after an unexpected accept error (EMFILE and the like). */
const ACCEPT_RETRY_DELAY = 100;

/** A `ByteChannel` over `Conn#read` / `Conn#write` / `Conn#closeWrite`. */
function connChannel(conn: Deno.Conn): ByteChannel {
  let size = MIN_READ_SIZE;
  let buffer = new Uint8Array(size);
  let smallReads = 0;
  let pendingWrite: Promise<void> | undefined;
  const writeAll = async (chunk: Uint8Array): Promise<void> => {
    // Conn#write may take only part of the chunk.
    let offset = await conn.write(chunk);
    while (offset < chunk.length) offset += await conn.write(chunk.subarray(offset));
  };
  return {
    async read() {
      for (;;) {
        const n = await conn.read(buffer);
        if (n === null) return null;
        if (n === 0) continue;
        if (n === size && size < MAX_READ_SIZE) {
          // Full: more is probably waiting. Hand this buffer over and read bigger from now on.
          size = Math.min(size * 4, MAX_READ_SIZE);
          smallReads = 0;
          const chunk = buffer;
          buffer = new Uint8Array(size);
          return chunk;
        }
        if (size > MIN_READ_SIZE && n < size / 8 && ++smallReads >= SHRINK_AFTER) {
          size = Math.max(size / 4, MIN_READ_SIZE);
          smallReads = 0;
          const chunk = buffer.slice(0, n);
          buffer = new Uint8Array(size);
          return chunk;
        }
        // Handing over costs a new zeroed buffer of `size`, so a read that filled less than three
        // quarters of it is cheaper copied out.
        if (n < (size * 3) / 4) return buffer.slice(0, n);
        smallReads = 0;
        const chunk = buffer.subarray(0, n);
        buffer = new Uint8Array(size);
        return chunk;
      }
    },
    write(chunk) {
      pendingWrite = writeAll(chunk);
      return pendingWrite;
    },
    closeWrite: () => conn.closeWrite(),
    writeReleasesChunk: true,
    close() {
      try {
        conn.close();
      } catch {
        // already closed
      }
      // Closing settles a pending read or write at once; let onClose wait for them, so no
      // operation outlives it.
      return pendingWrite;
    },
  };
}

/**
 * A `Transport` over an open `Deno.Conn` (TCP or TLS), for every connection of the runtime below.
 * It gives no `afterReads`, so the session hands its writes out at the end of the tick: with
 * `setImmediate` a client flooding without reading kept the server reading past
 * closeOnBackpressureLimit (tests/hostile/flood.test.ts).
 */
function connTransport(conn: Deno.Conn, bind: (t: Transport) => TransportHandler): Transport {
  // A NetAddr for TCP and TLS (a connection from Deno.startTls has no `transport` field).
  const addr = conn.remoteAddr as Partial<Deno.NetAddr>;
  const net = typeof addr.hostname === "string" ? addr : undefined;
  return createTransport(connChannel(conn), bind, { remoteAddress: net?.hostname ?? "", remotePort: net?.port ?? 0 });
}

function pem(text: string | Uint8Array): string {
  return typeof text === "string" ? text : new TextDecoder().decode(text);
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // already closed
  }
}

/** Runs an accepted TLS connection's handshake, bounded in time. */
async function serverHandshake(conn: Deno.TlsConn): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      closeQuietly(conn); // also makes handshake() reject
      reject(new Error("TLS handshake timed out"));
    }, TLS_HANDSHAKE_TIMEOUT);
  });
  try {
    await Promise.race([conn.handshake(), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

const listen: Listen = async (options, accept) => {
  const { hostname, port, tls } = options;
  const reusePort = options.reusePort === true;
  if (reusePort) {
    checkReusePortPlatform(Deno.build.os);
    // Deno exits the process (it does not throw) on reusePort without --unstable-net; the unstable
    // net APIs, `listenDatagram` among them, exist exactly when that flag is on.
    if (typeof (Deno as { listenDatagram?: unknown }).listenDatagram !== "function") {
      throw new Error("anyws: reusePort on Deno needs the --unstable-net flag (or \"unstable\": [\"net\"] in deno.json)");
    }
  }
  const listener: Deno.Listener = tls
    ? Deno.listenTls({ hostname, port, cert: pem(tls.cert), key: pem(tls.key), ...(reusePort ? { reusePort } : {}) })
    : Deno.listen({ hostname, port, ...(reusePort ? { reusePort } : {}) });
  const addr = listener.addr as Deno.NetAddr;
  let closed = false;
  let wakeRetry: (() => void) | undefined;

  const start = (conn: Deno.Conn): void => {
    try {
      connTransport(conn, accept);
    } catch {
      // `accept` threw: createTransport has closed the connection; keep listening.
    }
  };

  const acceptLoop = async (): Promise<void> => {
    while (!closed) {
      let conn: Deno.Conn;
      try {
        conn = await listener.accept();
      } catch (error) {
        if (closed || error instanceof Deno.errors.BadResource || error instanceof Deno.errors.Interrupted) return;
        // Out of file descriptors or the like: try again shortly, the listener itself is fine.
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, ACCEPT_RETRY_DELAY);
          wakeRetry = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        wakeRetry = undefined;
        continue;
      }
      if (tls) {
        // Deno runs the TLS handshake lazily: run it here, so that `accept` only sees
        // connections that completed it, and one client's failure costs only that client.
        serverHandshake(conn as Deno.TlsConn).then(
          () => start(conn),
          () => closeQuietly(conn),
        );
      } else {
        try {
          (conn as Deno.TcpConn).setNoDelay(true);
        } catch {
          // the connection is already gone: its first read will say so
        }
        start(conn);
      }
    }
  };
  const loop = acceptLoop();

  const result: Listener = {
    port: addr.port,
    hostname: addr.hostname,
    async close() {
      closed = true;
      try {
        listener.close();
      } catch {
        // already closed
      }
      wakeRetry?.();
      await loop;
    },
  };
  return result;
};

/** `error` with the address it was about, keeping the original as `cause` and its `code`. */
function dialError(what: string, host: string, port: number, error: unknown): Error {
  const message = error instanceof Error ? error.message : String(error);
  const where = host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
  const wrapped = new Error(`anyws: ${what} ${where}: ${message}`, { cause: error });
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === "string") (wrapped as Error & { code: string }).code = code;
  return wrapped;
}

async function startTls(conn: Deno.TcpConn, host: string, port: number, tls: TlsClientOptions): Promise<Deno.TlsConn> {
  const ca = tls.ca === undefined ? [] : Array.isArray(tls.ca) ? tls.ca : [tls.ca];
  const insecure = tls.rejectUnauthorized === false;
  let tlsConn: Deno.TlsConn | undefined;
  try {
    tlsConn = await Deno.startTls(conn, {
      // The name to verify and send as SNI (rustls sends no SNI for an IP address).
      hostname: tls.servername ?? host,
      caCerts: ca.map(pem),
      unsafelyDisableHostnameVerification: insecure,
    });
    await tlsConn.handshake();
    return tlsConn;
  } catch (error) {
    closeQuietly(tlsConn ?? conn);
    if (insecure && error instanceof Error && /certificate/i.test(error.message)) {
      throw dialError(
        "rejectUnauthorized: false cannot skip certificate verification on Deno (only the hostname check); " +
          "pass the issuing CA in tls.ca, or run Deno with --unsafely-ignore-certificate-errors. TLS to",
        host,
        port,
        error,
      );
    }
    throw dialError("TLS handshake failed with", host, port, error);
  }
}

const dial: Dial = async (options, bind) => {
  const { host, port, tls } = options;
  let tcp: Deno.TcpConn;
  try {
    tcp = await Deno.connect({ hostname: host, port });
  } catch (error) {
    throw dialError("cannot connect to", host, port, error);
  }
  tcp.setNoDelay(true); // before TLS wraps it: a TlsConn has no setNoDelay()
  const conn = tls ? await startTls(tcp, host, port, tls) : tcp;
  return connTransport(conn, bind);
};

/** Listening and dialing with Deno's own APIs. */
export const denoRuntime: Runtime = { name: "deno", listen, dial };
