/**
 * A Blob, then a string, then a Blob: they arrive in that order, from our client and from a
 * server socket alike, and both count them the same way in `bufferedAmount` until framed (the
 * Blobs' sizes and the string's UTF-8 bytes).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { runtimeName, serve, type ServerWebSocket, WebSocket } from "../../adapters/auto.ts";
import { until } from "../support/net.ts";

const first = new Blob([Uint8Array.of(1, 2, 3, 4, 5)]);
const text = "x€"; // 4 bytes
const second = new Blob([Uint8Array.of(6, 7, 8, 9, 10, 11, 12)]);
const QUEUED = 5 + 4 + 7;

/** Sends the three; returns how much `bufferedAmount` grew by at once. */
function sendThree(ws: { send(data: Blob | string): unknown; readonly bufferedAmount: number }): number {
  const before = ws.bufferedAmount;
  ws.send(first);
  ws.send(text);
  ws.send(second);
  return ws.bufferedAmount - before;
}

function show(data: string | Uint8Array | ArrayBuffer): string {
  return typeof data === "string" ? data : [...new Uint8Array(data)].join(",");
}

const EXPECTED = ["1,2,3,4,5", text, "6,7,8,9,10,11,12"];

test(`${runtimeName}: a Blob, a string and a Blob keep their order and count alike on both sides`, async () => {
  const atServer: string[] = [];
  let serverGrew = -1;
  let serverSocket: ServerWebSocket | null = null;
  const server = await serve({ port: 0 }, {
    open: (ws) => {
      serverSocket = ws;
      serverGrew = sendThree(ws);
    },
    message: (_ws, data) => void atServer.push(show(data)),
  });
  const ws = new WebSocket(`ws://127.0.0.1:${server.port}/`);
  ws.binaryType = "arraybuffer";
  const atClient: string[] = [];
  ws.onmessage = (e) => void atClient.push(show((e as MessageEvent).data));
  await until(() => ws.readyState === WebSocket.OPEN, "the client to open");
  const clientGrew = sendThree(ws);

  assert.equal(serverGrew, QUEUED, "server socket's bufferedAmount");
  assert.equal(clientGrew, QUEUED, "client's bufferedAmount");
  await until(() => atServer.length === 3 && atClient.length === 3, "the messages");
  assert.deepEqual(atServer, EXPECTED);
  assert.deepEqual(atClient, EXPECTED);
  await until(() => ws.bufferedAmount === 0 && serverSocket!.bufferedAmount === 0, "everything written");

  const closed = new Promise((resolve) => (ws.onclose = resolve));
  ws.close();
  await closed;
  await server.close();
});
