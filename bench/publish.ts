/**
 * What `server.publish` costs in-process per delivery, without the kernel: one server with
 * --conns sockets (1000) in one room, over transports that only count the bytes they are given
 * (their `bufferedAmount` read through two objects, as a Node socket's is); --per-turn publishes
 * (15) of a 64-byte text per loop turn, handed out in the check phase as the Node and Bun
 * transports do. Prints the CPU time (user + system) per delivery of each round.
 *
 *   node dist/bench/publish.js [--conns=1000] [--per-turn=15] [--turns=300] [--rounds=7]
 *   bun bench/publish.ts …      deno run -A bench/publish.ts …
 *
 * Nothing is asserted about timing.
 */
import process from "node:process";
import { setImmediate } from "node:timers";
import { WebSocketServer } from "../adapters/auto.ts";
import type { Transport } from "../adapters/shared/transport.ts";
import { numberOption, RUNTIME } from "./shared/args.ts";

const args = process.argv.slice(2);
const CONNS = numberOption(args, "conns", 1000);
const PER_TURN = numberOption(args, "per-turn", 15);
const TURNS = numberOption(args, "turns", 300);
const ROUNDS = Math.max(1, numberOption(args, "rounds", 7));

let written = 0;
const afterReads = (task: () => void): void => void setImmediate(task);

/** A socket's write state, as the transport reads it. */
class WriteState {
  length = 0;
  highWaterMark = 64 * 1024;
}

class CountingTransport implements Transport {
  readonly #state = { state: new WriteState() };
  readonly releasesChunks = true;
  readonly remoteAddress = "127.0.0.1";
  readonly remotePort = 1;
  readonly afterReads = afterReads;
  write(chunks: readonly Uint8Array[]): boolean {
    for (const chunk of chunks) written += chunk.length;
    return true;
  }
  get bufferedAmount(): number {
    return this.#state.state.length;
  }
  get highWaterMark(): number {
    return this.#state.state.highWaterMark;
  }
  end(): void {}
  destroy(): void {}
  pause(): void {}
  resume(): void {}
}

const request = new TextEncoder().encode(
  "GET / HTTP/1.1\r\nHost: bench\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
);
let open = 0;
const server = new WebSocketServer({}, {
  open(ws) {
    ws.subscribe("room");
    open++;
  },
});
for (let i = 0; i < CONNS; i++) server.accept(new CountingTransport()).onData(request.slice());
while (open < CONNS) await new Promise((resolve) => setImmediate(resolve));

const payload = "x".repeat(64);
const turn = () => new Promise((resolve) => setImmediate(resolve));

/** CPU nanoseconds per delivery over `turns` loop turns. */
async function round(turns: number): Promise<number> {
  const start = process.cpuUsage();
  let deliveries = 0;
  for (let t = 0; t < turns; t++) {
    for (let i = 0; i < PER_TURN; i++) deliveries += server.publish("room", payload);
    await turn(); // the check phase hands the turn's output out
    await turn();
  }
  const used = process.cpuUsage(start);
  return ((used.user + used.system) * 1000) / deliveries;
}

await round(Math.ceil(TURNS / 2)); // warm-up
const results: number[] = [];
for (let r = 0; r < ROUNDS; r++) results.push(await round(TURNS));
const sorted = [...results].sort((a, b) => a - b);
console.log(
  `${RUNTIME}: publish to ${CONNS} sockets, ${PER_TURN} per loop turn: CPU per delivery median ${sorted[sorted.length >> 1].toFixed(0)} ns, ` +
    `min ${sorted[0].toFixed(0)} ns (rounds: ${results.map((x) => x.toFixed(0)).join(", ")} ns; ${written} bytes written)`,
);
process.exit(0);
