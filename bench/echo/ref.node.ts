/**
 * The reference echo server on Node: the `ws` package, as its README writes an echo server
 * (`ws.send(data, { binary: isBinary })`), with its defaults: no permessage-deflate, 100 MiB
 * maxPayload, client tracking on, and the native `bufferutil` (installed) for masking.
 */
import { once } from "node:events";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
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

// By absolute path, as bench/core.ts does: Bun answers a bare "ws" with its own stand-in.
const require = createRequire(import.meta.url);
const wsDir = dirname(require.resolve("ws/package.json"));
const ws: { WebSocketServer: new (options: object) => WsServer } = require(join(wsDir, "index.js"));
const version: string = require(join(wsDir, "package.json")).version;

export async function start(options: { hostname: string; port: number }): Promise<EchoServer> {
  const wss = new ws.WebSocketServer({ host: options.hostname, port: options.port });
  wss.on("connection", (socket) => {
    socket.on("error", () => {}); // a client cut off mid-frame: ws reports it here
    socket.on("message", (data, isBinary) => socket.send(data, { binary: isBinary }));
  });
  await once(wss as unknown as import("node:events").EventEmitter, "listening");
  let masking = "pure JS";
  try {
    require("bufferutil");
    masking = "bufferutil";
  } catch {
    // ws falls back to JS masking
  }
  return { port: wss.address().port, name: `ws ${version} (${masking})` };
}
