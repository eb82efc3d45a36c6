/**
 * The core's tuning per engine (adapters/shared/engine.ts): what `engineTuning()` returns on this
 * runtime, that loading the adapters changes nothing for anyone else, and that every adapter's
 * server and client connections (the Web Streams one included) run with it.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { engineTuning } from "../../adapters/shared/engine.ts";
import { isSlabPiece, SlabAllocator } from "../../core/bytes.ts";
import { type Connection, PORTABLE_TUNING, ServerConnection, type Tuning } from "../../core/mod.ts";
import * as streams from "../../adapters/streams/mod.ts";
import { pipePair } from "../support/streams.ts";
import { until } from "../support/net.ts";

const RUNTIME = "Bun" in globalThis ? "bun" : "Deno" in globalThis ? "deno" : "node";

/** A tuning as plain facts; the ASCII decoder judged by what it does: "hello" from the middle of a larger buffer. */
function describeTuning(tuning: Tuning) {
  const decodesRange = tuning.asciiDecoder?.(new TextEncoder().encode("..hello.."), 2, 7) === "hello";
  return {
    maskWordSize: tuning.maskWordSize,
    pooling: tuning.allocator instanceof SlabAllocator,
    lenientDecodeLimit: tuning.lenientDecodeLimit,
    payloadCopyLimit: tuning.payloadCopyLimit,
    asciiDecoder: tuning.asciiDecoder === null ? "none" : decodesRange ? "decodes ranges" : "broken",
  };
}

const EXPECTED = {
  // V8: 64-bit masking words, small buffers from slabs, ASCII decoded from ranges by latin1Slice.
  node: { maskWordSize: 8, pooling: true, lenientDecodeLimit: 256, payloadCopyLimit: 0, asciiDecoder: "decodes ranges" },
  // V8 with Deno's lenient decoder, faster than its fatal one at any size.
  deno: { maskWordSize: 8, pooling: true, lenientDecodeLimit: Infinity, payloadCopyLimit: 0, asciiDecoder: "decodes ranges" },
  // JavaScriptCore: 32-bit words, no slabs, short payloads copied out of the chunk.
  bun: { maskWordSize: 4, pooling: false, lenientDecodeLimit: 256, payloadCopyLimit: 128, asciiDecoder: "decodes ranges" },
};

test(`on ${RUNTIME}, engineTuning() is this engine's tuning: one frozen object, the same on every call`, () => {
  const tuning = engineTuning();
  assert.deepEqual(describeTuning(tuning), EXPECTED[RUNTIME]);
  assert.equal(engineTuning(), tuning);
  assert.ok(Object.isFrozen(tuning));
});

test("with every adapter of this runtime loaded, a connection created without a tuning has the portable one and writes no slab piece", async () => {
  await import("../../adapters/auto.ts");
  await import("../../adapters/streams/mod.ts");
  const connection = new ServerConnection();
  assert.equal(connection.tuning, PORTABLE_TUNING);
  assert.deepEqual(describeTuning(connection.tuning), { maskWordSize: 4, pooling: false, lenientDecodeLimit: 256, payloadCopyLimit: 0, asciiDecoder: "none" });
  const request = "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
  connection.receive(new TextEncoder().encode(request));
  connection.accept();
  for (let i = 0; i < 20; i++) connection.sendText(`message ${i}`);
  const chunks = connection.pollOutput();
  assert.ok(chunks.length >= 2);
  for (const chunk of chunks) assert.ok(!isSlabPiece(chunk));
});

/** The core connection under an adapter's socket object (held privately by its session). */
function connectionOf(socket: unknown): Connection {
  return (socket as { session: { connection: Connection } }).session.connection;
}

interface Adapter {
  name: string;
  /** Starts a server, opens a client to it; returns both sides' core connections, and a stop function. */
  pair(): Promise<{ server: Connection; client: Connection; stop: () => Promise<void> }>;
}

const ADAPTERS: Adapter[] = [{
  name: "streams",
  async pair() {
    let server: Connection | null = null;
    const wss = new streams.WebSocketServer<undefined>({}, { open: (ws) => void (server = connectionOf(ws)) });
    const WebSocket = streams.createStreamsWebSocket(() => {
      const [clientEnd, serverEnd] = pipePair();
      streams.acceptStreams(wss, serverEnd);
      return clientEnd;
    });
    const ws = new WebSocket("ws://stream.example/");
    await until(() => ws.readyState === WebSocket.OPEN && server !== null, "open");
    return {
      server: server!,
      client: connectionOf(ws),
      async stop() {
        ws.close(1000);
        await until(() => wss.clients.size === 0, "the server to let go of the socket");
      },
    };
  },
}];

const runtimeAdapter = RUNTIME === "node" ? "../../adapters/node/mod.ts" : RUNTIME === "deno" ? "../../adapters/deno/mod.ts" : "../../adapters/bun/mod.ts";
ADAPTERS.push({
  name: RUNTIME,
  async pair() {
    const adapter = await import(runtimeAdapter);
    let server: Connection | null = null;
    const wss = await adapter.serve({ port: 0, hostname: "127.0.0.1" }, { open: (ws: unknown) => void (server = connectionOf(ws)) });
    const ws = new adapter.WebSocket(`ws://127.0.0.1:${wss.port}/`);
    await until(() => ws.readyState === 1 && server !== null, "open");
    return {
      server: server!,
      client: connectionOf(ws),
      async stop() {
        ws.close(1000);
        await until(() => ws.readyState === 3, "the client to close");
        await wss.close();
      },
    };
  },
});

for (const adapter of ADAPTERS) {
  test(`the ${adapter.name} adapter's server and client connections run with engineTuning()`, async () => {
    const { server, client, stop } = await adapter.pair();
    try {
      assert.equal(server.tuning, engineTuning());
      assert.equal(client.tuning, engineTuning());
    } finally {
      await stop();
    }
  });
}
