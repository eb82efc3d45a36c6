/**
 * Interop (Bun only): our client × Bun's native server, `Bun.serve` with `websocket` handlers,
 * over real loopback sockets. Bun's server reports pings and pongs, so pings are checked both
 * ways: Bun pings our WebSocket client, and our core (over the Bun adapter) pings Bun.
 */
import { describe, test } from "node:test";
import type { ServerWebSocket } from "bun";
import { clientCell, echoOrClose, PING_2, type PeerRecord, peerRecord, toBytes } from "../../support/interop.ts";

const peer = `Bun ${Bun.version} Bun.serve websocket`;

describe(`interop on bun: our client × ${peer}`, () => {
  test("text, binary, 1 MiB, pings both ways, closes both ways", async () => {
    const seen: PeerRecord[] = [];
    const server = Bun.serve<PeerRecord>({
      hostname: "127.0.0.1",
      port: 0,
      fetch(request, server) {
        const data = peerRecord(request.headers.get("sec-websocket-extensions") ?? "");
        if (server.upgrade(request, { data })) return undefined;
        return new Response("not a WebSocket request", { status: 400 });
      },
      websocket: {
        perMessageDeflate: false,
        open(ws: ServerWebSocket<PeerRecord>) {
          seen.push(ws.data);
          ws.ping(PING_2);
        },
        message(ws: ServerWebSocket<PeerRecord>, message: string | Buffer) {
          const data = typeof message === "string"
            ? message
            : new Uint8Array(message.buffer, message.byteOffset, message.byteLength).slice();
          echoOrClose(ws.data, data, ws);
        },
        ping(ws: ServerWebSocket<PeerRecord>, data: Buffer) {
          void toBytes(data).then((b) => ws.data.pings.push(b));
        },
        pong(ws: ServerWebSocket<PeerRecord>, data: Buffer) {
          void toBytes(data).then((b) => ws.data.pongs.push(b));
        },
        close(ws: ServerWebSocket<PeerRecord>, code: number, reason: string) {
          ws.data.close({ code, reason, wasClean: true });
        },
      },
    });
    try {
      await clientCell(peer, server.port!, { seen, pings: true });
    } finally {
      await server.stop(true);
    }
  });
});
