/**
 * Interop with the runtime's own WebSocket client (`globalThis.WebSocket`: Deno's and Bun's
 * native implementations, and undici's on Node 22 and later) against our server, over real
 * loopback sockets. On Node 20, which has none without a flag, the test asserts that it is
 * absent; the test command's node24 pass runs the cells with undici. The standard API cannot
 * send pings; our server pings and checks the pong. Where the native client has a non-standard
 * `ping()` (Bun), it pings too.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { runtimeName } from "../../adapters/auto.ts";
import { until } from "../support/net.ts";
import {
  assertBytes,
  assertClientClosed,
  assertEchoed,
  assertPingAnswered,
  assertServerCloses,
  BINARY,
  CLOSE_CODE,
  CLOSE_REASON,
  deferred,
  NATIVE_CLIENT_EXPECTED,
  NATIVE_CLIENT_NAME,
  PING,
  type Received,
  sendExchange,
  startRecordingServer,
  withTimeout,
} from "../support/interop.ts";

type NativeWebSocket = {
  readyState: number;
  binaryType: string;
  extensions: string;
  protocol: string;
  send(data: string | ArrayBuffer | ArrayBufferView): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: string, listener: (event: unknown) => void): void;
  ping?: (data?: ArrayBufferView) => void;
};
type NativeWebSocketClass = new (url: string) => NativeWebSocket;

const Native = (globalThis as { WebSocket?: NativeWebSocketClass }).WebSocket;
const peer = NATIVE_CLIENT_NAME;

/** Opens the native client with binaryType "arraybuffer", recording what it dispatches. */
async function openNative(url: string) {
  const ws = new Native!(url);
  ws.binaryType = "arraybuffer";
  const messages: Received[] = [];
  const closed = deferred<{ code: number; reason: string; wasClean: boolean }>();
  ws.addEventListener("message", (e) => {
    const data = (e as MessageEvent).data as unknown;
    if (typeof data === "string") messages.push({ text: data });
    else if (data instanceof ArrayBuffer) messages.push({ binary: new Uint8Array(data) });
    else messages.push({ text: `unexpected ${Object.prototype.toString.call(data)}` });
  });
  ws.addEventListener("close", (e) => {
    const c = e as CloseEvent;
    closed.resolve({ code: c.code, reason: c.reason, wasClean: c.wasClean });
  });
  await withTimeout(new Promise<void>((resolve, reject) => {
    ws.addEventListener("open", () => resolve());
    ws.addEventListener("close", () => reject(new Error(`${peer} did not open`)));
  }), 10_000, `${peer} to open`);
  return { ws, messages, closed: closed.promise };
}

describe(`interop on ${runtimeName}: our server × ${peer}`, () => {
  if (!NATIVE_CLIENT_EXPECTED) {
    test(`Node ${process.version} has no global WebSocket (Node 22 and later do: the node24 pass tests it)`, () => {
      assert.equal(Native, undefined);
    });
    return;
  }
  if (Native === undefined) {
    // A missing WebSocket where one must be is a failure, not a skip.
    test(`${runtimeName} ${process.version} has a native WebSocket`, () => assert.fail(`globalThis.WebSocket is missing`));
    return;
  }

  test("text, binary, 1 MiB, server ping, client-initiated close with code and reason", async () => {
    const ours = await startRecordingServer();
    let client: Awaited<ReturnType<typeof openNative>> | null = null;
    try {
      client = await openNative(`ws://127.0.0.1:${ours.port}/`);
      const record = await ours.next();
      assert.equal(client.ws.extensions, "", `nothing negotiated (offered: ${record.offeredExtensions || "none"})`);
      assert.equal(record.extensions, "");
      const ws = client.ws;
      sendExchange((data) => ws.send(data === BINARY ? BINARY.slice().buffer : data)); // the binary one as an ArrayBuffer
      await assertEchoed(record, client, peer);

      // Our server pings; the native client answers with the same payload.
      await assertPingAnswered(record);

      if (typeof client.ws.ping === "function") {
        // Bun's client can ping (non-standard): our server sees it and answers (the core pongs).
        client.ws.ping(PING);
        await until(() => record.pings.length >= 1, `our server to see ${peer}'s ping`, 5000);
        assertBytes(record.pings[0], PING, "the ping our server saw");
      } else {
        assert.notEqual(runtimeName, "bun", "Bun's native client has ping()");
      }

      client.ws.close(CLOSE_CODE, CLOSE_REASON);
      const clientSaw = await assertClientClosed(record, client.closed, peer);
      assert.equal(clientSaw.wasClean, true);
    } finally {
      if (client && client.ws.readyState < 2) client.ws.close();
      await ours.server.close({ timeout: 1000 });
      if (client) await withTimeout(client.closed, 5000, `${peer} to close`);
    }
  });

  test("server-initiated close: the native client sees code, reason and wasClean exactly", async () => {
    const ours = await startRecordingServer();
    let client: Awaited<ReturnType<typeof openNative>> | null = null;
    try {
      client = await openNative(`ws://127.0.0.1:${ours.port}/`);
      const record = await ours.next();
      const clientSaw = await assertServerCloses(record, client.closed, peer);
      assert.equal(clientSaw.wasClean, true);
    } finally {
      if (client && client.ws.readyState < 2) client.ws.close();
      await ours.server.close({ timeout: 1000 });
    }
  });
});
