/**
 * The Deno, Bun or Node side of tests/interop/cross-runtime.test.ts: that runtime's own WebSocket
 * client or server, run as a child process of the test on another runtime.
 *
 *     deno run --allow-net tests/interop/native_peer.ts '<json parameters>'
 *     bun tests/interop/native_peer.ts '<json parameters>'
 *     tools/node24/node_modules/.bin/node tests/interop/native_peer.ts '<json parameters>'
 *
 * (Node 24 runs the .ts as it is, its types stripped; it has a client only, undici's.)
 *
 * Not a test file (the runners never pick it up) and self-contained: it imports nothing, so it
 * runs the same from a checkout on either runtime, and it names neither runtime's global types
 * (it is type-checked by tsc, which knows Bun's globals but not Deno's, and by `deno check`,
 * which knows Deno's but not Bun's): the little of each API it uses is described below.
 * Parameters come as JSON on argv, the shape of tests/support/scripted-peer.ts' PARAMETERS (bytes as
 * hex, the 1 MiB message from the `bigPattern` formula of tests/support/interop.ts). Reports are
 * JSON lines on stdout, ASCII only; messages described as python_websockets_peer.py does (text
 * exactly, bytes as length, SHA-256 and, when short, hex). The test asserts on them.
 *
 * mode "client": `globalThis.WebSocket` to our server at `url`: sends text, binary and 1 MiB and
 * reports the three echoes; pings with `ping` if the client can (Bun's `ping()`, non-standard)
 * and reports the pong; sends "ping me" (our server pings with `ping2` and says "pinged") and
 * reports what came next and any ping it saw (Bun's "ping" event); closes with `close` and
 * reports the close event; then connects again, sends "close me" and reports how our server
 * closed it. One report line, then exit 0 (or a line {"error": ...} and exit 1).
 *
 * mode "server": Deno.serve + Deno.upgradeWebSocket, or Bun.serve with `websocket` handlers, on
 * 127.0.0.1, port chosen by the system: prints {"port": N}, then echoes messages, closes a
 * connection with `close2` when it receives the text "close me" and prints one report per
 * connection when it closes (messages, pings and pongs seen, the close). Bun's server pings each
 * new connection with `ping2` (Deno's server socket cannot ping). Serves until stdin closes.
 *
 * Either mode gives up and exits 2 after a minute, should the test never end it.
 */

export {}; // a module, for top-level await

// ---- the runtimes, as much as this script uses -------------------------------------------

interface PeerSocket {
  binaryType: string;
  readonly readyState: number;
  send(data: string | ArrayBufferView | ArrayBuffer): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: string, listener: (event: PeerEvent) => void): void;
  /** Bun's client only (non-standard). */
  ping?: (data?: ArrayBufferView) => void;
}
interface PeerEvent {
  data?: unknown;
  code?: number;
  reason?: string;
  wasClean?: boolean;
}
interface DenoApi {
  args: string[];
  version: { deno: string };
  stdin: { readable: ReadableStream<Uint8Array> };
  exit(code: number): never;
  serve(
    options: { hostname: string; port: number; onListen(addr: { port: number }): void },
    handler: (request: Request) => Response,
  ): { shutdown(): Promise<void> };
  upgradeWebSocket(request: Request): { socket: PeerSocket; response: Response };
}
interface BunServerSocket<T> {
  data: T;
  send(data: string | ArrayBufferView): unknown;
  close(code?: number, reason?: string): void;
  ping(data?: ArrayBufferView): unknown;
}
interface BunApi {
  argv: string[];
  version: string;
  stdin: { stream(): ReadableStream<Uint8Array> };
  serve<T>(options: {
    hostname: string;
    port: number;
    fetch(request: Request, server: { upgrade(request: Request, options: { data: T }): boolean }): Response | undefined;
    websocket: {
      perMessageDeflate: boolean;
      open(ws: BunServerSocket<T>): void;
      message(ws: BunServerSocket<T>, message: string | Uint8Array): void;
      ping(ws: BunServerSocket<T>, data: Uint8Array): void;
      pong(ws: BunServerSocket<T>, data: Uint8Array): void;
      close(ws: BunServerSocket<T>, code: number, reason: string): void;
    };
  }): { port: number; stop(closeActiveConnections?: boolean): unknown };
}

const g = globalThis as unknown as {
  Deno?: DenoApi;
  Bun?: BunApi;
  WebSocket?: new (url: string) => PeerSocket;
  process?: { exit(code: number): never; argv: string[]; version: string; versions: { undici?: string } };
};
const deno = g.Deno;
const bun = g.Bun;
const node = deno || bun ? undefined : g.process;
const runtime = deno
  ? `Deno ${deno.version.deno}`
  : bun
  ? `Bun ${bun.version}`
  : node
  ? `Node ${node.version} (undici ${node.versions.undici ?? "?"})`
  : "unknown";

function exit(code: number): never {
  if (deno) deno.exit(code);
  if (g.process) g.process.exit(code);
  throw new Error(`exit ${code}`);
}

// ---- parameters, bytes, reports -----------------------------------------------------------

interface Parameters {
  mode: "client" | "server";
  url?: string;
  text: string;
  binary_hex: string;
  big_size: number;
  ping_hex: string;
  ping2_hex: string;
  close: [number, string];
  close2: [number, string];
}

const hex = (bytes: Uint8Array): string => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");

function fromHex(h: string): Uint8Array {
  const out = new Uint8Array(h.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(h.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** The formula of `bigPattern` in tests/support/interop.ts. */
function bigPattern(size: number): Uint8Array {
  const out = new Uint8Array(size);
  for (let i = 0; i < size; i++) out[i] = (i * 31 + (i >>> 8) * 7 + (i >>> 16)) & 0xff;
  return out;
}

/** Whatever arrived as bytes (ArrayBuffer, a view, a Buffer), copied; null if it is not bytes. */
function bytesOf(data: unknown): Uint8Array | null {
  if (data instanceof ArrayBuffer) return new Uint8Array(data.slice(0));
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice();
  return null;
}

type Described = { text: string } | { length: number; sha256: string; hex?: string } | { unexpected: string };

async function describe(data: unknown): Promise<Described> {
  if (typeof data === "string") return { text: data };
  const bytes = bytesOf(data);
  if (bytes === null) return { unexpected: Object.prototype.toString.call(data) };
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>));
  const out: { length: number; sha256: string; hex?: string } = { length: bytes.length, sha256: hex(digest) };
  if (bytes.length <= 4096) out.hex = hex(bytes);
  return out;
}

function report(value: unknown): void {
  const line = JSON.stringify(value).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
  console.log(line);
}

function timeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${runtime}: timed out after ${ms} ms waiting for ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

// ---- client mode: the runtime's globalThis.WebSocket -------------------------------------

type Close = { code: number; reason: string; wasClean: boolean };

/** The native client, opened, with everything it dispatches queued. */
async function open(url: string) {
  const Native = g.WebSocket;
  if (!Native) throw new Error(`${runtime} has no globalThis.WebSocket`);
  const ws = new Native(url);
  ws.binaryType = "arraybuffer";
  const queue: unknown[] = [];
  const pings: string[] = [];
  const pongs: string[] = [];
  let wake: (() => void) | null = null;
  let resolveClosed!: (close: Close) => void;
  const closed = new Promise<Close>((resolve) => (resolveClosed = resolve));
  let error = "";
  ws.addEventListener("message", (e) => {
    queue.push(e.data);
    wake?.();
  });
  // Bun's client dispatches the pings it answered and the pongs it got (non-standard events).
  ws.addEventListener("ping", (e) => pings.push(hex(bytesOf(e.data) ?? new Uint8Array())));
  ws.addEventListener("pong", (e) => {
    pongs.push(hex(bytesOf(e.data) ?? new Uint8Array()));
    wake?.();
  });
  ws.addEventListener("error", (e) => (error = String((e as { message?: string }).message ?? "error")));
  ws.addEventListener("close", (e) => {
    resolveClosed({ code: e.code ?? -1, reason: e.reason ?? "", wasClean: e.wasClean ?? false });
    wake?.();
  });
  await timeout(
    new Promise<void>((resolve, reject) => {
      ws.addEventListener("open", () => resolve());
      void closed.then((c) => reject(new Error(`${runtime}'s client did not open ${url}: ${error} ${JSON.stringify(c)}`)));
    }),
    10_000,
    `the client to open ${url}`,
  );
  /** Resolves when `ready()` holds (checked on every event). */
  const when = (ready: () => boolean, what: string) =>
    timeout(
      (async () => {
        while (!ready()) await new Promise<void>((resolve) => (wake = resolve));
        wake = null;
      })(),
      10_000,
      what,
    );
  return {
    ws,
    pings,
    pongs,
    closed,
    when,
    /** The next message. */
    async next(what: string): Promise<unknown> {
      await when(() => queue.length > 0, what);
      return queue.shift();
    },
  };
}

async function runClient(p: Parameters): Promise<void> {
  const url = p.url!;
  const result: Record<string, unknown> = { runtime };

  const a = await open(url);
  result.extensions = (a.ws as { extensions?: string }).extensions ?? null;
  a.ws.send(p.text);
  a.ws.send(fromHex(p.binary_hex));
  a.ws.send(bigPattern(p.big_size));
  const echoes = [];
  for (let i = 0; i < 3; i++) echoes.push(await a.next(`echo ${i + 1} of 3`));
  result.echoes = await Promise.all(echoes.map(describe));

  // Our ping, where the client can ping (Bun): our server answers with the same payload.
  result.can_ping = typeof a.ws.ping === "function";
  if (a.ws.ping) {
    a.ws.ping(fromHex(p.ping_hex));
    await a.when(() => a.pongs.length > 0, "the pong to our ping");
  }
  result.pongs = a.pongs.slice();

  // Our server pings on "ping me", then says "pinged"; the client answers by itself.
  a.ws.send("ping me");
  result.after_ping = await describe(await a.next("the message after our server's ping"));
  result.pings = a.pings.slice();

  a.ws.close(p.close[0], p.close[1]);
  result.close_received = await timeout(a.closed, 10_000, "the close event after our close");

  const b = await open(url);
  b.ws.send("close me");
  result.closed_by_server = await timeout(b.closed, 10_000, "our server to close");
  report(result);
}

// ---- server mode: Deno.serve or Bun.serve --------------------------------------------------

interface Connection {
  conn: number;
  request_extensions: string | null;
  messages: Promise<Described>[];
  pings: string[];
  pongs: string[];
}

/** Records a message and echoes it, or closes on "close me". */
function answer(
  p: Parameters,
  c: Connection,
  data: unknown,
  socket: { send(data: string | ArrayBufferView): unknown; close(code: number, reason: string): void },
): void {
  c.messages.push(describe(data));
  if (data === "close me") socket.close(p.close2[0], p.close2[1]);
  else if (typeof data === "string") socket.send(data);
  else socket.send(bytesOf(data) ?? new Uint8Array());
}

async function reportConnection(c: Connection, close: Close): Promise<void> {
  const { messages, ...rest } = c;
  report({ ...rest, messages: await Promise.all(messages), close_received: close });
}

async function runServer(p: Parameters): Promise<void> {
  let count = 0;
  const connection = (request: Request): Connection => ({
    conn: ++count,
    request_extensions: request.headers.get("sec-websocket-extensions"),
    messages: [],
    pings: [],
    pongs: [],
  });

  if (deno) {
    let listening!: (port: number) => void;
    const port = new Promise<number>((resolve) => (listening = resolve));
    const server = deno.serve({ hostname: "127.0.0.1", port: 0, onListen: ({ port }) => listening(port) }, (request) => {
      if (request.headers.get("upgrade")?.toLowerCase() !== "websocket") {
        return new Response("a WebSocket upgrade expected", { status: 426 });
      }
      const c = connection(request);
      const { socket, response } = deno.upgradeWebSocket(request);
      socket.binaryType = "arraybuffer";
      socket.addEventListener("message", (e) => answer(p, c, e.data, socket));
      socket.addEventListener("error", () => {});
      socket.addEventListener("close", (e) => {
        void reportConnection(c, { code: e.code ?? -1, reason: e.reason ?? "", wasClean: e.wasClean ?? false });
      });
      return response;
    });
    report({ port: await port, runtime, can_ping: false });
    for await (const _ of deno.stdin.readable) {
      // serve until the test closes stdin
    }
    await server.shutdown();
    return;
  }

  if (bun) {
    const ping2 = fromHex(p.ping2_hex);
    const server = bun.serve<Connection>({
      hostname: "127.0.0.1",
      port: 0,
      fetch(request, server) {
        if (server.upgrade(request, { data: connection(request) })) return undefined;
        return new Response("a WebSocket upgrade expected", { status: 426 });
      },
      websocket: {
        perMessageDeflate: false,
        open(ws) {
          ws.ping(ping2);
        },
        message(ws, message) {
          answer(p, ws.data, message, ws);
        },
        ping(ws, data) {
          ws.data.pings.push(hex(bytesOf(data) ?? new Uint8Array()));
        },
        pong(ws, data) {
          ws.data.pongs.push(hex(bytesOf(data) ?? new Uint8Array()));
        },
        close(ws, code, reason) {
          // Bun's server reports no wasClean: it calls this for a close frame or a lost connection.
          void reportConnection(ws.data, { code, reason, wasClean: true });
        },
      },
    });
    report({ port: server.port, runtime, can_ping: true });
    const stdin = bun.stdin.stream();
    for await (const _ of stdin) {
      // serve until the test closes stdin
    }
    await server.stop(true);
    return;
  }

  throw new Error(`server mode needs Deno or Bun, not ${runtime}`);
}

// ---- main ----------------------------------------------------------------------------------

const watchdog = setTimeout(() => {
  report({ error: `${runtime}: still running after 60 s, giving up` });
  exit(2);
}, 60_000);

try {
  const argv = deno ? deno.args : bun ? bun.argv.slice(2) : node ? node.argv.slice(2) : [];
  const p = JSON.parse(argv[0] ?? "null") as Parameters | null;
  if (p === null) throw new Error("usage: native_peer.ts '<json parameters>'");
  if (p.mode === "client") await runClient(p);
  else await runServer(p);
  clearTimeout(watchdog);
  exit(0);
} catch (error) {
  report({ error: String((error as Error)?.stack ?? error) });
  exit(1);
}
