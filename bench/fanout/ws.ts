/**
 * `ws` on Node, as its README broadcasts: a loop over the server's clients, each sent the
 * received data as text (`binary: false`), with the native `bufferutil` for masking.
 */
import { once } from "node:events";
import { requireWs, wsVersion } from "../shared/ws.ts";
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

const ws = requireWs<{ WebSocketServer: new (options: object) => WsServer }>("index.js");

export async function start(options: { hostname: string; port: number }): Promise<FanoutServer> {
  const wss = new ws.WebSocketServer({ host: options.hostname, port: options.port });
  wss.on("connection", (socket) => {
    socket.on("error", () => {});
    socket.on("message", (data, isBinary) => {
      for (const client of wss.clients) if (client.readyState === 1) client.send(data, { binary: isBinary });
    });
  });
  await once(wss as unknown as import("node:events").EventEmitter, "listening");
  return { port: wss.address().port, name: `ws ${wsVersion}` };
}
