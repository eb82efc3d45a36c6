/**
 * The interop cell with anyws on both sides, on the runtime running the test: our server × our
 * WebSocket client over a real loopback socket, the same exchange as every foreign cell. The
 * client's own pings come from a hand-driven core client (the WebSocket API has none).
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { runtimeName } from "../../adapters/auto.ts";
import {
  assertBytes,
  assertClientClosed,
  assertEchoed,
  assertPingAnswered,
  assertServerCloses,
  CLOSE_CODE,
  CLOSE_REASON,
  openClient,
  PING,
  rawPing,
  sendExchange,
  startRecordingServer,
} from "../support/interop.ts";

describe(`interop on ${runtimeName}: anyws × anyws`, () => {
  test("our server × our client: text, binary, 1 MiB, pings both ways, closes both ways", async () => {
    const ours = await startRecordingServer();
    const url = `ws://127.0.0.1:${ours.port}/`;
    const clients: Awaited<ReturnType<typeof openClient>>[] = [];
    try {
      const client = await openClient(url);
      clients.push(client);
      const record = await ours.next();
      assert.equal(record.extensions, "");
      assert.equal(client.ws.extensions, "");
      sendExchange((data) => client.ws.send(data));
      await assertEchoed(record, client, "our client");
      // Our server pings; our client answers with the payload.
      await assertPingAnswered(record);
      client.ws.close(CLOSE_CODE, CLOSE_REASON);
      const clientSaw = await assertClientClosed(record, client.closed, "our client");
      assert.equal(clientSaw.wasClean, true);

      // A client ping, answered by our server with its payload and reported to its handler.
      await rawPing(ours.port, "our ping to our server");
      const pinged = await ours.next();
      assert.equal(pinged.pings.length, 1);
      assertBytes(pinged.pings[0], PING, "the ping our server saw");

      // Our server closes; our client sees code and reason exactly.
      const second = await openClient(url);
      clients.push(second);
      await assertServerCloses(await ours.next(), second.closed, "our client");
    } finally {
      for (const c of clients) c.ws.close();
      await ours.server.close({ timeout: 1000 });
    }
  });
});
