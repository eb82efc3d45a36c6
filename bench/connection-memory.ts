/**
 * JS heap per open core connection: N `ServerConnection`s taken through a real handshake in
 * memory and kept open, heap measured after a full garbage collection before and after.
 *
 *   node dist/bench/connection-memory.js [--count=10000]
 *   deno run -A bench/connection-memory.ts
 *   bun bench/connection-memory.ts
 */
import process from "node:process";
import { ServerConnection, connectionConfig } from "../core/mod.ts";
import { engineTuning } from "../adapters/shared/engine.ts";
import { numberOption, RUNTIME } from "./shared/args.ts";
import { collectGarbage } from "./shared/memory.ts";

const COUNT = numberOption(process.argv.slice(2), "count", 10_000);
const REQUEST = new TextEncoder().encode(
  "GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
);

function collect(): void {
  if (!collectGarbage()) throw new Error("this runtime lets no program ask for a garbage collection");
}

const heap = (): number => process.memoryUsage().heapUsed;
// Options resolved once for every connection, as a server does (adapters/shared/server.ts).
const config = connectionConfig({ tuning: engineTuning(), keepaliveInterval: 30_000 });
const kept: ServerConnection[] = [];
collect();
const before = heap();
for (let i = 0; i < COUNT; i++) {
  const connection = new ServerConnection({ config, now: 0 });
  connection.receive(REQUEST.slice());
  connection.pollEvents();
  connection.accept();
  connection.pollOutput();
  connection.pollEvents();
  if (connection.readyState !== 1) throw new Error("the handshake did not open the connection");
  kept.push(connection);
}
collect();
const perConnection = (heap() - before) / COUNT;
console.log(`${RUNTIME}: ${Math.round(perConnection).toLocaleString("en-US")} B of JS heap per open ServerConnection (${kept.length.toLocaleString("en-US")} kept)`);
