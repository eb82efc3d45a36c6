/**
 * The fuzzing server: listens on the runtime's raw transport (`runtime.listen`); any client
 * implementation is pointed at it, one connection per case, as with Autobahn's fuzzingserver:
 *
 *   ws://HOST:PORT/getCaseCount                       a text message: the number of cases
 *   ws://HOST:PORT/getCaseInfo?case=N                 a text message: {"id", "description"} (JSON)
 *   ws://HOST:PORT/runCase?case=N&agent=NAME          runs case N (1-based) against the client
 *   ws://HOST:PORT/runCase?casetuple=6.4.1&agent=NAME runs a case by its id
 *
 * A client under test echoes every message it receives (text as text, binary as binary) until
 * the connection closes. `&fragmentSize=N` on runCase says the client sends in frames of N
 * octets (section 10). The results are kept per agent.
 */
import { runtime } from "../../adapters/auto.ts";
import type { Listener, Transport, TransportHandler } from "../../adapters/shared/transport.ts";
import { type CaseDef, type CaseResult, DEFAULT_SETTINGS, notRun, Session, type Settings } from "./session.ts";
import { answerOffer, type Negotiated } from "./deflate.ts";
import { acceptFor, closePayload, frameBytes, HeadReader, headerHasToken, type HttpHead, OP, Random, textEncoder } from "./wire.ts";

export interface FuzzingServerOptions {
  cases: readonly CaseDef[];
  port?: number;
  hostname?: string;
  settings?: Partial<Settings>;
  onResult?(agent: string, result: CaseResult): void;
}

export interface FuzzingServer {
  readonly port: number;
  /** ws://host:port */
  readonly url: string;
  readonly cases: readonly CaseDef[];
  readonly settings: Settings;
  /** The URL a client under test opens to run `c`. */
  caseUrl(c: CaseDef, agent: string, options?: { fragmentSize?: number }): string;
  /** The result of case `id` for `agent`, once its connection is closed. */
  result(agent: string, id: string): Promise<CaseResult>;
  /** The results of `agent` so far, in case order. */
  results(agent: string): CaseResult[];
  close(): Promise<void>;
}

export async function startFuzzingServer(options: FuzzingServerOptions): Promise<FuzzingServer> {
  const settings: Settings = { ...DEFAULT_SETTINGS, ...options.settings };
  const random = new Random(settings.seed);
  const cases = options.cases;
  const byId = new Map(cases.map((c) => [c.id, c]));
  const results = new Map<string, Map<string, CaseResult>>();
  const waiters = new Map<string, ((r: CaseResult) => void)[]>();
  const open = new Set<Transport>();

  const record = (agent: string, r: CaseResult) => {
    let map = results.get(agent);
    if (!map) results.set(agent, (map = new Map()));
    map.set(r.id, r);
    options.onResult?.(agent, r);
    const key = `${agent}\n${r.id}`;
    for (const w of waiters.get(key) ?? []) w(r);
    waiters.delete(key);
  };

  const accept = (transport: Transport): TransportHandler => {
    open.add(transport);
    const head = new HeadReader();
    let inner: TransportHandler | null = null;
    const reject = (status: string, body: string) => {
      transport.write([textEncoder.encode(`HTTP/1.1 ${status}\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`)]);
      transport.end();
    };
    return {
      onData(chunk) {
        if (inner) return inner.onData(chunk);
        let request: HttpHead | null;
        try {
          request = head.push(chunk);
        } catch (error) {
          return reject("431 Request Header Fields Too Large", (error as Error).message);
        }
        if (request === null) return;
        const [method, target, version] = request.startLine.split(" ");
        const h = request.headers;
        const key = h.get("sec-websocket-key") ?? "";
        if (method !== "GET" || version !== "HTTP/1.1") return reject("400 Bad Request", "not a GET HTTP/1.1 request");
        if (h.get("upgrade")?.toLowerCase() !== "websocket" || !headerHasToken(h.get("connection"), "upgrade")) {
          return reject("400 Bad Request", "not a WebSocket upgrade");
        }
        if (h.get("sec-websocket-version") !== "13") return reject("426 Upgrade Required", "version 13 only");
        if (!/^[A-Za-z0-9+/]{22}==$/.test(key)) return reject("400 Bad Request", "bad Sec-WebSocket-Key");
        const url = new URL(target ?? "/", "http://fuzzingserver");
        const q = url.searchParams;
        const switching = (deflate: Negotiated | null = null) =>
          transport.write([textEncoder.encode(
            `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptFor(key)}\r\n` +
              (deflate ? `Sec-WebSocket-Extensions: ${deflate.header}\r\n` : "") + "\r\n",
          )]);
        if (url.pathname === "/getCaseCount" || url.pathname === "/getCaseInfo" || url.pathname === "/updateReports") {
          let text: string | null = null;
          if (url.pathname === "/getCaseCount") text = String(cases.length);
          if (url.pathname === "/getCaseInfo") {
            const c = cases[Number(q.get("case")) - 1];
            text = JSON.stringify(c ? { id: c.id, description: c.description } : null);
          }
          switching();
          inner = answerAndClose(transport, text, 1000, "");
          return;
        }
        if (url.pathname !== "/runCase") return reject("404 Not Found", "use /runCase, /getCaseCount or /getCaseInfo");
        const agent = q.get("agent") ?? "unknown";
        const c = q.has("casetuple") ? byId.get(q.get("casetuple")!) : cases[Number(q.get("case")) - 1];
        if (!c) return reject("404 Not Found", "no such case");
        const deflate = c.deflate && !c.pending ? answerOffer(c.deflate, h.get("sec-websocket-extensions")) : null;
        switching(deflate);
        const skipped = c.pending
          ? notRun(c, "PENDING", c.pending)
          : (c.messageSize ?? 0) > settings.maxMessageSize
          ? notRun(c, "SKIPPED", `messages of ${c.messageSize} B are above the run's limit of ${settings.maxMessageSize} B`)
          : null;
        if (skipped) {
          inner = answerAndClose(transport, null, 1000, skipped.verdict);
          record(agent, skipped);
          return;
        }
        const fragmentSize = q.has("fragmentSize") ? Number(q.get("fragmentSize")) : undefined;
        const session = new Session({ role: "server", def: c, transport, settings, random, peerFragmentSize: fragmentSize, deflate });
        inner = session;
        void session.done.then((r) => record(agent, r));
        session.start(request.rest);
      },
      onEnd() {
        if (inner) return inner.onEnd();
        transport.end();
      },
      onDrain() {
        inner?.onDrain();
      },
      onClose(error) {
        open.delete(transport);
        inner?.onClose(error);
      },
    };
  };

  const hostname = options.hostname ?? "127.0.0.1";
  const listener: Listener = await runtime.listen({ port: options.port ?? 0, hostname }, accept);
  const base = `ws://${hostname.includes(":") ? `[${hostname}]` : hostname}:${listener.port}`;
  return {
    port: listener.port,
    url: base,
    cases,
    settings,
    caseUrl(c, agent, o = {}) {
      const fragment = o.fragmentSize !== undefined ? `&fragmentSize=${o.fragmentSize}` : "";
      return `${base}/runCase?casetuple=${encodeURIComponent(c.id)}&agent=${encodeURIComponent(agent)}${fragment}`;
    },
    result(agent, id) {
      const done = results.get(agent)?.get(id);
      if (done) return Promise.resolve(done);
      return new Promise((resolve) => {
        const key = `${agent}\n${id}`;
        waiters.set(key, [...(waiters.get(key) ?? []), resolve]);
      });
    },
    results(agent) {
      const map = results.get(agent) ?? new Map<string, CaseResult>();
      return cases.filter((c) => map.has(c.id)).map((c) => map.get(c.id)!);
    },
    async close() {
      await listener.close();
      for (const t of open) t.destroy();
    },
  };
}

/** After the 101: an optional text message, a close frame, then TCP closes once the client answers. */
function answerAndClose(transport: Transport, text: string | null, code: number, reason: string): TransportHandler {
  const frames = [];
  if (text !== null) frames.push(frameBytes(OP.TEXT, textEncoder.encode(text), true, 0, null));
  frames.push(frameBytes(OP.CLOSE, closePayload(code, reason), true, 0, null));
  transport.write(frames);
  const timer = setTimeout(() => transport.destroy(), 2000);
  return {
    onData() {
      transport.end(); // the client's close frame (or anything): we are done
    },
    onEnd() {
      transport.end();
    },
    onDrain() {},
    onClose() {
      clearTimeout(timer);
    },
  };
}
