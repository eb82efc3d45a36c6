/**
 * The fuzzing client: connects to any ws:// URL and runs cases against the server there, one
 * connection per case, over the runtime's raw transport (`runtime.dial`). The opening handshake
 * is its own (RFC 6455 §4.1); every frame after it is written byte for byte by the case.
 */
import { runtime } from "../../adapters/auto.ts";
import type { Transport, TransportHandler } from "../../adapters/shared/transport.ts";
import { type CaseDef, type CaseResult, DEFAULT_SETTINGS, notRun, Session, type Settings } from "./session.ts";
import { checkAnswer, type Negotiated, offerHeader } from "./deflate.ts";
import { acceptFor, HeadReader, headerHasToken, type HttpHead, Random, textEncoder } from "./wire.ts";

export interface FuzzingClientOptions {
  /** The server under test, e.g. "ws://127.0.0.1:9001/". */
  url: string;
  /** Where to run the cases that need the peer to fragment (section 10); default `url`. */
  fragmentingUrl?: string;
  /** The fragment size the server at `fragmentingUrl` sends with; unset: it does not fragment. */
  peerFragmentSize?: number;
  settings?: Partial<Settings>;
  /** Called after each case. */
  onResult?(result: CaseResult): void;
}

/** Runs `cases` one after the other; PENDING and SKIPPED ones are reported without connecting. */
export async function runFuzzingClient(cases: readonly CaseDef[], options: FuzzingClientOptions): Promise<CaseResult[]> {
  const settings: Settings = { ...DEFAULT_SETTINGS, ...options.settings };
  const random = new Random(settings.seed);
  const results: CaseResult[] = [];
  for (const c of cases) {
    const result = await runClientCase(c, options, settings, random);
    results.push(result);
    options.onResult?.(result);
  }
  return results;
}

async function runClientCase(c: CaseDef, options: FuzzingClientOptions, settings: Settings, random: Random): Promise<CaseResult> {
  if (c.pending) return notRun(c, "PENDING", c.pending);
  if ((c.messageSize ?? 0) > settings.maxMessageSize) {
    return notRun(c, "SKIPPED", `messages of ${c.messageSize} B are above the run's limit of ${settings.maxMessageSize} B`);
  }
  const fragmenting = c.peerFragmentSize !== undefined && options.fragmentingUrl !== undefined;
  const url = new URL(fragmenting ? options.fragmentingUrl! : options.url);
  if (url.protocol !== "ws:") throw new Error(`the fuzzing client speaks ws:// only, not ${url.protocol}`);
  const host = url.hostname.startsWith("[") ? url.hostname.slice(1, -1) : url.hostname;
  const port = Number(url.port || 80);
  const key = btoa(String.fromCharCode(...random.bytes(16)));

  let session: Session | null = null;
  let failure: string | null = null;
  let settle!: () => void;
  const handshakeDone = new Promise<void>((resolve) => (settle = resolve));
  const head = new HeadReader();

  const handler = (transport: Transport): TransportHandler => ({
    onData(chunk) {
      if (session) return session.onData(chunk);
      if (failure !== null) return;
      let response: HttpHead | null | undefined;
      try {
        response = head.push(chunk);
      } catch (error) {
        failure = (error as Error).message;
      }
      if (response === null) return;
      if (response) {
        const problem = checkResponse(response.startLine, response.headers, key, c);
        if (typeof problem === "string") {
          failure = problem;
        } else {
          session = new Session({
            role: "client",
            def: c,
            transport,
            settings,
            random,
            peerFragmentSize: fragmenting ? options.peerFragmentSize : undefined,
            deflate: problem,
          });
          session.start(response.rest);
        }
      }
      if (failure !== null) transport.destroy();
      settle();
    },
    onEnd() {
      if (session) return session.onEnd();
      failure ??= "the server closed the connection during the opening handshake";
      transport.end();
      settle();
    },
    onDrain() {
      session?.onDrain();
    },
    onClose(error) {
      if (session) return session.onClose(error);
      failure ??= `the connection closed during the opening handshake${error ? `: ${error.message}` : ""}`;
      settle();
    },
  });

  const started = performance.now();
  let transport: Transport;
  try {
    transport = await runtime.dial({ host, port }, handler);
  } catch (error) {
    return handshakeFailure(c, `cannot connect to ${url.host}: ${(error as Error).message}`, started);
  }
  const path = (url.pathname || "/") + url.search;
  transport.write([textEncoder.encode(
    `GET ${path} HTTP/1.1\r\nHost: ${url.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\nUser-Agent: anyws-fuzzingclient\r\n` +
      (c.deflate ? `Sec-WebSocket-Extensions: ${offerHeader(c.deflate)}\r\n` : "") + "\r\n",
  )]);
  const timer = setTimeout(() => {
    failure ??= "no handshake response within 10 s";
    transport.destroy();
    settle();
  }, 10_000);
  await handshakeDone;
  clearTimeout(timer);
  if (session === null) return handshakeFailure(c, failure ?? "handshake failed", started);
  return (session as Session).done;
}

/** RFC 6455 §4.1, the client's checks of the server's response: why it fails, or the permessage-deflate agreement. */
function checkResponse(statusLine: string, headers: Map<string, string>, key: string, c: CaseDef): string | Negotiated | null {
  if (!/^HTTP\/1\.1 101(\s|$)/.test(statusLine)) return `the server answered "${statusLine}"`;
  if (headers.get("upgrade")?.toLowerCase() !== "websocket") return "the response's Upgrade is not websocket";
  if (!headerHasToken(headers.get("connection"), "upgrade")) return "the response's Connection has no Upgrade";
  if (headers.get("sec-websocket-accept") !== acceptFor(key)) return "the response's Sec-WebSocket-Accept is wrong";
  if (c.deflate) return checkAnswer(c.deflate, headers.get("sec-websocket-extensions"));
  if (headers.has("sec-websocket-extensions")) return "the server accepted an extension that was not offered";
  return null;
}

function handshakeFailure(c: CaseDef, why: string, started: number): CaseResult {
  const r = notRun(c, "SKIPPED", "");
  r.verdict = "FAILED";
  r.behavior = "FAILED";
  r.behaviorClose = "FAILED";
  r.observed = `the WebSocket opening handshake was never completed: ${why}`;
  r.durationMs = Math.round(performance.now() - started);
  return r;
}
