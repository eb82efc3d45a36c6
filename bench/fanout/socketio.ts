/**
 * socket.io on Node with `@socket.io/redis-adapter` (node-redis clients), what a user would pick
 * to share rooms between processes: every connection joins ROOM; every `m` event a client emits
 * is emitted to ROOM (its sender included, in every process). WebSocket transport only.
 */
import { createServer } from "node:http";
import { createRequire } from "node:module";
import type { FanoutServer, StartOptions } from "./common.ts";
import { ROOM } from "./common.ts";

interface Socket {
  join(room: string): void;
  on(event: string, listener: (data: string) => void): void;
}
interface IoServer {
  on(event: "connection", listener: (socket: Socket) => void): void;
  to(room: string): { emit(event: string, data: string): void };
}
interface RedisClient {
  connect(): Promise<unknown>;
  duplicate(): RedisClient;
}

const require = createRequire(import.meta.url);

export async function start(options: StartOptions): Promise<FanoutServer> {
  const { Server } = require("socket.io") as { Server: new (http: unknown, options: object) => IoServer };
  const { createAdapter } = require("@socket.io/redis-adapter") as { createAdapter(pub: unknown, sub: unknown): unknown };
  const { createClient } = require("redis") as { createClient(options: { url?: string }): RedisClient };
  const http = createServer();
  let adapter: unknown = undefined;
  if (options.redis) {
    const pub = createClient({ url: options.redis });
    const sub = pub.duplicate();
    await Promise.all([pub.connect(), sub.connect()]);
    adapter = createAdapter(pub, sub);
  }
  // Pings every 60 s: a run is shorter, and the load generator does not answer them.
  const io = new Server(http, { transports: ["websocket"], pingInterval: 60_000, pingTimeout: 60_000, ...(adapter ? { adapter } : {}) });
  io.on("connection", (socket) => {
    socket.join(ROOM);
    socket.on("m", (data) => io.to(ROOM).emit("m", data));
  });
  await new Promise<void>((resolve) => http.listen(options.port, options.hostname, resolve));
  const version: string = require("socket.io/package.json").version;
  return { port: (http.address() as { port: number }).port, name: `socket.io ${version}${options.redis ? " + redis-adapter" : ""}` };
}
