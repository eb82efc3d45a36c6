/**
 * permessage-deflate end to end, over real loopback sockets, with the adapter of the runtime
 * running the test (adapters/auto.ts): the `perMessageDeflate` option of the server (default
 * off) and of the client (default on), what goes on the wire, many connections compressing at
 * once under the codec's concurrency limit, zip bombs in both directions, and the zlib streams
 * freed when connections end.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  createZlibCodec,
  runtime,
  runtimeName,
  serve,
  type ServerOptions,
  type ServerWebSocket,
  type Transport,
  WebSocket,
  type WebSocketOptions,
  type WebSocketServer,
} from "../../adapters/auto.ts";
import {
  acceptKey,
  ClientConnection,
  type ConnectionEvent,
  encodeFrame,
  Opcode,
  type PerMessageDeflateOptions,
  perMessageDeflateClient,
  RSV1,
} from "../../core/mod.ts";
import { createZlibCodec as makeCodec } from "../../adapters/zlib/codec.ts";
import { concatBytes } from "../../core/bytes.ts";
import { jsonLike, zipBomb } from "../support/deflate-data.ts";
import { delay, until } from "../support/time.ts";

const encoder = new TextEncoder();

/** Incompressible bytes (xorshift), different for each seed: compressed, as large as they are. */
function noise(size: number, seed: number): Uint8Array {
  const out = new Uint8Array(size);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

function pattern(size: number): Uint8Array {
  const out = new Uint8Array(size);
  for (let i = 0; i < size; i++) out[i] = (i * 31 + (i >>> 8) * 7 + (i >>> 16)) & 0xff;
  return out;
}

type Frame = { opcode: number; fin: boolean; rsv: number; payload: Uint8Array };

/** Whole frames at the start of `bytes` (masked ones unmasked); a partial last frame is left out. */
function parseFrames(bytes: Uint8Array): Frame[] {
  const frames: Frame[] = [];
  let p = 0;
  while (p + 2 <= bytes.length) {
    const b0 = bytes[p], b1 = bytes[p + 1];
    let length = b1 & 0x7f;
    let q = p + 2;
    if (length === 126) {
      if (q + 2 > bytes.length) break;
      length = (bytes[q] << 8) | bytes[q + 1];
      q += 2;
    } else if (length === 127) {
      if (q + 8 > bytes.length) break;
      length = Number(new DataView(bytes.buffer, bytes.byteOffset + q, 8).getBigUint64(0));
      q += 8;
    }
    const masked = (b1 & 0x80) !== 0;
    const key = masked ? bytes.slice(q, q + 4) : null;
    if (masked) q += 4;
    if (q + length > bytes.length) break;
    const payload = bytes.slice(q, q + length);
    if (key) for (let i = 0; i < payload.length; i++) payload[i] ^= key[i & 3];
    frames.push({ opcode: b0 & 0x0f, fin: (b0 & 0x80) !== 0, rsv: b0 & 0x70, payload });
    p = q + length;
  }
  return frames;
}

/** The bytes after the HTTP head. */
function afterHead(bytes: Uint8Array): Uint8Array | null {
  for (let i = 0; i + 3 < bytes.length; i++) {
    if (bytes[i] === 13 && bytes[i + 1] === 10 && bytes[i + 2] === 13 && bytes[i + 3] === 10) return bytes.subarray(i + 4);
  }
  return null;
}

async function peakRss<T>(work: () => Promise<T>): Promise<{ result: T; growthMiB: number }> {
  const before = process.memoryUsage().rss;
  let peak = before;
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 2);
  try {
    const result = await work();
    peak = Math.max(peak, process.memoryUsage().rss);
    return { result, growthMiB: (peak - before) / (1024 * 1024) };
  } finally {
    clearInterval(timer);
  }
}

// ---- our server, our client --------------------------------------------------------------------

interface Recorded {
  server: WebSocketServer;
  port: number;
  sockets: ServerWebSocket[];
  offers: string[];
  errors: { code: number | undefined; message: string }[];
}

/** Our server on loopback, echoing, unless `onMessage` takes the message. */
async function echoServer(options: ServerOptions, onMessage?: (ws: ServerWebSocket, data: string | Uint8Array) => boolean): Promise<Recorded> {
  const r: Omit<Recorded, "server" | "port"> = { sockets: [], offers: [], errors: [] };
  const server = await serve({ ...options, port: 0, hostname: "127.0.0.1" }, {
    open(ws) {
      r.sockets.push(ws);
      r.offers.push(ws.request.headers.get("sec-websocket-extensions") ?? "");
    },
    message(ws, data) {
      const kept = typeof data === "string" ? data : data.slice();
      if (onMessage?.(ws, kept)) return;
      ws.send(kept);
    },
    error(_ws, error) {
      r.errors.push({ code: (error as { closeCode?: number }).closeCode, message: error.message });
    },
  });
  return { ...r, server, port: server.port };
}

/** Our client: opened, recording messages (binary as Uint8Array) and its close. */
async function openClient(port: number, options?: WebSocketOptions) {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/`, undefined, options);
  ws.binaryType = "uint8array";
  const messages: (string | Uint8Array)[] = [];
  let error: string | null = null;
  let closed: { code: number; reason: string; wasClean: boolean } | null = null;
  ws.addEventListener("message", (e) => messages.push((e as MessageEvent).data as string | Uint8Array));
  ws.addEventListener("error", (e) => (error = (e as ErrorEvent).message));
  ws.addEventListener("close", (e) => {
    const c = e as CloseEvent;
    closed = { code: c.code, reason: c.reason, wasClean: c.wasClean };
  });
  await until(() => ws.readyState !== WebSocket.CONNECTING, "our client to open");
  assert.equal(ws.readyState, WebSocket.OPEN, `our client did not open: ${error}`);
  return {
    ws,
    messages,
    get error() {
      return error;
    },
    get closed() {
      return closed;
    },
  };
}

/** A core client over a raw socket, keeping every byte the server sent. */
async function wireClient(port: number, deflate: PerMessageDeflateOptions = {}, maxMessageSize?: number) {
  const codec = makeCodec();
  const connection = new ClientConnection({
    host: `127.0.0.1:${port}`,
    extensions: [perMessageDeflateClient({ codec, ...deflate })],
    maxMessageSize,
  });
  const events: ConnectionEvent[] = [];
  const raw: Uint8Array[] = [];
  const state = { closed: false, transport: null as Transport | null };
  const pump = () => {
    const output = connection.pollOutput();
    if (output.length && !state.closed) state.transport!.write(output);
    events.push(...connection.pollEvents());
    if (connection.closeExpected && !state.closed) state.transport!.end();
  };
  state.transport = await runtime.dial({ host: "127.0.0.1", port }, () => ({
    onData: (chunk) => {
      raw.push(chunk.slice());
      connection.receive(chunk);
      pump();
    },
    onEnd: () => {
      connection.receiveEof();
      pump();
      state.transport!.end();
    },
    onDrain: () => {},
    onClose: () => {
      state.closed = true;
      connection.receiveEof();
      pump();
    },
  }));
  // Asynchronous compression reports through onWake-less polling here: pump on a timer.
  const timer = setInterval(pump, 2);
  pump();
  await until(() => events.some((e) => e.type === "open" || e.type === "handshake_failed"), "the handshake");
  return {
    connection,
    events,
    codec,
    /** The server's frames so far. */
    frames: () => parseFrames(afterHead(concatBytes(raw)) ?? new Uint8Array(0)),
    head: () => new TextDecoder().decode(concatBytes(raw)).split("\r\n\r\n")[0],
    write: (bytes: Uint8Array) => state.transport!.write([bytes]),
    /** Stops reading: the server's writes pile up in its buffers. */
    pause: () => state.transport!.pause(),
    resume: () => state.transport!.resume(),
    pump,
    get closed() {
      return state.closed;
    },
    async close() {
      if (!state.closed) {
        if (connection.readyState === 1) connection.close(1000);
        pump();
        await until(() => state.closed, "the wire client to close").catch(() => state.transport!.destroy());
      }
      clearInterval(timer);
    },
  };
}

describe(`permessage-deflate over ${runtimeName} sockets`, () => {
  test("defaults: our client offers it, our server does not take it unless asked", async () => {
    const off = await echoServer({});
    const on = await echoServer({ perMessageDeflate: true });
    try {
      const a = await openClient(off.port);
      assert.equal(off.offers[0], "permessage-deflate; client_max_window_bits", "the client's default offer");
      assert.equal(a.ws.extensions, "");
      assert.equal(off.sockets[0].extensions, "");
      const b = await openClient(on.port);
      assert.equal(b.ws.extensions, "permessage-deflate");
      assert.equal(on.sockets[0].extensions, "permessage-deflate");
      const c = await openClient(on.port, { perMessageDeflate: false });
      assert.equal(on.offers[1], "", "perMessageDeflate: false offers nothing");
      assert.equal(c.ws.extensions, "");
      for (const x of [a, b, c]) x.ws.close();
      await until(() => [a, b, c].every((x) => x.closed !== null), "the clients to close");
    } finally {
      await off.server.close({ timeout: 1000 });
      await on.server.close({ timeout: 1000 });
    }
  });

  test("round trip: text and binary of every size, byte-exact and in order, both ways compressed", async () => {
    const codec = createZlibCodec();
    const ours = await echoServer({ perMessageDeflate: { codec } });
    try {
      const client = await openClient(ours.port);
      const sent: (string | Uint8Array)[] = [];
      for (let i = 0; i < 60; i++) {
        const m = i % 4 === 0 ? jsonLike(2000 + i * 997, i) : i % 4 === 1 ? `small ${i} ✓` : i % 4 === 2 ? pattern(1500 + i * 4000) : "";
        sent.push(m);
        client.ws.send(m);
      }
      const big = pattern(1024 * 1024);
      const text = jsonLike(1024 * 1024, 9);
      sent.push(big, text);
      client.ws.send(big);
      client.ws.send(text);
      await until(() => client.messages.length === sent.length, `${sent.length} echoes`, 20_000);
      assert.deepEqual(client.messages, sent);
      assert.equal(codec.stats.streams, 2, "our server's codec was used: a compressor and a decompressor");
      client.ws.close(1000, "bye");
      await until(() => client.closed !== null, "the close");
      assert.deepEqual(client.closed, { code: 1000, reason: "", wasClean: true }, "our server echoes the code");
      await until(() => codec.stats.streams === 0, "our server to free its zlib streams");
    } finally {
      await ours.server.close({ timeout: 1000 });
    }
  });

  test("on the wire: RSV1 above the threshold, on the first frame only; none below it or with compress: false", async () => {
    const big = jsonLike(200_000);
    const ours = await echoServer({ perMessageDeflate: true, fragmentSize: 4096 }, (ws, data) => {
      if (data !== "go") return false;
      ws.send(big);
      ws.send("short");
      ws.send(big, { compress: false });
      ws.send(encoder.encode(big));
      return true;
    });
    const wire = await wireClient(ours.port);
    try {
      assert.match(wire.head(), /\r\nSec-WebSocket-Extensions: permessage-deflate\r?$/im);
      wire.connection.sendText("go");
      wire.pump();
      await until(() => wire.events.filter((e) => e.type === "text" || e.type === "binary").length === 4, "four messages");
      const frames = wire.frames();
      // Message 1: compressed, fragmented at 4096 bytes, RSV1 on the first frame only.
      const messages: Frame[][] = [];
      for (const f of frames) (f.opcode === Opcode.CONTINUATION ? messages.at(-1)! : (messages.push([]), messages.at(-1)!)).push(f);
      assert.equal(messages.length, 4);
      const [compressed, short, optedOut, binary] = messages;
      assert.equal(compressed[0].rsv, RSV1);
      assert.ok(compressed.slice(1).every((f) => f.rsv === 0));
      const wireSize = compressed.reduce((n, f) => n + f.payload.length, 0);
      assert.ok(wireSize * 5 < big.length, `${big.length} bytes sent as ${wireSize}`);
      assert.deepEqual(short.map((f) => f.rsv), [0]);
      assert.ok(optedOut.every((f) => f.rsv === 0));
      assert.equal(optedOut.reduce((n, f) => n + f.payload.length, 0), big.length);
      assert.equal(binary[0].rsv, RSV1);
      const got = wire.events.flatMap((e) => (e.type === "text" ? [e.data] : e.type === "binary" ? [new TextDecoder().decode(e.data)] : []));
      assert.deepEqual(got, [big, "short", big, big]);
    } finally {
      await wire.close();
      await ours.server.close({ timeout: 1000 });
    }
  });

  test("server options: window bits, memLevel, level and no context takeover, negotiated and round-tripped", async () => {
    const ours = await echoServer({
      perMessageDeflate: { serverMaxWindowBits: 10, clientMaxWindowBits: 9, memLevel: 4, level: 1, serverNoContextTakeover: true, clientNoContextTakeover: true, threshold: 0 },
    });
    try {
      const client = await openClient(ours.port, { perMessageDeflate: { threshold: 0 } });
      assert.equal(
        client.ws.extensions,
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10; client_max_window_bits=9",
      );
      const sent = [jsonLike(30_000, 1), "", "x", jsonLike(30_000, 1), pattern(100_000)];
      for (const m of sent) client.ws.send(m);
      await until(() => client.messages.length === sent.length, "the echoes");
      assert.deepEqual(client.messages, sent);
      client.ws.close();
      await until(() => client.closed !== null, "the close");
    } finally {
      await ours.server.close({ timeout: 1000 });
    }
  });

  test("200 connections compressing at once: all echoes exact, at most `concurrencyLimit` zlib jobs at a time", async () => {
    const codec = createZlibCodec({ concurrencyLimit: 4, syncCompressLimit: 64 * 1024, syncInflateLimit: 32 * 1024 });
    const ours = await echoServer({ perMessageDeflate: { codec } });
    const clients: Awaited<ReturnType<typeof openClient>>[] = [];
    try {
      for (let i = 0; i < 200; i += 50) {
        clients.push(...await Promise.all(Array.from({ length: 50 }, () => openClient(ours.port))));
      }
      // Over the codec's syncCompressLimit (64 KiB), each first message is compressed
      // asynchronously (under the limit); its ~13 KiB compressed starts inflating at once and goes
      // on asynchronously past 32 KiB of output; the second is small, but may queue behind the first.
      const messages = clients.map((_, i) => [jsonLike(100 * 1024, i), jsonLike(16 * 1024, i + 1)]);
      clients.forEach((c, i) => messages[i].forEach((m) => c.ws.send(m)));
      await until(() => clients.every((c) => c.messages.length === 2), "every echo", 30_000);
      clients.forEach((c, i) => assert.deepEqual(c.messages, messages[i], `connection ${i}`));
      assert.ok(codec.stats.peak <= 4, `peak ${codec.stats.peak}`);
      assert.equal(codec.stats.peak, 4, "the limit was reached: jobs did queue");
      assert.equal(codec.stats.streams, 400, "a compressor and a decompressor per server connection");
      for (const c of clients) c.ws.close();
      await until(() => clients.every((c) => c.closed !== null), "every close", 20_000);
      await until(() => codec.stats.streams === 0, "every zlib stream freed", 5000);
      assert.equal(codec.stats.running + codec.stats.queued, 0);
    } finally {
      for (const c of clients) if (c.closed === null) c.ws.close();
      await ours.server.close({ timeout: 1000 });
    }
  });

  test("a zip bomb to our server (1 MiB → 1 GiB): closed with 1009, memory bounded", async () => {
    const bomb = await zipBomb(1024);
    const codec = createZlibCodec();
    const ours = await echoServer({ perMessageDeflate: { codec }, maxMessageSize: 16 * 1024 * 1024 });
    const wire = await wireClient(ours.port);
    try {
      const { growthMiB } = await peakRss(async () => {
        wire.write(encodeFrame(Opcode.BINARY, bomb, true, RSV1, new Uint8Array([1, 2, 3, 4])).reduce((a, b) => concatBytes([a, b])));
        await until(() => wire.events.some((e) => e.type === "close"), "our server to close", 20_000);
      });
      const close = wire.events.find((e) => e.type === "close");
      assert.ok(close && close.type === "close" && close.code === 1009, JSON.stringify(close));
      await until(() => ours.errors.length > 0, "our server's error handler");
      assert.equal(ours.errors[0].code, 1009);
      assert.match(ours.errors[0].message, /once decompressed/);
      assert.ok(growthMiB < 256, `resident memory grew by ${growthMiB.toFixed(1)} MiB for a 1024 MiB bomb`);
      await until(() => codec.stats.streams === 0, "the server's zlib streams freed");
    } finally {
      await wire.close();
      await ours.server.close({ timeout: 1000 });
    }
  });

  test("a zip bomb to our client (1 MiB → 1 GiB): it fails with 1009, memory bounded", async () => {
    const bomb = await zipBomb(1024);
    const fromClient: Uint8Array[] = [];
    let serverSide: Transport | null = null;
    const listener = await runtime.listen({ port: 0, hostname: "127.0.0.1" }, (transport) => {
      serverSide = transport;
      let head = "";
      let answered = false;
      return {
        onData(chunk) {
          if (answered) {
            fromClient.push(chunk.slice());
            return;
          }
          head += new TextDecoder().decode(chunk);
          if (!head.includes("\r\n\r\n")) return;
          answered = true;
          const key = /\r\nSec-WebSocket-Key: ([^\r]*)\r\n/i.exec(head)![1];
          transport.write([
            encoder.encode(
              `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptKey(key)}\r\n` +
                "Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n",
            ),
            ...encodeFrame(Opcode.BINARY, bomb, true, RSV1, null),
          ]);
        },
        onEnd() {
          transport.end();
        },
        onDrain() {},
        onClose() {},
      };
    });
    try {
      const { result: client, growthMiB } = await peakRss(async () => {
        const client = await openClient(listener.port, { maxMessageSize: 16 * 1024 * 1024, closeTimeout: 500 });
        await until(() => client.closed !== null, "our client to give up", 20_000);
        return client;
      });
      assert.equal(client.messages.length, 0);
      assert.match(String(client.error), /once decompressed/);
      const close = parseFrames(concatBytes(fromClient)).find((f) => f.opcode === Opcode.CLOSE);
      assert.ok(close, "our client sent a close frame");
      assert.equal((close.payload[0] << 8) | close.payload[1], 1009);
      assert.ok(growthMiB < 256, `resident memory grew by ${growthMiB.toFixed(1)} MiB for a 1024 MiB bomb`);
    } finally {
      (serverSide as Transport | null)?.destroy();
      await listener.close();
    }
  });
});

describe(`permessage-deflate backpressure over ${runtimeName} sockets: messages being compressed count`, () => {
  // 256 KiB messages, over the codec's syncCompressLimit: compressed asynchronously on every
  // runtime, so that a send returns before its message is compressed.
  const SIZE = 256 * 1024;
  const LIMIT = 2 * 1024 * 1024;

  async function backpressureServer(options: Partial<ServerOptions> = {}) {
    const codec = createZlibCodec({ syncCompressLimit: 64 * 1024 });
    const sockets: ServerWebSocket[] = [];
    const events: string[] = [];
    const server = await serve({ port: 0, hostname: "127.0.0.1", perMessageDeflate: { codec }, backpressureLimit: LIMIT, ...options }, {
      open: (ws) => void sockets.push(ws),
      drain: () => void events.push("drain"),
      close: (_ws, code) => void events.push(`close ${code}`),
    });
    return { server, codec, sockets, events };
  }

  test("server: counted in bufferedAmount at once, the limit refuses sends, memory stays bounded, drain follows", async () => {
    const { server, codec, sockets, events } = await backpressureServer();
    const wire = await wireClient(server.port);
    try {
      wire.pause(); // the peer stops reading
      await until(() => sockets.length === 1, "the server's socket");
      const ws = sockets[0];
      const sent: Uint8Array[] = [];
      let refused = 0;
      let peak = 0;
      // Rounds of sends as fast as the handler can: nothing is compressed while one runs.
      for (let round = 0; round < 4; round++) {
        for (let i = 0; i < 40; i++) {
          const message = noise(SIZE, sent.length + refused + 1);
          const before = ws.bufferedAmount;
          const result = ws.send(message);
          if (result === 0) {
            refused++;
            assert.ok(before >= LIMIT, `refused only at the limit (${before} buffered)`);
            continue;
          }
          sent.push(message);
          assert.ok(ws.bufferedAmount >= before + SIZE, `send ${sent.length}: counted at once (${before} → ${ws.bufferedAmount})`);
          peak = Math.max(peak, ws.bufferedAmount);
        }
        if (round === 0) assert.equal(sent.length, LIMIT / SIZE, "the first round stops at the limit, on messages not yet compressed");
        await until(() => codec.stats.running + codec.stats.queued === 0, "the compression to finish");
      }
      assert.ok(refused > 100, `${refused} sends refused`);
      assert.ok(peak < LIMIT + SIZE, `at most the limit and one message buffered (${peak})`);
      assert.ok(ws.bufferedAmount < LIMIT + SIZE);
      assert.equal(ws.readyState, 1, "without closeOnBackpressureLimit, the connection stays open");
      // The peer reads again: everything accepted arrives, in order; the server hears of the drain.
      wire.resume();
      await until(() => wire.events.filter((e) => e.type === "binary").length === sent.length, `${sent.length} messages`, 30_000);
      const received = wire.events.flatMap((e) => (e.type === "binary" ? [e.data] : []));
      received.forEach((m, i) => assert.ok(m.length === SIZE && m.every((b, j) => b === sent[i][j]), `message ${i}`));
      await until(() => events.includes("drain"), "drain");
      assert.ok(ws.send(noise(SIZE, 0)) !== 0, "sends are accepted again");
    } finally {
      await wire.close();
      await server.close({ timeout: 1000 });
    }
  });

  test("server: closeOnBackpressureLimit closes with 1008 at the limit reached by messages still being compressed", async () => {
    const { server, sockets } = await backpressureServer({ closeOnBackpressureLimit: true });
    const wire = await wireClient(server.port);
    try {
      wire.pause();
      await until(() => sockets.length === 1, "the server's socket");
      const ws = sockets[0];
      const sent: Uint8Array[] = [];
      for (let i = 0; i < 40 && ws.readyState === 1; i++) {
        const message = noise(SIZE, i + 1);
        if (ws.send(message) !== 0) sent.push(message);
      }
      assert.equal(sent.length, LIMIT / SIZE, "closed at the limit, before any message was compressed");
      assert.equal(ws.readyState, 2, "closing");
      wire.resume();
      await until(() => wire.events.some((e) => e.type === "close"), "the close frame", 30_000);
      assert.equal(wire.events.filter((e) => e.type === "binary").length, sent.length, "the accepted messages first");
      const close = wire.events.find((e) => e.type === "close");
      assert.ok(close && close.type === "close" && close.code === 1008, JSON.stringify(close));
    } finally {
      await wire.close();
      await server.close({ timeout: 1000 });
    }
  });

  test("server: drain after a refusal even when the transport never filled (tiny compressed output)", async () => {
    const { server, codec, sockets, events } = await backpressureServer();
    const wire = await wireClient(server.port);
    try {
      await until(() => sockets.length === 1, "the server's socket");
      const ws = sockets[0];
      const zeros = new Uint8Array(SIZE); // a few hundred bytes once compressed
      let accepted = 0;
      for (let i = 0; i < 100 && ws.send(zeros) !== 0; i++) accepted++;
      assert.equal(accepted, LIMIT / SIZE);
      await until(() => events.includes("drain"), "drain once the messages are compressed and written");
      assert.equal(codec.stats.running + codec.stats.queued, 0);
      assert.ok(ws.bufferedAmount < LIMIT);
      assert.ok(ws.send(zeros) !== 0);
      await until(() => wire.events.filter((e) => e.type === "binary").length === accepted + 1, "the messages");
    } finally {
      await wire.close();
      await server.close({ timeout: 1000 });
    }
  });

  test("client: our WebSocket counts a message being compressed in bufferedAmount at once", async () => {
    const ours = await echoServer({ perMessageDeflate: true });
    try {
      const codec = createZlibCodec({ syncCompressLimit: 64 * 1024 });
      const client = await openClient(ours.port, { perMessageDeflate: { codec } });
      const message = noise(SIZE, 7);
      assert.equal(client.ws.bufferedAmount, 0);
      client.ws.send(message);
      assert.ok(client.ws.bufferedAmount >= SIZE, `${client.ws.bufferedAmount} buffered right after send()`);
      client.ws.send(message);
      assert.ok(client.ws.bufferedAmount >= 2 * SIZE);
      await until(() => client.messages.length === 2, "the echoes");
      await until(() => client.ws.bufferedAmount === 0, "nothing buffered");
      client.ws.close();
      await until(() => client.closed !== null, "the close");
    } finally {
      await ours.server.close({ timeout: 1000 });
    }
  });
});
