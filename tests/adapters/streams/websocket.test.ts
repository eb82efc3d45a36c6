/** The server and the client over in-memory Web Streams: no socket at all, any runtime. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { acceptStreams, createStreamsWebSocket, WebSocketServer } from "../../../adapters/streams/mod.ts";
import { until } from "../../support/net.ts";
import { pipePair } from "../../support/streams.ts";
import { SlabAllocator, unpooled } from "../../../core/bytes.ts";
import { createTuning } from "../../../core/tuning.ts";

test("a WebSocket server and client talk over a pair of TransformStreams", async () => {
  const seen: { host: string; port: number }[] = [];
  let remote = "";
  const server = new WebSocketServer<undefined>({}, {
    upgrade: (request) => void (remote = request.remoteAddress),
    message: (ws, data, isBinary) => ws.send(isBinary ? data : `echo ${data}`),
  });
  const WebSocket = createStreamsWebSocket((target) => {
    seen.push({ host: target.host, port: target.port });
    const [clientEnd, serverEnd] = pipePair();
    acceptStreams(server, serverEnd, { remoteAddress: "in-memory" });
    return clientEnd;
  });
  const ws = new WebSocket("ws://stream.example:9000/chat");
  ws.binaryType = "uint8array";
  const messages: unknown[] = [];
  ws.onmessage = (e) => messages.push((e as MessageEvent).data);
  await until(() => ws.readyState === WebSocket.OPEN, "open");
  ws.send("hello");
  ws.send(new Uint8Array(100_000).fill(9));
  await until(() => messages.length === 2, "two echoes");
  assert.equal(messages[0], "echo hello");
  assert.ok(messages[1] instanceof Uint8Array && messages[1].length === 100_000 && messages[1].every((b) => b === 9));
  assert.deepEqual(seen, [{ host: "stream.example", port: 9000 }]);
  assert.equal(remote, "in-memory");
  const closed = new Promise<CloseEvent>((resolve) => (ws.onclose = (e) => resolve(e as CloseEvent)));
  ws.close(1000, "done");
  const event = await closed;
  assert.equal(event.code, 1000);
  assert.equal(event.wasClean, true);
  await until(() => server.clients.size === 0, "the server to let go of the socket");
});

test("with a pooling allocator on both sides, no piece of the sender's slabs reaches an in-process peer's application", async () => {
  const tuning = createTuning({ allocator: new SlabAllocator() });
  {
    const received: Uint8Array[] = [];
    const server = new WebSocketServer<undefined>({ tuning }, {
      message: (ws, data) => {
        received.push(data as Uint8Array);
        ws.send(`got ${received.length}`);
      },
    });
    const WebSocket = createStreamsWebSocket(() => {
      const [clientEnd, serverEnd] = pipePair();
      acceptStreams(server, serverEnd);
      return clientEnd;
    });
    const ws = new WebSocket("ws://stream.example/", [], { tuning });
    const replies: string[] = [];
    ws.onmessage = (e) => replies.push((e as MessageEvent).data as string);
    await until(() => ws.readyState === WebSocket.OPEN, "open");
    // Small frames, each cut from a slab on the sending side; alone or merged on the way.
    for (let i = 1; i <= 20; i++) {
      ws.send(new Uint8Array(i).fill(i));
      if (i % 5 === 0) await until(() => received.length === i, `message ${i}`);
    }
    await until(() => replies.length === 20, "twenty replies");
    assert.deepEqual(received.map((b) => [b.length, b[0]]), Array.from({ length: 20 }, (_, i) => [i + 1, i + 1]));
    // A piece of a slab is what unpooled() copies; none of what arrived is one.
    for (const bytes of received) assert.equal(unpooled(bytes), bytes, "the receiving side's bytes are not a slab piece");
    assert.deepEqual(replies, Array.from({ length: 20 }, (_, i) => `got ${i + 1}`));
    ws.close(1000);
    await until(() => server.clients.size === 0, "the server to let go of the socket");
  }
});
