/**
 * One port for a web page and its WebSocket endpoint, on every runtime, with anyws's own
 * listener (Deno.listen on Deno, Bun.listen on Bun, node:net on Node).
 *
 * `serve()` only speaks WebSocket: a request without an Upgrade header gets the core's 426. So
 * this file puts a small front in front of a `WebSocketServer`: it reads each connection's
 * request head (bounded in size and time), then either hands the connection — with the bytes
 * read so far — to `WebSocketServer.accept()`, which runs the real handshake exactly as
 * `serve()` would, or answers it as a plain HTTP/1.1 request and closes it.
 *
 * A request goes to the WebSocket server when it has an Upgrade header or asks for the
 * WebSocket path; everything else is the page's. The front does no HTTP beyond that: one
 * request per connection (`Connection: close`), GET and HEAD, bodies ignored. That is all a
 * page with a few static files needs, and it keeps one code path on all three runtimes.
 *
 * This is the shape of the hook anyws could grow in `serve()` itself (a `request` handler for
 * non-upgrade requests); see the report that came with this example.
 */
import {
  type Listener,
  runtime,
  type ServeOptions,
  type ServerHandlers,
  type ShutdownOptions,
  type Transport,
  type TransportHandler,
  WebSocketServer,
} from "../../adapters/auto.ts";

/** A plain HTTP request, as the page handler sees it. */
export interface HttpRequest {
  method: string;
  /** The path, not percent-decoded, always starting with "/". */
  path: string;
  /** The query without "?", "" if none. */
  query: string;
  /** Header names in lower case; repeated fields joined with ", ". */
  headers: Map<string, string>;
  remoteAddress: string;
}

export interface HttpResponse {
  status: number;
  headers?: Record<string, string>;
  body?: string | Uint8Array;
}

export interface SiteOptions extends ServeOptions {
  /** The WebSocket endpoint's path; a request for it without an Upgrade header gets the core's 426. */
  path: string;
  /** Answers every request that is not for the WebSocket server. May throw: that is a 500. */
  request(request: HttpRequest): HttpResponse;
  /** Longest request head accepted, in bytes (431 beyond). Default 16 KiB. */
  maxHeadSize?: number;
  /** Milliseconds a connection has to send its request head (408 after). Default 10,000. */
  headTimeout?: number;
  /** Connections still sending their head, or being answered, at once; more are dropped. Default 512. */
  maxPending?: number;
}

export interface Site<T> {
  /** The WebSocket server: its clients, `publish`, `subscriberCount`. */
  readonly server: WebSocketServer<T>;
  readonly port: number;
  readonly hostname: string;
  /** Stops listening, drops plain HTTP connections, then closes the WebSockets gracefully. */
  close(options?: ShutdownOptions): Promise<void>;
}

const STATUS_TEXT: Record<number, string> = {
  200: "OK",
  304: "Not Modified",
  400: "Bad Request",
  404: "Not Found",
  405: "Method Not Allowed",
  408: "Request Timeout",
  431: "Request Header Fields Too Large",
  500: "Internal Server Error",
  505: "HTTP Version Not Supported",
};

/** Listens on one port for both the page (`options.request`) and the WebSocket (`handlers`). */
export async function serveSite<T = undefined>(options: SiteOptions, handlers: ServerHandlers<T>): Promise<Site<T>> {
  const server = new WebSocketServer<T>(options, handlers);
  const open = new Set<Front<T>>();
  const listener: Listener = await runtime.listen(
    { port: options.port ?? 0, hostname: options.hostname ?? "127.0.0.1", tls: options.tls, reusePort: options.reusePort },
    (transport) => {
      const front = new Front(transport, server, options, open);
      open.add(front);
      if (open.size > (options.maxPending ?? 512)) queueMicrotask(() => front.drop());
      return front;
    },
  );
  return {
    server,
    port: listener.port,
    hostname: listener.hostname,
    async close(shutdown?: ShutdownOptions) {
      await listener.close();
      for (const front of open) front.drop();
      await server.close(shutdown);
    },
  };
}

const CR = 13;
const LF = 10;

/** Reads one connection's request head and decides whose connection it is. */
class Front<T> implements TransportHandler {
  private readonly transport: Transport;
  private readonly server: WebSocketServer<T>;
  private readonly options: SiteOptions;
  private readonly open: Set<Front<T>>;
  private buffer: Uint8Array;
  private size = 0;
  /** The WebSocket server's handler, once the connection is handed over. */
  private handler: TransportHandler | null = null;
  /** Answered as plain HTTP: what still arrives is ignored. */
  private answered = false;
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(transport: Transport, server: WebSocketServer<T>, options: SiteOptions, open: Set<Front<T>>) {
    this.transport = transport;
    this.server = server;
    this.options = options;
    this.open = open;
    this.buffer = new Uint8Array(Math.min(1024, this.maxHead));
    this.timer = setTimeout(() => this.respond({ status: 408, body: "request head timed out\n" }), options.headTimeout ?? 10_000);
  }

  private get maxHead(): number {
    return this.options.maxHeadSize ?? 16 * 1024;
  }

  onData(chunk: Uint8Array): void {
    if (this.handler !== null) return this.handler.onData(chunk);
    if (this.answered) return;
    const from = Math.max(0, this.size - 3);
    if (!this.append(chunk)) {
      this.respond({ status: 431, body: "request head too large\n" });
      return;
    }
    const end = headEnd(this.buffer, from, this.size);
    if (end === -1) return;
    const bytes = this.buffer.subarray(0, this.size);
    const head = parseHead(bytes.subarray(0, end));
    if (typeof head === "number") {
      this.respond({ status: head, body: `${STATUS_TEXT[head] ?? "bad request"}\n` });
    } else if (head.upgrade || head.path === this.options.path) {
      this.handOver(bytes);
    } else {
      this.answer(head);
    }
  }

  onEnd(): void {
    if (this.handler !== null) return this.handler.onEnd();
    if (!this.answered) {
      this.answered = true; // the peer stopped before its head was complete
      clearTimeout(this.timer);
      this.transport.end();
    }
  }

  onDrain(): void {
    this.handler?.onDrain();
  }

  onClose(error?: Error): void {
    clearTimeout(this.timer);
    this.open.delete(this);
    this.handler?.onClose(error);
  }

  /** Shutting down: a connection not handed over is closed now (the WebSocket server closes the rest). */
  drop(): void {
    if (this.handler === null) this.transport.destroy();
  }

  private append(chunk: Uint8Array): boolean {
    const needed = this.size + chunk.length;
    if (needed > this.maxHead) return false;
    if (needed > this.buffer.length) {
      const bigger = new Uint8Array(Math.min(this.maxHead, Math.max(needed, this.buffer.length * 2)));
      bigger.set(this.buffer.subarray(0, this.size));
      this.buffer = bigger;
    }
    this.buffer.set(chunk, this.size);
    this.size = needed;
    return true;
  }

  private handOver(bytes: Uint8Array): void {
    clearTimeout(this.timer);
    this.open.delete(this); // from now on the WebSocket server owns it, and closes it on shutdown
    this.handler = this.server.accept(this.transport);
    this.handler.onData(bytes.slice());
    this.buffer = new Uint8Array(0);
  }

  private answer(head: Head): void {
    const request: HttpRequest = {
      method: head.method,
      path: head.path,
      query: head.query,
      headers: head.headers,
      remoteAddress: this.transport.remoteAddress,
    };
    let response: HttpResponse;
    if (head.method !== "GET" && head.method !== "HEAD") {
      response = { status: 405, headers: { Allow: "GET, HEAD" }, body: "method not allowed\n" };
    } else {
      try {
        response = this.options.request(request);
      } catch (error) {
        console.error("page handler failed:", error);
        response = { status: 500, body: "internal server error\n" };
      }
    }
    this.respond(response, head.method === "HEAD");
  }

  private respond(response: HttpResponse, headOnly = false): void {
    if (this.answered || this.handler !== null) return;
    this.answered = true;
    clearTimeout(this.timer);
    const body: Uint8Array = typeof response.body === "string"
      ? new TextEncoder().encode(response.body)
      : response.body ?? new Uint8Array(0);
    const headers: Record<string, string> = {
      "Content-Type": "text/plain; charset=utf-8",
      ...response.headers,
      "Content-Length": String(body.length),
      Connection: "close",
    };
    let head = `HTTP/1.1 ${response.status} ${STATUS_TEXT[response.status] ?? "Unknown"}\r\n`;
    for (const [name, value] of Object.entries(headers)) head += `${name}: ${value}\r\n`;
    const chunks: Uint8Array[] = [new TextEncoder().encode(head + "\r\n")];
    if (!headOnly && body.length !== 0) chunks.push(body);
    this.buffer = new Uint8Array(0);
    this.transport.write(chunks);
    this.transport.end();
  }
}

interface Head {
  method: string;
  path: string;
  query: string;
  headers: Map<string, string>;
  upgrade: boolean;
}

/** Index just past the CRLFCRLF (or LFLF) that ends the head, searching from `from`; -1 if none yet. */
function headEnd(bytes: Uint8Array, from: number, size: number): number {
  for (let i = from; i < size; i++) {
    if (bytes[i] !== LF) continue;
    if (i >= 1 && bytes[i - 1] === LF) return i + 1;
    if (i >= 3 && bytes[i - 1] === CR && bytes[i - 2] === LF && bytes[i - 3] === CR) return i + 1;
  }
  return -1;
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/**
 * Just enough of RFC 9112 to route a request: the request line and the header fields. A
 * WebSocket request is checked again, fully, by the core's handshake parser.
 */
function parseHead(bytes: Uint8Array): Head | number {
  let text = "";
  for (let i = 0; i < bytes.length; i++) text += String.fromCharCode(bytes[i]); // latin1, bounded by maxHeadSize
  const lines = text.split(/\r?\n/);
  while (lines.length && lines[lines.length - 1] === "") lines.pop();
  const requestLine = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+) (\S+) HTTP\/(\d)\.(\d)$/.exec(lines[0] ?? "");
  if (!requestLine) return 400;
  if (requestLine[3] !== "1") return 505;
  const [, method, target] = requestLine;
  if (!target.startsWith("/")) return 400;
  const q = target.indexOf("?");
  const headers = new Map<string, string>();
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(":");
    if (colon <= 0) return 400;
    const name = line.slice(0, colon).toLowerCase();
    if (!TOKEN.test(name)) return 400;
    const value = line.slice(colon + 1).trim();
    const previous = headers.get(name);
    headers.set(name, previous === undefined ? value : `${previous}, ${value}`);
  }
  return {
    method,
    path: q === -1 ? target : target.slice(0, q),
    query: q === -1 ? "" : target.slice(q + 1),
    headers,
    upgrade: headers.has("upgrade"),
  };
}
