/**
 * The implementations under test, each wrapped as Autobahn expects: a server that echoes every
 * message, a client that connects to the fuzzing server's case URL and echoes every message
 * until the connection closes. Ours (`serve()`, `WebSocket`) and the `ws` package as a reference
 * (on Bun, `import "ws"` is Bun's built-in ws-compatible module, its own native implementation:
 * named so).
 */
import { createRequire } from "node:module";
import WsWebSocket, { WebSocketServer as WsServer } from "ws";
import { runtimeName, serve, WebSocket } from "../../adapters/auto.ts";

/** A server under test, echoing. */
export interface ServerUnderTest {
  name: string;
  url: string;
  /** A second endpoint that sends in frames of `peerFragmentSize` octets (section 10), if the implementation can. */
  fragmentingUrl?: string;
  peerFragmentSize?: number;
  close(): Promise<void>;
}

/** A client under test: opens `url`, echoes every message, resolves once the connection is closed. */
export interface ClientUnderTest {
  name: string;
  /** Whether it can send in frames of a given size (section 10). */
  canFragment: boolean;
  run(url: string, fragmentSize?: number): Promise<void>;
}

export const PEER_FRAGMENT_SIZE = 1300;

// ---- anyws ---------------------------------------------------------------------------------

/** Our server, echoing: `serve()` with its defaults, and one more with `fragmentSize`. */
export async function startAnywsServer(): Promise<ServerUnderTest> {
  const handlers = {
    message(ws: { send(data: string | Uint8Array): number }, data: string | Uint8Array) {
      ws.send(data);
    },
    error() {},
  };
  // permessage-deflate is off by default in serve(): on here, with its default parameters.
  const server = await serve({ port: 0, hostname: "127.0.0.1", perMessageDeflate: true }, handlers);
  const fragmenting = await serve({ port: 0, hostname: "127.0.0.1", fragmentSize: PEER_FRAGMENT_SIZE }, handlers);
  return {
    name: `anyws serve() on ${runtimeName}`,
    url: `ws://127.0.0.1:${server.port}/`,
    fragmentingUrl: `ws://127.0.0.1:${fragmenting.port}/`,
    peerFragmentSize: PEER_FRAGMENT_SIZE,
    async close() {
      await Promise.all([server.close({ timeout: 1000 }), fragmenting.close({ timeout: 1000 })]);
    },
  };
}

/** Our WebSocket client, echoing. */
export const anywsClient: ClientUnderTest = {
  name: `anyws WebSocket on ${runtimeName}`,
  canFragment: true,
  run(url, fragmentSize) {
    return new Promise((resolve) => {
      const ws = new WebSocket(url, undefined, fragmentSize ? { fragmentSize } : {});
      ws.binaryType = "uint8array";
      ws.onmessage = (e) => {
        if (ws.readyState === WebSocket.OPEN) ws.send((e as MessageEvent).data as string | Uint8Array);
      };
      ws.onerror = () => {};
      ws.onclose = () => resolve();
    });
  },
};

// ---- ws (the reference) --------------------------------------------------------------------

export const wsName = runtimeName === "bun"
  ? "Bun's built-in ws module (native)"
  : `ws@${(createRequire(import.meta.url)("ws/package.json") as { version: string }).version}`;

/**
 * ws 8.23 fails a message of more than `maxFragments` (default 16384) frames with 1008, a limit
 * of its own (RFC 6455 §10.4 lets implementations have them): case 9.3.1 sends 65536. The
 * reference runs with ours instead (anyws's default `maxFragments`, 100,000), to compare the
 * protocols rather than the defaults.
 */
const WS_LIMITS = { maxFragments: 100_000 };

/** `ws`'s WebSocketServer, echoing. It has no option to fragment what it sends. */
export async function startWsServer(): Promise<ServerUnderTest> {
  const wss = new WsServer({ host: "127.0.0.1", port: 0, perMessageDeflate: true, ...WS_LIMITS });
  await new Promise<void>((resolve, reject) => {
    wss.once("listening", () => resolve());
    wss.once("error", reject);
  });
  wss.on("connection", (ws: WsWebSocket) => {
    ws.on("message", (data: unknown, isBinary: boolean) => ws.send(data as Uint8Array, { binary: isBinary }));
    ws.on("error", () => {});
  });
  const port = (wss.address() as { port: number }).port;
  return {
    name: `${wsName} WebSocketServer on ${runtimeName}`,
    url: `ws://127.0.0.1:${port}/`,
    async close() {
      for (const client of wss.clients) client.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
}

/** `ws`'s client, echoing. */
export const wsClient: ClientUnderTest = {
  name: `${wsName} client on ${runtimeName}`,
  canFragment: false,
  run(url) {
    return new Promise((resolve) => {
      const ws = new WsWebSocket(url, { perMessageDeflate: true, ...WS_LIMITS });
      ws.on("message", (data: unknown, isBinary: boolean) => {
        if (ws.readyState === WsWebSocket.OPEN) ws.send(data as Uint8Array, { binary: isBinary });
      });
      ws.on("error", () => {});
      ws.on("close", () => resolve());
    });
  },
};
