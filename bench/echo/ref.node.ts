/**
 * The reference echo server on Node: the `ws` package, as its README writes an echo server
 * (`ws.send(data, { binary: isBinary })`), with its defaults: no permessage-deflate, 100 MiB
 * maxPayload, client tracking on, and the native `bufferutil` (installed) for masking.
 */
import { once } from "node:events";
import { requireWs, wsMasking, wsVersion } from "../shared/ws.ts";
import type { EchoServer } from "./common.ts";

interface WsSocket {
  on(event: "message", listener: (data: Uint8Array, isBinary: boolean) => void): unknown;
  on(event: "error", listener: (error: Error) => void): unknown;
  send(data: Uint8Array, options: { binary: boolean }): void;
}
interface WsServer {
  on(event: "connection", listener: (ws: WsSocket) => void): unknown;
  once(event: string, listener: (...args: unknown[]) => void): unknown;
  address(): { port: number };
}

const ws = requireWs<{ WebSocketServer: new (options: object) => WsServer }>("index.js");

export async function start(options: { hostname: string; port: number }): Promise<EchoServer> {
  const wss = new ws.WebSocketServer({ host: options.hostname, port: options.port });
  wss.on("connection", (socket) => {
    socket.on("error", () => {}); // a client cut off mid-frame: ws reports it here
    socket.on("message", (data, isBinary) => socket.send(data, { binary: isBinary }));
  });
  await once(wss as unknown as import("node:events").EventEmitter, "listening");
  return { port: wss.address().port, name: `ws ${wsVersion} with ${wsMasking()}` };
}
