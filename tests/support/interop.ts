/**
 * Shared pieces of the interop tests (tests/interop/): the exchange every cell runs, our side of
 * it as a server and as a client, the foreign echo servers' part, and byte-exact comparisons. A
 * cell pairs one side of anyws with a foreign peer over a real loopback socket; both sides check
 * what they received.
 */
import assert from "node:assert/strict";
import {
  runtimeName,
  serve,
  type ServerOptions,
  type ServerWebSocket,
  WebSocket,
  type WebSocketOptions,
  type WebSocketServer,
} from "../../adapters/auto.ts";
import { concatBytes } from "../../core/bytes.ts";
import { assertBytes } from "./bytes.ts";
import { RawClient } from "./net.ts";
import { type Deferred, deferred, until, withTimeout } from "./time.ts";

export { assertBytes, hex } from "./bytes.ts";
export { type Deferred, deferred, withTimeout } from "./time.ts";

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
/** Those closes as the receiving side must see them: exactly, and clean. */
export const CLOSED: CloseInfo = { code: CLOSE_CODE, reason: CLOSE_REASON, wasClean: true };
export const CLOSED_2: CloseInfo = { code: CLOSE_CODE_2, reason: CLOSE_REASON_2, wasClean: true };
/** Ping payloads (≤ 125 bytes), binary with a non-ASCII part. */
export const PING: Uint8Array = concatBytes([new TextEncoder().encode("ping ☎ "), new Uint8Array([0, 1, 0xfe, 0xff])]);
export const PING_2: Uint8Array = concatBytes([new TextEncoder().encode("keepalive ♥ "), new Uint8Array([0x80, 0x81, 0x7f])]);

/** The 1 MiB pattern; the same formula is written in the browser page and the Python script. */
export function bigPattern(size: number): Uint8Array {
  const out = new Uint8Array(size);
  for (let i = 0; i < size; i++) out[i] = (i * 31 + (i >>> 8) * 7 + (i >>> 16)) & 0xff;
  return out;
}

// ---- bytes ----------------------------------------------------------------------------------

/** Bytes of whatever a WebSocket implementation hands out: Buffer, Buffer[], ArrayBuffer, views, Blob. */
export async function toBytes(data: unknown): Promise<Uint8Array> {
  if (data instanceof Uint8Array) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice();
  if (data instanceof ArrayBuffer) return new Uint8Array(data.slice(0));
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice();
  if (Array.isArray(data)) return concatBytes(await Promise.all(data.map(toBytes)));
  if (typeof Blob !== "undefined" && data instanceof Blob) return new Uint8Array(await data.arrayBuffer());
  throw new TypeError(`not bytes: ${Object.prototype.toString.call(data)}`);
}

// ---- the runtime's own client -----------------------------------------------------------------

/**
 * Whether this runtime must have a global `WebSocket` client: Deno and Bun always do; Node from
 * version 22, where undici's client is on by default (Node 20 has it only behind
 * --experimental-websocket). Where it must not, the tests assert that it is absent.
 */
export const NATIVE_CLIENT_EXPECTED: boolean = runtimeName !== "node" || Number(process.versions.node.split(".")[0]) >= 22;

/** The runtime's own client as named in test titles, e.g. "Node v24.1.0's native WebSocket client (undici 7.10.0)". */
export const NATIVE_CLIENT_NAME: string = runtimeName === "node"
  ? `Node ${process.version}'s native WebSocket client (undici ${process.versions.undici ?? "?"})`
  : `${runtimeName}'s native WebSocket client`;

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
    /** Server options, e.g. `perMessageDeflate` (tests/interop/permessage-deflate.test.ts). */
    server?: ServerOptions;
  } = {},
): Promise<{ server: WebSocketServer; port: number; connections: ServerRecord[]; next(): Promise<ServerRecord> }> {
  const connections: ServerRecord[] = [];
  const records = new Map<ServerWebSocket, ServerRecord & { done: Deferred<CloseInfo> }>();
  const server = await serve({ ...options.server, port: 0, hostname: "127.0.0.1" }, {
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

/** Sends the three messages in the order every cell sends them. */
export function sendExchange(send: (data: string | Uint8Array) => void): void {
  send(TEXT);
  send(BINARY);
  send(BIG);
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

/**
 * A foreign client has sent our server the exchange: waits for the three echoes, then checks
 * what each side received.
 */
export async function assertEchoed(record: ServerRecord, client: { messages: Received[] }, peer: string): Promise<void> {
  await until(() => client.messages.length >= 3, "three echoes", 10_000);
  assertExchange(record.messages, `what our server received from ${peer}`);
  assertExchange(client.messages, `echoes ${peer} received`);
}

/** Our server pings with PING_2: the foreign client must answer with the same payload. */
export async function assertPingAnswered(record: ServerRecord): Promise<void> {
  record.socket.ping(PING_2);
  await until(() => record.pongs.length >= 1, "our server to get a pong", 5000);
  assertBytes(record.pongs[0], PING_2, "the pong our server saw");
}

/**
 * A foreign client has closed with CLOSE_CODE/CLOSE_REASON: our server must see that exactly,
 * echo the code, and have had no error. Returns the client's close.
 */
export async function assertClientClosed<T extends { code: number }>(
  record: ServerRecord,
  clientClosed: Promise<T>,
  peer: string,
): Promise<T> {
  assert.deepEqual(await withTimeout(record.closed, 10_000, "our server's close handler"), CLOSED);
  const clientSaw = await withTimeout(clientClosed, 10_000, `${peer}'s close event`);
  assert.equal(clientSaw.code, CLOSE_CODE, "our server echoes the close code (RFC 6455 §5.5.1)");
  assert.deepEqual(record.errors, []);
  return clientSaw;
}

/**
 * Our server closes with CLOSE_CODE_2/CLOSE_REASON_2: the foreign client must see the code and
 * reason exactly, and our server a clean close. Returns the client's close.
 */
export async function assertServerCloses<T extends { code: number; reason: string }>(
  record: ServerRecord,
  clientClosed: Promise<T>,
  peer: string,
): Promise<T> {
  record.socket.close(CLOSE_CODE_2, CLOSE_REASON_2);
  const clientSaw = await withTimeout(clientClosed, 10_000, `${peer}'s close event`);
  assert.equal(clientSaw.code, CLOSE_CODE_2, `${peer} sees our close code`);
  assert.equal(clientSaw.reason, CLOSE_REASON_2, `${peer} sees our close reason`);
  const serverSaw = await withTimeout(record.closed, 10_000, "our server's close handler");
  assert.equal(serverSaw.code, CLOSE_CODE_2);
  assert.equal(serverSaw.wasClean, true);
  return clientSaw;
}

// ---- our client -----------------------------------------------------------------------------

/**
 * Our WebSocket client, recording what it dispatches. Compression is off unless `options` say
 * otherwise: these cells test the plain path; tests/interop/permessage-deflate.test.ts has the
 * compressed ones.
 */
export async function openClient(url: string, protocols?: string[], options: WebSocketOptions = { perMessageDeflate: false }) {
  const ws = new WebSocket(url, protocols, options);
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
    sendExchange((data) => client.ws.send(data));
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

// ---- foreign servers ------------------------------------------------------------------------

/** What a foreign echo server saw on one connection. */
export interface PeerRecord {
  /** The request's Sec-WebSocket-Extensions offer, "" if none. */
  offeredExtensions: string;
  messages: Received[];
  /** Where the server reports them. */
  pings: Uint8Array[];
  pongs: Uint8Array[];
  closed: Promise<CloseInfo>;
  /** Resolves `closed`. */
  close(info: CloseInfo): void;
}

export function peerRecord(offeredExtensions: string): PeerRecord {
  const closed = deferred<CloseInfo>();
  return { offeredExtensions, messages: [], pings: [], pongs: [], closed: closed.promise, close: closed.resolve };
}

/**
 * A foreign echo server's answer to a message, recorded in `record`: the text "close me" closes
 * with CLOSE_CODE_2/CLOSE_REASON_2, anything else goes back as it came.
 */
export function echoOrClose(
  record: PeerRecord,
  data: string | Uint8Array,
  socket: { send(data: string | Uint8Array): void; close(code: number, reason: string): void },
): void {
  record.messages.push(typeof data === "string" ? { text: data } : { binary: data });
  if (data === "close me") socket.close(CLOSE_CODE_2, CLOSE_REASON_2);
  else socket.send(data);
}

/**
 * Our client's cell against a foreign server on `port` that echoes and closes on "close me":
 * the exchange, which our client closes (clientExchange); our raw ping; the server's close.
 * With `seen`, the server's records, what it saw on the first connection is checked too; with
 * `pings` (it pinged with PING_2 on connection and reports pings), our pong and our ping as it
 * saw them. `afterClose` checks whatever else the server reports on the first connection.
 */
export async function clientCell(
  peer: string,
  port: number,
  options: { seen?: PeerRecord[]; pings?: boolean; afterClose?: () => Promise<void> } = {},
): Promise<void> {
  const url = `ws://127.0.0.1:${port}/`;
  const what = `our client × ${peer}`;
  const { seen } = options;
  const pinging = options.pings ? seen : undefined;

  const clientSaw = await clientExchange(url, what, pinging && (async () => {
    // The server pinged on connection; our client answered with the same payload.
    await until(() => pinging.length === 1 && pinging[0].pongs.length >= 1, `${peer} to get our pong`, 5000);
    assertBytes(pinging[0].pongs[0], PING_2, `the pong ${peer} got`);
  }));
  assert.equal(clientSaw.code, CLOSE_CODE, `${peer} echoes the close code`);
  assert.equal(clientSaw.wasClean, true);
  if (seen) {
    assert.equal(seen[0].offeredExtensions, "", "our client offers no extension");
    assertExchange(seen[0].messages, `what ${peer} received from our client`);
    assert.deepEqual(await withTimeout(seen[0].closed, 10_000, `${peer}'s close event`), CLOSED);
  }
  await options.afterClose?.();

  // Our ping (from our core over this runtime's adapter) is answered with its payload.
  await rawPing(port, `our ping to ${peer}`);
  if (pinging) {
    await until(() => pinging.length === 2 && pinging[1].pings.length >= 1, `${peer} to see our ping`, 5000);
    assertBytes(pinging[1].pings[0], PING, `the ping ${peer} saw`);
  }

  // The server closes; our client sees its code and reason exactly.
  assert.deepEqual(await clientObservesServerClose(url, what), CLOSED_2);
}
