/**
 * Interop (Bun only): our client × Bun's native server, `Bun.serve` with `websocket` handlers,
 * over real loopback sockets. Bun's server reports pings and pongs, so pings are checked both
 * ways: Bun pings our WebSocket client, and our core (over the Bun adapter) pings Bun.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import type { ServerWebSocket } from "bun";
import { until } from "../../support/net.ts";
import {
  assertBytes,
  assertExchange,
  clientExchange,
  clientObservesServerClose,
  CLOSE_CODE,
  CLOSE_CODE_2,
  CLOSE_REASON,
  CLOSE_REASON_2,
  type CloseInfo,
  deferred,
  PING,
  PING_2,
  rawPing,
  type Received,
  toBytes,
  withTimeout,
} from "../../support/interop.ts";

const peer = `Bun ${Bun.version} Bun.serve websocket`;

interface Seen {
  messages: Received[];
  pings: Uint8Array[];
  pongs: Uint8Array[];
  closed: Promise<CloseInfo>;
  done: (info: CloseInfo) => void;
  extensionsOffered: string;
}

describe(`interop on bun: our client × ${peer}`, () => {
  test("text, binary, 1 MiB, pings both ways, closes both ways", async () => {
    const seen: Seen[] = [];
    const server = Bun.serve<Seen>({
      hostname: "127.0.0.1",
      port: 0,
      fetch(request, server) {
        const closed = deferred<CloseInfo>();
        const data: Seen = {
          messages: [],
          pings: [],
          pongs: [],
          closed: closed.promise,
          done: closed.resolve,
          extensionsOffered: request.headers.get("sec-websocket-extensions") ?? "",
        };
        if (server.upgrade(request, { data })) return undefined;
        return new Response("not a WebSocket request", { status: 400 });
      },
      websocket: {
        perMessageDeflate: false,
        open(ws: ServerWebSocket<Seen>) {
          seen.push(ws.data);
          ws.ping(PING_2);
        },
        message(ws: ServerWebSocket<Seen>, message: string | Buffer) {
          if (typeof message === "string") {
            ws.data.messages.push({ text: message });
            if (message === "close me") ws.close(CLOSE_CODE_2, CLOSE_REASON_2);
            else ws.send(message);
          } else {
            const bytes = new Uint8Array(message.buffer, message.byteOffset, message.byteLength).slice();
            ws.data.messages.push({ binary: bytes });
            ws.send(bytes);
          }
        },
        ping(ws: ServerWebSocket<Seen>, data: Buffer) {
          void toBytes(data).then((b) => ws.data.pings.push(b));
        },
        pong(ws: ServerWebSocket<Seen>, data: Buffer) {
          void toBytes(data).then((b) => ws.data.pongs.push(b));
        },
        close(ws: ServerWebSocket<Seen>, code: number, reason: string) {
          ws.data.done({ code, reason, wasClean: true });
        },
      },
    });
    try {
      const url = `ws://127.0.0.1:${server.port}/`;
      const clientSaw = await clientExchange(url, `our client × ${peer}`, async () => {
        await until(() => seen.length === 1 && seen[0].pongs.length >= 1, `${peer} to get our pong`, 5000);
        assertBytes(seen[0].pongs[0], PING_2, `the pong ${peer} got`);
      });
      assert.equal(seen[0].extensionsOffered, "", "our client offers no extension");
      assertExchange(seen[0].messages, `what ${peer} received from our client`);
      const serverSaw = await withTimeout(seen[0].closed, 10_000, `${peer}'s close handler`);
      assert.deepEqual(serverSaw, { code: CLOSE_CODE, reason: CLOSE_REASON, wasClean: true });
      assert.equal(clientSaw.code, CLOSE_CODE, "Bun echoes the close code");
      assert.equal(clientSaw.wasClean, true);

      await rawPing(server.port!, `our ping to ${peer}`);
      await until(() => seen.length === 2 && seen[1].pings.length >= 1, `${peer} to see our ping`, 5000);
      assertBytes(seen[1].pings[0], PING, `the ping ${peer} saw`);

      const closedByPeer = await clientObservesServerClose(url, `our client × ${peer}`);
      assert.deepEqual(closedByPeer, { code: CLOSE_CODE_2, reason: CLOSE_REASON_2, wasClean: true });
    } finally {
      await server.stop(true);
    }
  });
});
