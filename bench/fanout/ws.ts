/**
 * `ws` on Node, as its README broadcasts: a loop over the server's clients, each sent the
 * received data as text (`binary: false`), with the native `bufferutil` for masking.
 */
import { once } from "node:events";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import type { FanoutServer } from "./common.ts";

interface WsSocket {
  readonly readyState: number;
  on(event: "message", listener: (data: Uint8Array, isBinary: boolean) => void): unknown;
  on(event: "error", listener: (error: Error) => void): unknown;
  send(data: Uint8Array, options: { binary: boolean }): void;
}
interface WsServer {
  readonly clients: Set<WsSocket>;
  on(event: "connection", listener: (ws: WsSocket) => void): unknown;
  address(): { port: number };
}

// By absolute path: Bun answers a bare "ws" with its own stand-in.
const require = createRequire(import.meta.url);
const wsDir = dirname(require.resolve("ws/package.json"));
const ws: { WebSocketServer: new (options: object) => WsServer } = require(join(wsDir, "index.js"));
const version: string = require(join(wsDir, "package.json")).version;

export async function start(options: { hostname: string; port: number }): Promise<FanoutServer> {
  const wss = new ws.WebSocketServer({ host: options.hostname, port: options.port });
  wss.on("connection", (socket) => {
    socket.on("error", () => {});
    socket.on("message", (data, isBinary) => {
      for (const client of wss.clients) if (client.readyState === 1) client.send(data, { binary: isBinary });
    });
  });
  await once(wss as unknown as import("node:events").EventEmitter, "listening");
  return { port: wss.address().port, name: `ws ${version}` };
}
