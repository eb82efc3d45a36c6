/**
 * Interop with the `ws` npm package over real loopback sockets: our server × its client, our
 * client × its WebSocketServer. On Node and Deno (Node compatibility) this is the real npm ws;
 * on Bun, `import "ws"` resolves to Bun's built-in ws-compatible module (Bun's own native
 * WebSocket implementation), a different foreign peer, named so in the test titles.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import WebSocket, { WebSocketServer } from "ws";
import { runtimeName } from "../../adapters/auto.ts";
import { concatBytes } from "../../core/bytes.ts";
import { until } from "../support/net.ts";
import {
  assertBytes,
  assertClientClosed,
  assertEchoed,
  assertPingAnswered,
  assertServerCloses,
  clientCell,
  CLOSE_CODE,
  CLOSE_REASON,
  CLOSED,
  deferred,
  echoOrClose,
  openClient,
  PING,
  PING_2,
  type PeerRecord,
  peerRecord,
  type Received,
  sendExchange,
  startRecordingServer,
  toBytes,
  withTimeout,
} from "../support/interop.ts";

const peer = runtimeName === "bun"
  ? "Bun's built-in ws module (native)"
  : `ws@${(createRequire(import.meta.url)("ws/package.json") as { version: string }).version}`;

function reasonText(reason: unknown): string {
  return typeof reason === "string" ? reason : new TextDecoder().decode(reason as Uint8Array);
}

/** A `ws` client, recording what it gets. */
async function openWsClient(url: string) {
  const ws = new WebSocket(url, { perMessageDeflate: false });
  const messages: Received[] = [];
  const pings: Uint8Array[] = [];
  const pongs: Uint8Array[] = [];
  const closed = deferred<{ code: number; reason: string }>();
  ws.on("message", (data: unknown, isBinary: boolean) => {
    void toBytes(data).then((bytes) => {
      messages.push(isBinary ? { binary: bytes } : { text: new TextDecoder().decode(bytes) });
    });
  });
  ws.on("ping", (data: unknown) => void toBytes(data).then((b) => pings.push(b)));
  ws.on("pong", (data: unknown) => void toBytes(data).then((b) => pongs.push(b)));
  ws.on("close", (code: number, reason: unknown) => closed.resolve({ code, reason: reasonText(reason) }));
  ws.on("error", () => {});
  await withTimeout(new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve());
    ws.once("error", (error: Error) => reject(error));
  }), 10_000, `${peer} client to open`);
  return { ws, messages, pings, pongs, closed: closed.promise };
}

describe(`interop on ${runtimeName}: anyws × ${peer}`, () => {
  test(`our server × ${peer} client: text, binary, 1 MiB, pings both ways, client-initiated close`, async () => {
    const ours = await startRecordingServer();
    let client: Awaited<ReturnType<typeof openWsClient>> | null = null;
    try {
      client = await openWsClient(`ws://127.0.0.1:${ours.port}/`);
      const record = await ours.next();
      assert.equal(record.extensions, "");
      const c = client;
      sendExchange((data) => c.ws.send(data));
      await assertEchoed(record, client, peer);

      // The client pings: our server reports it and answers with the same payload.
      client.ws.ping(PING);
      await until(() => c.pongs.length >= 1, `${peer} to get a pong`, 5000);
      assertBytes(client.pongs[0], PING, "the pong's payload");
      assert.equal(record.pings.length, 1);
      assertBytes(record.pings[0], PING, "the ping our server saw");

      // Our server pings: the client sees it and answers.
      await assertPingAnswered(record);
      await until(() => c.pings.length >= 1, `${peer} to see the ping`, 5000);
      assertBytes(client.pings[0], PING_2, `the ping ${peer} saw`);

      client.ws.close(CLOSE_CODE, CLOSE_REASON);
      await assertClientClosed(record, client.closed, peer);
    } finally {
      client?.ws.terminate();
      await ours.server.close({ timeout: 1000 });
    }
  });

  test(`our server × ${peer} client: server-initiated close`, async () => {
    const ours = await startRecordingServer();
    let client: Awaited<ReturnType<typeof openWsClient>> | null = null;
    try {
      client = await openWsClient(`ws://127.0.0.1:${ours.port}/`);
      const record = await ours.next();
      await assertServerCloses(record, client.closed, peer);
    } finally {
      client?.ws.terminate();
      await ours.server.close({ timeout: 1000 });
    }
  });

  test(`our client × ${peer} WebSocketServer: text, binary, 1 MiB, pings both ways, closes both ways`, async () => {
    const seen: PeerRecord[] = [];
    const wss = new WebSocketServer({ host: "127.0.0.1", port: 0, perMessageDeflate: false });
    await withTimeout(new Promise<void>((resolve) => wss.once("listening", () => resolve())), 5000, "listening");
    wss.on("connection", (ws: WebSocket, request: { headers: Record<string, string | string[] | undefined> }) => {
      const s = peerRecord(String(request.headers["sec-websocket-extensions"] ?? ""));
      seen.push(s);
      ws.on("message", (data: unknown, isBinary: boolean) => {
        void toBytes(data).then((bytes) => echoOrClose(s, isBinary ? bytes : new TextDecoder().decode(bytes), ws));
      });
      ws.on("ping", (data: unknown) => void toBytes(data).then((b) => s.pings.push(b)));
      ws.on("pong", (data: unknown) => void toBytes(data).then((b) => s.pongs.push(b)));
      // ws's close event has no wasClean: only the code and the reason are ws's own.
      ws.on("close", (code: number, reason: unknown) => s.close({ code, reason: reasonText(reason), wasClean: true }));
      ws.on("error", () => {});
      ws.ping(PING_2);
    });
    try {
      await clientCell(peer, (wss.address() as { port: number }).port, { seen, pings: true });
    } finally {
      for (const client of wss.clients) client.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    }
  });
});

/** "hé🚀" as UTF-8, cut inside "é" and inside "🚀", sent as three text fragments. */
const FRAGMENTS = [[0x68, 0xc3], [0xa9, 0xf0, 0x9f], [0x9a, 0x80]].map((b) => new Uint8Array(b));
const FRAGMENTED_TEXT = "hé🚀";
const FRAGMENTED_BINARY = [new Uint8Array([1, 2, 3]), new Uint8Array(0), new Uint8Array(70_000).fill(9)];

/** Sends the fragmented text (with a ping between fragments) and binary messages through a ws socket. */
function sendFragmented(ws: WebSocket): void {
  ws.send(FRAGMENTS[0], { binary: false, fin: false });
  ws.ping(PING);
  ws.send(FRAGMENTS[1], { binary: false, fin: false });
  ws.send(FRAGMENTS[2], { binary: false, fin: true });
  FRAGMENTED_BINARY.forEach((part, i) => ws.send(part, { binary: true, fin: i === FRAGMENTED_BINARY.length - 1 }));
}

describe(`interop on ${runtimeName}: fragmented messages, anyws × ${peer}`, () => {
  test(`our server × ${peer} client: fragments split inside UTF-8 sequences, a ping between fragments`, async () => {
    const ours = await startRecordingServer();
    let client: Awaited<ReturnType<typeof openWsClient>> | null = null;
    try {
      client = await openWsClient(`ws://127.0.0.1:${ours.port}/`);
      const record = await ours.next();
      sendFragmented(client.ws);
      const c = client;
      await until(() => c.messages.length >= 2 && c.pongs.length >= 1, "two echoes and a pong", 10_000);
      assert.deepEqual(record.messages[0], { text: FRAGMENTED_TEXT });
      assert.ok("binary" in record.messages[1]);
      assertBytes(record.messages[1].binary, concatBytes(FRAGMENTED_BINARY), "the fragmented binary message");
      assertBytes(record.pings[0], PING, "the ping between fragments");
      assert.deepEqual(client.messages[0], { text: FRAGMENTED_TEXT });
      client.ws.close(CLOSE_CODE, CLOSE_REASON);
      assert.deepEqual(await withTimeout(record.closed, 10_000, "close"), CLOSED);
    } finally {
      client?.ws.terminate();
      await ours.server.close({ timeout: 1000 });
    }
  });

  test(`our client × ${peer} WebSocketServer: fragments split inside UTF-8 sequences, a ping between fragments`, async () => {
    const wss = new WebSocketServer({ host: "127.0.0.1", port: 0, perMessageDeflate: false });
    await withTimeout(new Promise<void>((resolve) => wss.once("listening", () => resolve())), 5000, "listening");
    const pongs: Uint8Array[] = [];
    wss.on("connection", (ws: WebSocket) => {
      ws.on("pong", (data: unknown) => void toBytes(data).then((b) => pongs.push(b)));
      ws.on("error", () => {});
      sendFragmented(ws);
    });
    try {
      const port = (wss.address() as { port: number }).port;
      const client = await openClient(`ws://127.0.0.1:${port}/`);
      await until(() => client.messages.length >= 2 && pongs.length >= 1, "two messages and a pong", 10_000);
      assert.deepEqual(client.messages[0], { text: FRAGMENTED_TEXT });
      assert.ok("binary" in client.messages[1]);
      assertBytes(client.messages[1].binary, concatBytes(FRAGMENTED_BINARY), "the fragmented binary message");
      assertBytes(pongs[0], PING, "our client's pong to the ping between fragments");
      client.ws.close(CLOSE_CODE, CLOSE_REASON);
      assert.equal((await withTimeout(client.closed, 10_000, "close")).code, CLOSE_CODE);
    } finally {
      for (const client of wss.clients) client.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    }
  });
});
