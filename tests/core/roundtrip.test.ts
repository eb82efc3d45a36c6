/** Client core ↔ server core in memory: what one side sends, the other receives, in order and byte-exact. */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import type { Connection, ConnectionEvent } from "../../core/mod.ts";
import { createPair, drainOutput, type Pair } from "../support/core-pair.ts";
import { TuningScope } from "../support/core-settings.ts";
import { createTuning } from "../../core/tuning.ts";

/** The tuning of the pairs the tests below create. */
const tuning = new TuningScope();
import { SlabAllocator, unpooled } from "../../core/bytes.ts";

const SIZES = [0, 1, 125, 126, 127, 65535, 65536, 1024 * 1024];

type Sent = { binary: boolean; data: Uint8Array | string };

function seeded(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

function binaryOf(size: number, seed: number): Uint8Array {
  const next = seeded(seed);
  const out = new Uint8Array(size);
  for (let i = 0; i < size; i++) out[i] = next() & 0xff;
  return out;
}

const PIECES = ["\ufeff", "a", "b", "xyz", "\u00e9", "\u20ac", "\u{1f600}", "\u65e5\u672c", "\u{10ffff}"];
const PIECE_BYTES = PIECES.map((p) => new TextEncoder().encode(p).length);

/** A string whose UTF-8 encoding is exactly `size` bytes, with multi-byte characters mixed in. */
function textOf(size: number, seed: number): string {
  const next = seeded(seed);
  const parts: string[] = [];
  let bytes = 0;
  while (bytes < size) {
    const left = size - bytes;
    const index = next() % PIECES.length;
    let piece = PIECES[index];
    const length = PIECE_BYTES[index];
    if (length > left) piece = "z".repeat(left);
    parts.push(piece);
    bytes += Math.min(length, left);
  }
  const text = parts.join("");
  assert.equal(new TextEncoder().encode(text).length, size);
  return text;
}

const messageCache = new Map<number, Sent[]>();

/** One message of each size class and type; the same seed gives the same (shared, unmodified) messages. */
function messagesOf(seed: number): Sent[] {
  const cached = messageCache.get(seed);
  if (cached) return cached;
  const messages: Sent[] = [];
  messageCache.set(seed, messages);
  for (const size of SIZES) {
    messages.push({ binary: true, data: binaryOf(size, seed + size) });
    messages.push({ binary: false, data: textOf(size, seed + size + 1) });
  }
  return messages;
}

function send(connection: Connection, m: Sent): void {
  if (m.binary) connection.sendBinary(m.data as Uint8Array);
  else connection.sendText(m.data as string);
}

/** Whole messages among `events`, as sent. */
function received(events: ConnectionEvent[]): Sent[] {
  const out: Sent[] = [];
  for (const e of events) {
    if (e.type === "binary") out.push({ binary: true, data: e.data.slice() });
    else if (e.type === "text") out.push({ binary: false, data: e.data });
  }
  return out;
}

function assertSameMessages(actual: Sent[], expected: Sent[], label: string): void {
  assert.equal(actual.length, expected.length, `${label}: message count`);
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i];
    const e = expected[i];
    const what = `${label}: message ${i} (${e.binary ? "binary" : "text"}, ${e.data.length})`;
    assert.equal(a.binary, e.binary, `${what}: type`);
    if (e.binary) {
      assert.equal(a.data.length, e.data.length, `${what}: size`);
      // Compare as one comparison, not a million assertion calls.
      assert.ok(bytesEqual(a.data as Uint8Array, e.data as Uint8Array), `${what}: bytes`);
    } else {
      assert.ok(a.data === e.data, `${what}: text`);
    }
  }
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Counts the frames in what `connection` writes next, by parsing headers only. */
function countFrames(bytes: Uint8Array): { frames: number; maxPayload: number } {
  let frames = 0;
  let maxPayload = 0;
  let p = 0;
  while (p < bytes.length) {
    const b1 = bytes[p + 1];
    let length = b1 & 0x7f;
    let header = 2;
    if (length === 126) {
      length = (bytes[p + 2] << 8) | bytes[p + 3];
      header = 4;
    } else if (length === 127) {
      length = (bytes[p + 6] * 2 ** 24) + ((bytes[p + 7] << 16) | (bytes[p + 8] << 8) | bytes[p + 9]);
      header = 10;
    }
    if (b1 & 0x80) header += 4;
    frames++;
    maxPayload = Math.max(maxPayload, length);
    p += header + length;
  }
  assert.equal(p, bytes.length, "frames end where the output ends");
  return { frames, maxPayload };
}

function exchange(options: { fragmentSize?: number } | undefined, seed: number): void {
  const pair = createPair({ tuning: tuning.current, client: { ...options }, server: { ...options } });
  const toServer = messagesOf(seed);
  const toClient = messagesOf(seed + 1);
  // Sent in interleaved order, before any byte moves.
  for (let i = 0; i < toServer.length; i++) {
    send(pair.client, toServer[i]);
    send(pair.server, toClient[i]);
  }
  pair.pump();
  const label = options?.fragmentSize ? `fragmentSize ${options.fragmentSize}` : "unfragmented";
  assertSameMessages(received(pair.serverEvents), toServer, `${label}, client → server`);
  assertSameMessages(received(pair.clientEvents), toClient, `${label}, server → client`);
  assert.ok(!pair.serverEvents.some((e) => e.type === "error"));
  assert.ok(!pair.clientEvents.some((e) => e.type === "error"));
}

// Frames are cut from slabs when the tuning has a slab allocator (core/bytes.ts).
for (const pooling of [false, true]) describe(`round trip client ↔ server, buffer pooling ${pooling ? "on" : "off"}`, () => tuning.within(createTuning({ allocator: pooling ? new SlabAllocator() : null }), () => {
  test("every size class, text and binary, both directions, unfragmented", () => {
    exchange(undefined, 1);
  });

  test(`small frames are ${pooling ? "" : "not "}pieces of a shared slab`, () => {
    const pair = createPair({ tuning: tuning.current });
    pair.client.sendText("hi");
    pair.client.sendBinary(new Uint8Array(300));
    pair.server.sendText("h\u00e9");
    const chunks = [...pair.client.pollOutput(), ...pair.server.pollOutput()];
    // Each frame has a buffer of its own, from the tuning's allocator.
    assert.equal(chunks.length, 3);
    // unpooled() copies exactly the pieces of a slab.
    for (const chunk of chunks) assert.equal(unpooled(chunk) !== chunk, pooling);
  });

  test("every size class with fragmentSize 1000", () => {
    exchange({ fragmentSize: 1000 }, 1);
  });

  test("every size class with fragmentSize 65536", () => {
    exchange({ fragmentSize: 65536 }, 1);
  });

  test("fragmentSize really splits messages into frames of at most that size", () => {
    for (const fragmentSize of [1, 1000, 65536]) {
      const pair = createPair({ tuning: tuning.current, client: { fragmentSize }, server: { fragmentSize } });
      const size = fragmentSize === 1 ? 300 : 200_000;
      pair.server.sendBinary(binaryOf(size, 9));
      const { frames, maxPayload } = countFrames(drainOutput(pair.server));
      assert.equal(frames, Math.ceil(size / fragmentSize), `fragmentSize ${fragmentSize}`);
      assert.equal(maxPayload, Math.min(size, fragmentSize));
      pair.client.sendText(textOf(size, 10));
      const fromClient = countFrames(drainOutput(pair.client));
      assert.equal(fromClient.frames, Math.ceil(size / fragmentSize));
    }
  });

  test("a text message fragmented mid-character is reassembled (fragmentSize 1)", () => {
    const pair = createPair({ tuning: tuning.current, client: { fragmentSize: 1 }, server: { fragmentSize: 1 } });
    const text = "\u{1f600}\u20ac\u00e9a\u{10ffff}";
    pair.client.sendText(text);
    pair.server.sendText(text);
    pair.pump();
    assert.deepEqual(received(pair.serverEvents), [{ binary: false, data: text }]);
    assert.deepEqual(received(pair.clientEvents), [{ binary: false, data: text }]);
  });

  test("many small messages arrive in order, alternating directions and pumps", () => {
    const pair = createPair({ tuning: tuning.current, client: { fragmentSize: 7 } });
    const toServer: Sent[] = [];
    const toClient: Sent[] = [];
    const next = seeded(99);
    for (let i = 0; i < 2000; i++) {
      const size = next() % 40;
      const m: Sent = next() % 2 ? { binary: true, data: binaryOf(size, i) } : { binary: false, data: textOf(size, i) };
      if (i % 3 === 0) {
        send(pair.server, m);
        toClient.push(m);
      } else {
        send(pair.client, m);
        toServer.push(m);
      }
      if (i % 17 === 0) pair.pump();
    }
    pair.pump();
    assertSameMessages(received(pair.serverEvents), toServer, "client → server");
    assertSameMessages(received(pair.clientEvents), toClient, "server → client");
  });

  test("the sender's buffers are not modified by masking", () => {
    const pair = createPair({ tuning: tuning.current });
    const small = binaryOf(100, 5);
    const large = binaryOf(100_000, 6);
    const smallCopy = small.slice();
    const largeCopy = large.slice();
    pair.client.sendBinary(small);
    pair.client.sendBinary(large);
    pair.pump();
    assert.ok(bytesEqual(small, smallCopy));
    assert.ok(bytesEqual(large, largeCopy));
    assertSameMessages(received(pair.serverEvents), [
      { binary: true, data: smallCopy },
      { binary: true, data: largeCopy },
    ], "client → server");
  });

  test("pings are answered and the closing handshake completes cleanly", () => {
    const pair = createPair({ tuning: tuning.current });
    pair.client.ping("c-ping");
    pair.server.ping(Uint8Array.of(1, 2, 3));
    pair.client.sendText("last");
    pair.pump();
    const data = (events: ConnectionEvent[], type: string) =>
      events.filter((e) => e.type === type).map((e) => Array.from((e as { data: Uint8Array }).data));
    assert.deepEqual(data(pair.serverEvents, "ping"), [Array.from(new TextEncoder().encode("c-ping"))]);
    assert.deepEqual(data(pair.clientEvents, "pong"), [Array.from(new TextEncoder().encode("c-ping"))]);
    assert.deepEqual(data(pair.clientEvents, "ping"), [[1, 2, 3]]);
    assert.deepEqual(data(pair.serverEvents, "pong"), [[1, 2, 3]]);
    pair.client.close(1000, "bye");
    pair.pump();
    assert.deepEqual(pair.serverEvents.at(-1), {
      type: "close", code: 1000, reason: "bye", wasClean: true,
      sent: { code: 1000, reason: "" }, received: { code: 1000, reason: "bye" }, initiator: "remote",
    });
    assert.deepEqual(pair.clientEvents.at(-1), {
      type: "close", code: 1000, reason: "", wasClean: true,
      sent: { code: 1000, reason: "bye" }, received: { code: 1000, reason: "" }, initiator: "local",
    });
    assert.equal(pair.server.closeExpected, true);
  });
}));

// ---- Streaming ----------------------------------------------------------------------------

/** Moves bytes both ways in pieces of at most `piece` bytes, until neither side writes. */
function pumpInPieces(pair: Pair, piece: number, serverEvents: ConnectionEvent[], clientEvents: ConnectionEvent[]): void {
  for (let round = 0; round < 100; round++) {
    const toServer = drainOutput(pair.client);
    const toClient = drainOutput(pair.server);
    for (let i = 0; i < toServer.length; i += piece) {
      pair.server.receive(toServer.slice(i, i + piece));
      for (const e of pair.server.pollEvents()) serverEvents.push(copyEvent(e));
    }
    for (let i = 0; i < toClient.length; i += piece) {
      pair.client.receive(toClient.slice(i, i + piece));
      for (const e of pair.client.pollEvents()) clientEvents.push(copyEvent(e));
    }
    if (!toServer.length && !toClient.length) return;
  }
  throw new Error("did not settle");
}

function copyEvent(e: ConnectionEvent): ConnectionEvent {
  if ((e.type === "binary" || (e.type === "fragment" && e.binary)) && e.data instanceof Uint8Array) {
    return { ...e, data: e.data.slice() } as ConnectionEvent;
  }
  return e;
}

/** Reassembles `fragment` events into messages; checks that only the last part of each has fin. */
function reassemble(events: ConnectionEvent[], threshold: number): { messages: Sent[]; streamed: number; parts: number } {
  const messages: Sent[] = [];
  let pending: { binary: boolean; parts: (Uint8Array | string)[] } | null = null;
  let streamed = 0;
  let parts = 0;
  for (const e of events) {
    if (e.type === "fragment") {
      parts++;
      if (pending === null) pending = { binary: e.binary, parts: [] };
      assert.equal(e.binary, pending.binary, "fragments of one message share a type");
      pending.parts.push(e.data);
      if (e.fin) {
        streamed++;
        if (pending.binary) {
          const chunks = pending.parts as Uint8Array[];
          const total = chunks.reduce((n, c) => n + c.length, 0);
          assert.ok(total > threshold, "only messages above the threshold are streamed");
          const out = new Uint8Array(total);
          let at = 0;
          for (const c of chunks) {
            out.set(c, at);
            at += c.length;
          }
          messages.push({ binary: true, data: out });
        } else {
          messages.push({ binary: false, data: (pending.parts as string[]).join("") });
        }
        pending = null;
      }
    } else if (e.type === "binary" || e.type === "text") {
      assert.ok(pending === null, "a whole message inside a streamed one");
      assert.ok((e.type === "binary" ? e.data.length : new TextEncoder().encode(e.data).length) <= threshold);
      messages.push({ binary: e.type === "binary", data: e.type === "binary" ? e.data : e.data });
    }
  }
  // (assert.ok, not assert.equal: a diff of megabytes of pending parts takes minutes to print)
  assert.ok(pending === null, "no streamed message left unfinished");
  return { messages, streamed, parts };
}

describe("round trip with streaming (streamThreshold)", () => {
  for (const [threshold, fragmentSize, piece] of [
    [1000, undefined, 4096],
    [1000, 1000, 1 << 20],
    [65536, 65536, 10_000],
    [0, undefined, 65536],
  ] as [number, number | undefined, number][]) {
    test(`threshold ${threshold}, fragmentSize ${fragmentSize ?? "none"}, delivered in ${piece}-byte pieces`, () => {
      const pair = createPair({ tuning: tuning.current,
        client: { streamThreshold: threshold, fragmentSize },
        server: { streamThreshold: threshold, fragmentSize },
      });
      const serverEvents: ConnectionEvent[] = [];
      const clientEvents: ConnectionEvent[] = [];
      const toServer = messagesOf(1);
      const toClient = messagesOf(2);
      for (let i = 0; i < toServer.length; i++) {
        send(pair.client, toServer[i]);
        send(pair.server, toClient[i]);
      }
      pumpInPieces(pair, piece, serverEvents, clientEvents);
      const atServer = reassemble(serverEvents, threshold);
      const atClient = reassemble(clientEvents, threshold);
      assertSameMessages(atServer.messages, toServer, "client → server");
      assertSameMessages(atClient.messages, toClient, "server → client");
      // Messages above the threshold were streamed, in more than one part for the 1 MiB ones.
      const above = toServer.filter((m) => (m.binary ? m.data.length : new TextEncoder().encode(m.data as string).length) > threshold).length;
      assert.equal(atServer.streamed, above);
      assert.equal(atClient.streamed, above);
      assert.ok(atServer.parts > above, "large messages arrive in several parts");
    });
  }
});
