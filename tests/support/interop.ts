/**
 * Shared pieces of the interop tests (tests/interop/): the exchange every cell runs, our side of
 * it as a server and as a client, and byte-exact comparisons. A cell pairs one side of anyws
 * with a foreign peer over a real loopback socket; both sides check what they received.
 */
import assert from "node:assert/strict";
import { serve, type ServerWebSocket, WebSocket, type WebSocketServer } from "../../adapters/auto.ts";
import { RawClient, until } from "./net.ts";

// ---- the exchange ---------------------------------------------------------------------------

/** Text with 2-, 3- and 4-byte UTF-8 sequences. */
export const TEXT = "héllo wörld — 日本語 ✓ 🚀🦀";
/** Every byte value, twice, with the bytes that look like frame headers and UTF-8 lead bytes. */
export const BINARY: Uint8Array = new Uint8Array(512).map((_, i) => (i * 181 + 7) & 0xff);
export const BIG_SIZE = 1024 * 1024;
/** 1 MiB, a pattern with no period of a power of two (so a misplaced chunk shows). */
export const BIG: Uint8Array = bigPattern(BIG_SIZE);
/** The close the initiating side sends; the other side must see it exactly. */
export const CLOSE_CODE = 4000;
export const CLOSE_REASON = "fin — ça va ✓";
/** The close the other direction uses (the side that did not initiate above initiates). */
export const CLOSE_CODE_2 = 4001;
export const CLOSE_REASON_2 = "au revoir — さようなら";
/** Ping payloads (≤ 125 bytes), binary with a non-ASCII part. */
export const PING: Uint8Array = concat([new TextEncoder().encode("ping ☎ "), new Uint8Array([0, 1, 0xfe, 0xff])]);
export const PING_2: Uint8Array = concat([new TextEncoder().encode("keepalive ♥ "), new Uint8Array([0x80, 0x81, 0x7f])]);

/** The 1 MiB pattern; the same formula is written in the browser page and the Python script. */
export function bigPattern(size: number): Uint8Array {
  const out = new Uint8Array(size);
  for (let i = 0; i < size; i++) out[i] = (i * 31 + (i >>> 8) * 7 + (i >>> 16)) & 0xff;
  return out;
}

// ---- bytes ----------------------------------------------------------------------------------

export function concat(chunks: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let offset = 0;
  for (const c of chunks) {
    out.set(c, offset);
    offset += c.length;
  }
  return out;
}

/** Bytes of whatever a WebSocket implementation hands out: Buffer, Buffer[], ArrayBuffer, views, Blob. */
export async function toBytes(data: unknown): Promise<Uint8Array> {
  if (data instanceof Uint8Array) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice();
  if (data instanceof ArrayBuffer) return new Uint8Array(data.slice(0));
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice();
  if (Array.isArray(data)) return concat(await Promise.all(data.map(toBytes)));
  if (typeof Blob !== "undefined" && data instanceof Blob) return new Uint8Array(await data.arrayBuffer());
  throw new TypeError(`not bytes: ${Object.prototype.toString.call(data)}`);
}

/** Byte-exact comparison that reports the first difference instead of dumping a megabyte. */
export function assertBytes(actual: Uint8Array, expected: Uint8Array, what: string): void {
  assert.ok(actual instanceof Uint8Array, `${what}: not bytes`);
  if (actual.length !== expected.length) {
    assert.fail(`${what}: ${actual.length} bytes, expected ${expected.length}`);
  }
  for (let i = 0; i < expected.length; i++) {
    if (actual[i] !== expected[i]) assert.fail(`${what}: byte ${i} is ${actual[i]}, expected ${expected[i]}`);
  }
}

export function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

// ---- time -----------------------------------------------------------------------------------

/** Rejects after `ms` with `what`; the timer never outlives the promise. */
export async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(error: unknown): void;
}

export function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

// ---- our server -----------------------------------------------------------------------------

export type Received = { text: string } | { binary: Uint8Array };
export type CloseInfo = { code: number; reason: string; wasClean: boolean };

/** What our server saw on one connection. */
export interface ServerRecord {
  socket: ServerWebSocket;
  /** The request's path. */
  path: string;
  protocol: string;
  extensions: string;
  /** The request's Sec-WebSocket-Extensions offer, "" if none. */
  offeredExtensions: string;
  messages: Received[];
  pings: Uint8Array[];
  pongs: Uint8Array[];
  errors: string[];
  closed: Promise<CloseInfo>;
}

/**
 * Our server on loopback, echoing every message it receives and recording everything per
 * connection. `onMessage` may take a message over (return true) instead of echoing it.
 */
export async function startRecordingServer(
  options: {
    onOpen?: (record: ServerRecord) => void;
    onMessage?: (record: ServerRecord, data: string | Uint8Array, isBinary: boolean) => boolean;
  } = {},
): Promise<{ server: WebSocketServer; port: number; connections: ServerRecord[]; next(): Promise<ServerRecord> }> {
  const connections: ServerRecord[] = [];
  const records = new Map<ServerWebSocket, ServerRecord & { done: Deferred<CloseInfo> }>();
  const server = await serve({ port: 0, hostname: "127.0.0.1" }, {
    open(ws) {
      const done = deferred<CloseInfo>();
      const offered = ws.request.headers.get("sec-websocket-extensions") ?? "";
      const record = {
        socket: ws,
        path: ws.request.path,
        protocol: ws.protocol,
        extensions: ws.extensions,
        offeredExtensions: offered,
        messages: [],
        pings: [],
        pongs: [],
        errors: [],
        closed: done.promise,
        done,
      };
      records.set(ws, record);
      connections.push(record);
      options.onOpen?.(record);
    },
    message(ws, data, isBinary) {
      const record = records.get(ws)!;
      const kept = typeof data === "string" ? data : data.slice();
      record.messages.push(typeof kept === "string" ? { text: kept } : { binary: kept });
      if (options.onMessage?.(record, kept, isBinary)) return;
      ws.send(kept);
    },
    ping(ws, data) {
      records.get(ws)!.pings.push(data.slice());
    },
    pong(ws, data) {
      records.get(ws)!.pongs.push(data.slice());
    },
    error(ws, error) {
      records.get(ws)?.errors.push(error.message);
    },
    close(ws, code, reason, wasClean) {
      records.get(ws)!.done.resolve({ code, reason, wasClean });
    },
  });
  let taken = 0;
  return {
    server,
    port: server.port,
    connections,
    async next() {
      await until(() => connections.length > taken, "a connection to our server", 10_000);
      return connections[taken++];
    },
  };
}

/** The three messages in the order every cell sends them. */
export function assertExchange(received: readonly Received[], what: string): void {
  assert.equal(received.length, 3, `${what}: ${received.length} messages, expected 3`);
  assert.deepEqual(received[0], { text: TEXT }, `${what}: the text message`);
  const [binary, big] = [received[1], received[2]];
  assert.ok("binary" in binary, `${what}: message 2 should be binary`);
  assertBytes(binary.binary, BINARY, `${what}: the binary message`);
  assert.ok("binary" in big, `${what}: message 3 should be binary`);
  assertBytes(big.binary, BIG, `${what}: the 1 MiB message`);
}

// ---- our client -----------------------------------------------------------------------------

/** Our WebSocket client, recording what it dispatches. */
export async function openClient(url: string, protocols?: string[]) {
  const ws = new WebSocket(url, protocols);
  ws.binaryType = "uint8array";
  const messages: Received[] = [];
  const closed = deferred<CloseInfo>();
  let error: string | null = null;
  ws.addEventListener("message", (e) => {
    const data = (e as MessageEvent).data as unknown;
    messages.push(typeof data === "string" ? { text: data } : { binary: data as Uint8Array });
  });
  ws.addEventListener("error", (e) => (error = (e as ErrorEvent).message ?? "error"));
  ws.addEventListener("close", (e) => {
    const c = e as CloseEvent;
    closed.resolve({ code: c.code, reason: c.reason, wasClean: c.wasClean });
  });
  const opened = new Promise<void>((resolve, reject) => {
    ws.addEventListener("open", () => resolve());
    ws.addEventListener("close", () => reject(new Error(`our client did not open: ${error ?? "closed"}`)));
  });
  await withTimeout(opened, 10_000, `our client to open ${url}`);
  return {
    ws,
    messages,
    closed: closed.promise,
    get error() {
      return error;
    },
  };
}

/**
 * Our client's half of a cell against a foreign server that echoes: sends the exchange, checks
 * the echoes byte-exact, closes with CLOSE_CODE/CLOSE_REASON and returns its close event.
 */
export async function clientExchange(
  url: string,
  what: string,
  beforeClose?: () => Promise<void>,
): Promise<CloseInfo> {
  const client = await openClient(url);
  try {
    assert.equal(client.ws.extensions, "", `${what}: no extension was negotiated`);
    client.ws.send(TEXT);
    client.ws.send(BINARY);
    client.ws.send(BIG);
    await until(() => client.messages.length >= 3, `${what}: three echoes`, 10_000);
    assertExchange(client.messages, `${what}, echoes our client received`);
    await beforeClose?.();
    client.ws.close(CLOSE_CODE, CLOSE_REASON);
    return await withTimeout(client.closed, 10_000, `${what}: our client's close event`);
  } finally {
    if (client.ws.readyState !== WebSocket.CLOSED) client.ws.close();
  }
}

/**
 * Our client connects and waits for the foreign server to close it (the server closes with
 * CLOSE_CODE_2/CLOSE_REASON_2 when it receives the text "close me").
 */
export async function clientObservesServerClose(url: string, what: string): Promise<CloseInfo> {
  const client = await openClient(url);
  client.ws.send("close me");
  return await withTimeout(client.closed, 10_000, `${what}: our client's close event`);
}

/**
 * Our client's ping, from a hand-driven core client over the runtime adapter (the WebSocket API
 * has no ping): sends PING, waits for the pong, checks its payload, and closes politely.
 */
export async function rawPing(port: number, what: string, path = "/"): Promise<void> {
  const raw = await RawClient.connect(port, { path });
  try {
    await raw.opened();
    raw.connection.ping(PING);
    raw.pump();
    await until(() => raw.events.some((e) => e.type === "pong"), `${what}: the pong to our ping`, 10_000);
    const pong = raw.events.find((e) => e.type === "pong");
    assert.ok(pong && pong.type === "pong");
    assertBytes(pong.data, PING, `${what}: the pong's payload`);
    raw.connection.close(1000);
    raw.pump();
    await raw.whenClosed(10_000);
  } finally {
    if (!raw.closed) raw.destroy();
  }
}
