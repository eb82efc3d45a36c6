/**
 * permessage-deflate interop over real loopback sockets, compression on at both ends:
 *   - the `ws` package, both roles, `perMessageDeflate: true` (on Bun, "ws" is Bun's built-in
 *     ws-compatible module: Bun's own native implementation);
 *   - headless Chromium's WebSocket (it always offers permessage-deflate) × our server;
 *   - python-websockets (Debian's python3-websockets; it compresses by default), both roles,
 *     through python_websockets_peer.py;
 *   - the runtime's native client × our server (Bun's offers permessage-deflate; Node's, undici,
 *     offers it but sends uncompressed; Deno's offers nothing, which must still work); on Bun,
 *     also `Bun.serve` with `perMessageDeflate: true`.
 * Our side runs with a codec that counts what it compressed and inflated, so each cell proves
 * that compressed messages really went both ways, not only that the header was agreed.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import type { AddressInfo } from "node:net";
import WsWebSocket, { WebSocketServer as WsServer } from "ws";
import { createZlibCodec, runtimeName } from "../../adapters/auto.ts";
import type { DeflateCodec } from "../../core/mod.ts";
import { Child } from "../support/child.ts";
import { Chromium, CHROMIUM, servePage } from "../support/chromium.ts";
import { python, SCRIPT } from "../support/python.ts";
import { answerScriptedClient, PARAMETERS } from "../support/scripted-peer.ts";
import { until } from "../support/time.ts";
import {
  BIG,
  BINARY,
  CLOSE_CODE,
  CLOSE_CODE_2,
  CLOSE_REASON,
  CLOSE_REASON_2,
  hex,
  NATIVE_CLIENT_EXPECTED,
  NATIVE_CLIENT_NAME,
  openClient,
  type Received,
  startRecordingServer,
  TEXT,
  toBytes,
  withTimeout,
} from "../support/interop.ts";

/** JSON-like text that compresses well (the same formula is in the browser page below). */
function jsonLike(size: number): string {
  let out = "[";
  for (let i = 0; out.length < size; i++) out += `{"id":${i},"user":"user${i % 100}","active":${i % 3 === 0},"tags":["a","b"]},`;
  return out.slice(0, size - 1) + "]";
}

const JSON_TEXT = jsonLike(256 * 1024);

/** What each cell sends, in order: short text (under the threshold), big compressible text, binary, 1 MiB. */
const MESSAGES: (string | Uint8Array)[] = [TEXT, JSON_TEXT, BINARY, BIG];

function assertMessages(actual: readonly Received[], what: string): void {
  assert.equal(actual.length, MESSAGES.length, `${what}: ${actual.length} messages`);
  MESSAGES.forEach((m, i) => {
    const a = actual[i];
    if (typeof m === "string") {
      assert.ok("text" in a, `${what}: message ${i} should be text`);
      assert.ok(a.text === m, `${what}: message ${i} differs (${a.text.length} chars, expected ${m.length})`);
    } else {
      assert.ok("binary" in a, `${what}: message ${i} should be binary`);
      assert.equal(hex(a.binary), hex(m), `${what}: message ${i}`);
    }
  });
}

/** Our codec, counting the messages it compressed and inflated (and their sizes). */
function countingCodec() {
  const inner = createZlibCodec();
  const counts = { compressed: 0, compressedIn: 0, compressedOut: 0, inflated: 0, inflatedIn: 0, inflatedOut: 0 };
  const codec: DeflateCodec = {
    createCompressor(options) {
      const c = inner.createCompressor(options);
      const count = (data: Uint8Array, out: Uint8Array) => {
        counts.compressed++;
        counts.compressedIn += data.length;
        counts.compressedOut += out.length;
        return out;
      };
      return {
        // Results given at once stay so: the codec's synchronous way is what runs in production.
        compress: (data) => {
          const out = c.compress(data);
          return out instanceof Uint8Array ? count(data, out) : out.then((o) => count(data, o));
        },
        close: () => c.close(),
      };
    },
    createDecompressor(options) {
      const d = inner.createDecompressor(options);
      const count = (chunks: readonly Uint8Array[], out: Uint8Array) => {
        counts.inflated++;
        counts.inflatedIn += chunks.reduce((n, c) => n + c.length, 0);
        counts.inflatedOut += out.length;
        return out;
      };
      return {
        decompress: (chunks, maxSize) => {
          const out = d.decompress(chunks, maxSize);
          return out instanceof Uint8Array ? count(chunks, out) : out.then((o) => count(chunks, o));
        },
        close: () => d.close(),
      };
    },
  };
  return { codec, counts, stats: () => inner.stats };
}

/** Both directions carried compressed messages, and compression paid off. */
function assertCompressedBothWays(counts: ReturnType<typeof countingCodec>["counts"], what: string, atLeast = 2): void {
  assert.ok(counts.inflated >= atLeast, `${what}: we inflated ${counts.inflated} messages from the peer`);
  assert.ok(counts.inflatedOut > 4 * counts.inflatedIn, `${what}: the peer's messages ${counts.inflatedOut} → ${counts.inflatedIn} bytes`);
  assertWeCompressed(counts, what, atLeast);
}

/** Our side sent compressed messages, and compression paid off. */
function assertWeCompressed(counts: ReturnType<typeof countingCodec>["counts"], what: string, atLeast = 2): void {
  assert.ok(counts.compressed >= atLeast, `${what}: we compressed ${counts.compressed} messages`);
  assert.ok(counts.compressedIn > 4 * counts.compressedOut, `${what}: ours ${counts.compressedIn} → ${counts.compressedOut} bytes`);
}

// ---- ws ------------------------------------------------------------------------------------------

const wsPeer = runtimeName === "bun" ? "Bun's built-in ws module (native)" : "the ws package";

describe(`permessage-deflate interop on ${runtimeName}: anyws × ${wsPeer}`, () => {
  test(`our server × ${wsPeer} client, perMessageDeflate: true`, async () => {
    const { codec, counts } = countingCodec();
    const ours = await startRecordingServer({ server: { perMessageDeflate: { codec } } });
    const client = new WsWebSocket(`ws://127.0.0.1:${ours.port}/`, { perMessageDeflate: true });
    try {
      const echoes: Received[] = [];
      client.on("message", (data: unknown, isBinary: boolean) => {
        void toBytes(data).then((b) => echoes.push(isBinary ? { binary: b } : { text: new TextDecoder().decode(b) }));
      });
      client.on("error", () => {});
      await withTimeout(new Promise((resolve) => client.once("open", resolve)), 10_000, `${wsPeer} to open`);
      const record = await ours.next();
      assert.match(record.offeredExtensions, /permessage-deflate/);
      assert.match(record.extensions, /^permessage-deflate/);
      assert.match(String(client.extensions), /permessage-deflate/, `what ${wsPeer} negotiated`);
      for (const m of MESSAGES) client.send(m, { binary: typeof m !== "string" });
      await until(() => echoes.length === MESSAGES.length, "the echoes", 20_000);
      assertMessages(record.messages, `what our server received from ${wsPeer}`);
      assertMessages(echoes, `echoes ${wsPeer} received`);
      assertCompressedBothWays(counts, `our server × ${wsPeer}`);
      client.close(CLOSE_CODE, CLOSE_REASON);
      assert.deepEqual(await withTimeout(record.closed, 10_000, "the close"), { code: CLOSE_CODE, reason: CLOSE_REASON, wasClean: true });
      assert.deepEqual(record.errors, []);
    } finally {
      client.terminate();
      await ours.server.close({ timeout: 1000 });
    }
  });

  test(`our client × ${wsPeer} WebSocketServer, perMessageDeflate: true`, async () => {
    const { codec, counts } = countingCodec();
    const wss = new WsServer({ host: "127.0.0.1", port: 0, perMessageDeflate: true });
    await withTimeout(new Promise<void>((resolve) => wss.once("listening", () => resolve())), 5000, "listening");
    const seen: Received[] = [];
    let offered = "";
    wss.on("connection", (ws: WsWebSocket, request: { headers: Record<string, string | undefined> }) => {
      offered = request.headers["sec-websocket-extensions"] ?? "";
      ws.on("message", (data: unknown, isBinary: boolean) => {
        void toBytes(data).then((bytes) => {
          seen.push(isBinary ? { binary: bytes } : { text: new TextDecoder().decode(bytes) });
          ws.send(bytes, { binary: isBinary });
        });
      });
      ws.on("error", () => {});
    });
    try {
      const port = (wss.address() as AddressInfo).port;
      const client = await openClient(`ws://127.0.0.1:${port}/`, undefined, { perMessageDeflate: { codec } });
      assert.equal(offered, "permessage-deflate; client_max_window_bits");
      assert.match(client.ws.extensions, /^permessage-deflate/);
      for (const m of MESSAGES) client.ws.send(m);
      await until(() => client.messages.length === MESSAGES.length, "the echoes", 20_000);
      assertMessages(seen, `what ${wsPeer} received from our client`);
      assertMessages(client.messages, `echoes our client received from ${wsPeer}`);
      assertCompressedBothWays(counts, `our client × ${wsPeer}`);
      client.ws.close(CLOSE_CODE, CLOSE_REASON);
      const closed = await withTimeout(client.closed, 10_000, "the close");
      assert.equal(closed.code, CLOSE_CODE);
      assert.equal(closed.wasClean, true);
    } finally {
      for (const c of wss.clients) c.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    }
  });
});

// ---- Chromium --------------------------------------------------------------------------------

/**
 * The page: opens a socket to our server, reports what it negotiated, sends short text, big
 * compressible text and compressible binary, checks the echoes against its own copies, reports,
 * and closes with CLOSE_CODE. The JSON formula is `jsonLike` above.
 */
function page(port: number): string {
  const script = `
"use strict";
const P = ${JSON.stringify({ port, text: TEXT, jsonSize: JSON_TEXT.length, binarySize: 200 * 1024, closeCode: CLOSE_CODE, closeReason: CLOSE_REASON })};
function jsonLike(size) {
  let out = "[";
  for (let i = 0; out.length < size; i++) out += '{"id":' + i + ',"user":"user' + (i % 100) + '","active":' + (i % 3 === 0) + ',"tags":["a","b"]},';
  return out.slice(0, size - 1) + "]";
}
const json = jsonLike(P.jsonSize);
const binary = new Uint8Array(P.binarySize);
for (let i = 0; i < binary.length; i++) binary[i] = (i % 64) < 32 ? 7 : (i >> 6) & 255;
const ws = new WebSocket("ws://127.0.0.1:" + P.port + "/deflate");
ws.binaryType = "arraybuffer";
const got = [];
const fail = (e) => { try { ws.send(JSON.stringify({ error: String((e && e.stack) || e) })); } catch (_) {} };
ws.onopen = () => {
  try {
    ws.send(JSON.stringify({ hello: { extensions: ws.extensions, userAgent: navigator.userAgent } }));
    ws.send(P.text);
    ws.send(json);
    ws.send(binary);
  } catch (e) { fail(e); }
};
ws.onmessage = (e) => {
  got.push(e.data);
  if (got.length < 4) return;
  try {
    const b = new Uint8Array(got[3]);
    let mismatch = b.length === binary.length ? -1 : -2;
    for (let i = 0; mismatch === -1 && i < b.length; i++) if (b[i] !== binary[i]) mismatch = i;
    ws.send(JSON.stringify({ report: {
      helloEchoed: typeof got[0] === "string" && got[0].includes("hello"),
      text: got[1] === P.text,
      json: got[2] === json,
      jsonLength: typeof got[2] === "string" ? got[2].length : -1,
      binaryMismatch: mismatch,
    } }));
    ws.close(P.closeCode, P.closeReason);
  } catch (err) { fail(err); }
};
`;
  return `<!doctype html><meta charset="utf-8"><title>anyws permessage-deflate</title><script>${script}</script>`;
}

describe(`permessage-deflate interop on ${runtimeName}: our server × headless Chromium`, () => {
  test(`Chromium negotiates permessage-deflate with our server and round-trips compressible messages (${CHROMIUM})`, async () => {
    assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install chromium`);
    const { codec, counts } = countingCodec();
    const ours = await startRecordingServer({ server: { perMessageDeflate: { codec } } });
    const pageServer = await servePage(page(ours.port));
    let browser: Chromium | null = null;
    try {
      browser = await Chromium.launch("anyws-chromium-deflate-", pageServer.url);
      const b = browser;
      const record = await withTimeout(ours.next(), 15_000, "Chromium to connect").catch((error) => {
        throw new Error(`${(error as Error).message}\n${b.describe()}`);
      });
      await withTimeout(record.closed, 15_000, "the page to close").catch((error) => {
        throw new Error(`${(error as Error).message}; our server got: ${
          JSON.stringify(record.messages.map((m) => ("text" in m ? m.text.slice(0, 200) : m.binary.length)))
        }`);
      });
      assert.match(record.offeredExtensions, /permessage-deflate/, "Chromium offers permessage-deflate");
      assert.match(record.extensions, /^permessage-deflate/);
      const first = record.messages[0];
      assert.ok(first && "text" in first, "the page's hello");
      const hello = JSON.parse(first.text).hello as { extensions: string; userAgent: string };
      assert.match(hello.userAgent, /Chrom/);
      assert.match(hello.extensions, /permessage-deflate/, "the page sees permessage-deflate in ws.extensions");
      const last = record.messages.at(-1)!;
      assert.ok("text" in last);
      const outcome = JSON.parse(last.text) as { report?: unknown; error?: string };
      assert.equal(outcome.error, undefined, `the page failed: ${outcome.error}`);
      assert.deepEqual(outcome.report, { helloEchoed: true, text: true, json: true, jsonLength: JSON_TEXT.length, binaryMismatch: -1 });
      assert.ok("text" in record.messages[2] && record.messages[2].text === JSON_TEXT, "the JSON text as our server got it");
      assertCompressedBothWays(counts, "our server × Chromium");
      assert.deepEqual(await record.closed, { code: CLOSE_CODE, reason: CLOSE_REASON, wasClean: true });
      assert.deepEqual(record.errors, []);
    } finally {
      await browser?.close();
      await ours.server.close({ timeout: 1000 });
      await pageServer.close();
    }
  });
});

// ---- python-websockets -------------------------------------------------------------------------

const pythonPeer = python ? `python-websockets ${python.version}` : "python-websockets";

describe(`permessage-deflate interop on ${runtimeName}: anyws × ${pythonPeer}`, () => {
  test(`our server × ${pythonPeer} client (it compresses by default)`, async () => {
    assert.ok(python, "python3-websockets is missing: apt-get install python3-websockets");
    const { codec, counts } = countingCodec();
    const ours = await startRecordingServer({
      server: { perMessageDeflate: { codec, threshold: 0 } },
      onMessage: answerScriptedClient,
    });
    const child = new Child(python.command, [SCRIPT, JSON.stringify({ ...PARAMETERS, mode: "client", url: `ws://127.0.0.1:${ours.port}/` })]);
    try {
      const exit = await withTimeout(child.done(), 20_000, "the python client");
      assert.deepEqual(exit, { code: 0, signal: null }, child.describe());
      const line = child.lines.filter((l) => l.startsWith("{")).at(-1);
      assert.ok(line, child.describe());
      const result = JSON.parse(line) as Record<string, unknown>;
      const [first] = ours.connections;
      assert.match(first.offeredExtensions, /permessage-deflate/);
      assert.match(first.extensions, /^permessage-deflate/);
      assert.deepEqual(result.extensions, ["PerMessageDeflate"], "python uses permessage-deflate");
      assert.equal(result.response_extensions, first.extensions);
      assert.deepEqual(first.messages.slice(0, 3), [{ text: TEXT }, { binary: BINARY }, { binary: BIG }]);
      const echoes = result.echoes as Record<string, unknown>[];
      assert.deepEqual(echoes[0], { text: TEXT });
      assert.equal(echoes[1].hex, hex(BINARY));
      assert.equal(echoes[2].length, BIG.length);
      assert.equal(result.pong, true);
      assert.deepEqual(result.after_ping, { text: "pinged" });
      assert.deepEqual(result.closed_by_server, [CLOSE_CODE_2, CLOSE_REASON_2]);
      // python compresses every message, even short ones (five came in); with threshold 0 so do we
      // (three echoes and "pinged").
      assert.ok(counts.inflated >= 5 && counts.compressed >= 4, JSON.stringify(counts));
      assert.deepEqual(first.errors, []);
    } finally {
      await child.kill();
      await ours.server.close({ timeout: 1000 });
    }
  });

  test(`our client × ${pythonPeer} server (server_max_window_bits=12, client_max_window_bits=12)`, async () => {
    assert.ok(python, "python3-websockets is missing: apt-get install python3-websockets");
    const { codec, counts } = countingCodec();
    const child = new Child(python.command, [SCRIPT, JSON.stringify({ ...PARAMETERS, mode: "server" })]);
    try {
      await until(() => child.lines.length > 0 || child.exit !== null, "python to listen").catch(() => {});
      assert.ok(child.lines.length > 0, `python did not start:\n${child.describe()}`);
      const { port } = JSON.parse(child.lines[0]) as { port: number };
      const client = await openClient(`ws://127.0.0.1:${port}/`, undefined, { perMessageDeflate: { codec } });
      // python's server limits both windows to 12 bits by default: our client compresses with 12.
      assert.equal(client.ws.extensions, "permessage-deflate; server_max_window_bits=12; client_max_window_bits=12");
      for (const m of MESSAGES) client.ws.send(m);
      await until(() => client.messages.length === MESSAGES.length, "the echoes", 20_000);
      assertMessages(client.messages, `echoes our client received from ${pythonPeer}`);
      assertCompressedBothWays(counts, `our client × ${pythonPeer}`);
      client.ws.close(CLOSE_CODE, CLOSE_REASON);
      const closed = await withTimeout(client.closed, 10_000, "the close");
      assert.equal(closed.code, CLOSE_CODE);
      await until(() => child.lines.length >= 2, "python's report");
      const report = JSON.parse(child.lines[1]) as Record<string, unknown>;
      assert.equal(report.request_extensions, "permessage-deflate; client_max_window_bits");
      assert.deepEqual(report.extensions, ["PerMessageDeflate"]);
      assert.equal(report.pong, true, "our client answered python's ping");
      assert.deepEqual((report.messages as unknown[]).length, MESSAGES.length);
      assert.deepEqual(report.close_received, [CLOSE_CODE, CLOSE_REASON]);
    } finally {
      child.process.stdin?.end();
      await withTimeout(child.done(), 3000, "python to exit").catch(() => child.kill());
      await child.kill();
    }
  });
});

// ---- The runtime's own WebSocket (and Bun's server) -------------------------------------------

type NativeWebSocket = {
  binaryType: string;
  extensions: string;
  readyState: number;
  send(data: string | ArrayBufferView): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: string, listener: (event: unknown) => void): void;
};
const Native = (globalThis as { WebSocket?: new (url: string) => NativeWebSocket }).WebSocket;
const nativePeer = NATIVE_CLIENT_NAME;

describe(`permessage-deflate interop on ${runtimeName}: our server × ${nativePeer}`, () => {
  if (!NATIVE_CLIENT_EXPECTED) {
    test(`Node ${process.version} has no global WebSocket (Node 22 and later do: the node24 pass tests it)`, () => {
      assert.equal(Native, undefined);
    });
    return;
  }
  if (Native === undefined) {
    test(`${runtimeName} ${process.version} has a native WebSocket`, () => assert.fail("globalThis.WebSocket is missing"));
    return;
  }
  test("round trip with compression on at our server (Bun's and Node's clients offer it; Deno's does not)", async () => {
    const { codec, counts } = countingCodec();
    const ours = await startRecordingServer({ server: { perMessageDeflate: { codec } } });
    const ws = new Native(`ws://127.0.0.1:${ours.port}/`);
    ws.binaryType = "arraybuffer";
    const echoes: Received[] = [];
    let closed = false;
    ws.addEventListener("message", (e) => {
      const data = (e as MessageEvent).data as unknown;
      echoes.push(typeof data === "string" ? { text: data } : { binary: new Uint8Array(data as ArrayBuffer) });
    });
    ws.addEventListener("close", () => (closed = true));
    try {
      await until(() => ws.readyState !== 0, `${nativePeer} to open`);
      const record = await ours.next();
      const offers = /permessage-deflate/.test(record.offeredExtensions);
      if (runtimeName !== "deno") assert.ok(offers, `${nativePeer} offers permessage-deflate`);
      assert.equal(ws.extensions, record.extensions, "both sides agree");
      assert.equal(/^permessage-deflate/.test(record.extensions), offers);
      for (const m of MESSAGES) ws.send(m);
      await until(() => echoes.length === MESSAGES.length, "the echoes", 20_000);
      assertMessages(record.messages, `what our server received from ${nativePeer}`);
      assertMessages(echoes, `echoes ${nativePeer} received`);
      if (!offers) assert.equal(counts.compressed + counts.inflated, 0);
      // undici inflates what it receives but compresses nothing it sends, which a sender may
      // choose per message (RFC 7692 §6): only our direction is compressed.
      else if (runtimeName === "node") assertWeCompressed(counts, `our server × ${nativePeer}`);
      else assertCompressedBothWays(counts, `our server × ${nativePeer}`);
      ws.close(CLOSE_CODE, CLOSE_REASON);
      assert.deepEqual(await withTimeout(record.closed, 10_000, "the close"), { code: CLOSE_CODE, reason: CLOSE_REASON, wasClean: true });
    } finally {
      if (!closed) ws.close();
      await ours.server.close({ timeout: 1000 });
    }
  });
});

type BunServer = { port: number; stop(force?: boolean): Promise<void> | void };
/** Bun compresses a message only when `send` is asked to. */
type BunSocket = { send(data: string | Uint8Array, compress?: boolean): number };
const Bun = (globalThis as {
  Bun?: {
    serve(options: {
      hostname: string;
      port: number;
      fetch(request: Request, server: { upgrade(request: Request): boolean }): Response | undefined;
      websocket: {
        perMessageDeflate: boolean;
        message(ws: BunSocket, message: string | Uint8Array): void;
      };
    }): BunServer;
  };
}).Bun;

describe(`permessage-deflate interop on ${runtimeName}: our client × Bun.serve`, () => {
  if (Bun === undefined) {
    test.skip(`Bun.serve is Bun's (this is ${runtimeName})`);
    return;
  }
  test("Bun.serve with websocket.perMessageDeflate: true", async () => {
    const { codec, counts } = countingCodec();
    const seen: Received[] = [];
    let offered = "";
    const server = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch(request, server) {
        offered = request.headers.get("sec-websocket-extensions") ?? "";
        if (server.upgrade(request)) return undefined;
        return new Response("not a WebSocket request", { status: 400 });
      },
      websocket: {
        perMessageDeflate: true,
        message(ws, message) {
          if (typeof message === "string") {
            seen.push({ text: message });
            ws.send(message, true);
          } else {
            const bytes = new Uint8Array(message.buffer, message.byteOffset, message.byteLength).slice();
            seen.push({ binary: bytes });
            ws.send(bytes, true);
          }
        },
      },
    });
    try {
      const client = await openClient(`ws://127.0.0.1:${server.port}/`, undefined, { perMessageDeflate: { codec } });
      assert.equal(offered, "permessage-deflate; client_max_window_bits");
      assert.match(client.ws.extensions, /^permessage-deflate/);
      for (const m of MESSAGES) client.ws.send(m);
      await until(() => client.messages.length === MESSAGES.length, "the echoes", 20_000);
      assertMessages(seen, "what Bun.serve received from our client");
      assertMessages(client.messages, "echoes our client received from Bun.serve");
      assertCompressedBothWays(counts, "our client × Bun.serve");
      client.ws.close(CLOSE_CODE, CLOSE_REASON);
      assert.equal((await withTimeout(client.closed, 10_000, "the close")).code, CLOSE_CODE);
    } finally {
      await server.stop(true);
    }
  });
});
