/**
 * uWebSockets.js's native pub/sub on Node (the npm repackage `@trufflesuite/uws-js-unofficial`):
 * `app.publish` to every subscriber (the sender too), defaults otherwise.
 */
import { createRequire } from "node:module";
import type { FanoutServer } from "./common.ts";
import { ROOM } from "./common.ts";

interface UwsSocket {
  subscribe(topic: string): boolean;
}
interface UwsApp {
  ws(pattern: string, behavior: {
    open?(ws: UwsSocket): void;
    message?(ws: UwsSocket, message: ArrayBuffer, isBinary: boolean): void;
  }): UwsApp;
  publish(topic: string, message: ArrayBuffer, isBinary: boolean): boolean;
  listen(host: string, port: number, callback: (socket: unknown) => void): UwsApp;
}
interface Uws {
  App(): UwsApp;
  us_socket_local_port(socket: unknown): number;
}

const require = createRequire(import.meta.url);
const version: string = require("@trufflesuite/uws-js-unofficial/package.json").version;

export function start(options: { hostname: string; port: number }): Promise<FanoutServer> {
  const uws: Uws = require("@trufflesuite/uws-js-unofficial");
  return new Promise((resolve, reject) => {
    const app = uws.App().ws("/*", {
      open(ws) {
        ws.subscribe(ROOM);
      },
      message(_ws, message, isBinary) {
        app.publish(ROOM, message, isBinary);
      },
    });
    app.listen(options.hostname, options.port, (socket) => {
      if (!socket) reject(new Error(`uWebSockets.js could not listen on ${options.hostname}:${options.port}`));
      else resolve({ port: uws.us_socket_local_port(socket), name: `uWebSockets.js ${version}` });
    });
  });
}
