/**
 * The JavaScript cost per echoed message of the server path above the socket, in one process:
 * a `WebSocketServer` behind a runtime whose transports write nowhere, `CONNS` connections each
 * reading `WINDOW` masked 32 B text frames per loop turn, handled by an echo `message` handler,
 * the session's after-reads task run after every turn. No system calls, so a change in the
 * adapters' or the core's work per message shows here without the noise of the kernel and of a
 * load generator sharing the cores.
 *
 *   bun bench/echo-inprocess.ts [ROOT] [--mode=echo|core|none]
 *
 * ROOT: a checkout to measure (default: this one), so that two commits run the same file.
 * --mode: echo (ws.send, the default), core (connection.sendText + pollOutput, no session
 * write), none (the handler sends nothing: the receive path alone). Prints the fastest of
 * twelve batches in ns per message.
 */
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";

const CONNS = 64;
const WINDOW = 16;
const SIZE = 32;
const BATCH = 1000;

const args = process.argv.slice(2);
const root = args.find((a) => !a.startsWith("--")) ?? join(dirname(fileURLToPath(import.meta.url)), "..");
const mode = args.find((a) => a.startsWith("--mode="))?.slice(7) ?? "echo";

// Loaded from ROOT so that the same file measures another checkout.
await import(join(root, "adapters", "auto.ts"));
const { createServe } = (await import(join(root, "adapters", "shared", "server.ts"))) as {
  createServe: (runtime: unknown) => (options: unknown, handlers: unknown) => Promise<unknown>;
};

interface Handler {
  onData(chunk: Uint8Array): void;
}
interface Socket {
  send(data: string): number;
  session: { connection: { sendText(data: string): unknown; pollOutput(): unknown } };
}

const tasks: (() => void)[] = [];
let accept: ((transport: unknown) => Handler) | null = null;
const runtime = {
  name: "in-process",
  listen: (_options: unknown, onAccept: (transport: unknown) => Handler) => {
    accept = onAccept;
    return Promise.resolve({ port: 1, hostname: "127.0.0.1", close: () => Promise.resolve() });
  },
  dial: () => Promise.reject(new Error("no dial in-process")),
};
const message =
  mode === "core"
    ? (ws: Socket, data: string) => {
        ws.session.connection.sendText(data);
        ws.session.connection.pollOutput();
      }
    : mode === "none"
      ? () => {}
      : (ws: Socket, data: string) => {
          ws.send(data);
        };
await createServe(runtime)({ port: 0 }, { message });

/** A transport that takes every write at once (as a socket whose kernel buffer has room). */
function transport() {
  return {
    write: () => true,
    bufferedAmount: 0,
    highWaterMark: 1 << 20,
    releasesChunks: true,
    end() {},
    destroy() {},
    pause() {},
    resume() {},
    remoteAddress: "127.0.0.1",
    remotePort: 1,
    afterReads: (task: () => void) => void tasks.push(task),
  };
}

function runTasks(): void {
  const due = tasks.splice(0);
  for (const task of due) task();
}

const request = new TextEncoder().encode(
  "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
);
const handlers: Handler[] = [];
for (let i = 0; i < CONNS; i++) {
  const handler = accept!(transport());
  handlers.push(handler);
  handler.onData(request.slice());
}
await new Promise((resolve) => setTimeout(resolve, 50)); // the upgrade is answered asynchronously
runTasks();

// One read: WINDOW masked text frames (RFC 6455 §5.3) of SIZE ASCII bytes.
const key = [1, 2, 3, 4];
const frame = new Uint8Array(6 + SIZE);
frame[0] = 0x81;
frame[1] = 0x80 | SIZE;
frame.set(key, 2);
for (let j = 0; j < SIZE; j++) frame[6 + j] = (97 + (j % 26)) ^ key[j & 3];
const read = new Uint8Array(frame.length * WINDOW);
for (let k = 0; k < WINDOW; k++) read.set(frame, k * frame.length);

function turn(): void {
  // A fresh copy per read: the parser unmasks in place.
  for (let i = 0; i < CONNS; i++) handlers[i].onData(read.slice());
  runTasks();
}

for (let i = 0; i < 3 * BATCH; i++) turn();
let best = Infinity;
for (let batch = 0; batch < 12; batch++) {
  const start = performance.now();
  for (let i = 0; i < BATCH; i++) turn();
  best = Math.min(best, ((performance.now() - start) * 1e6) / (BATCH * CONNS * WINDOW));
}
console.log(`${root} --mode=${mode}: ${best.toFixed(1)} ns per message (fastest of 12 batches)`);
process.exit(0);
