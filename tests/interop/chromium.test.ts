/**
 * Interop with a real browser: our server × headless Chromium's own WebSocket, over loopback.
 * Chromium is started directly as a child process (node:child_process works on Node, Deno and
 * Bun; no browser-automation dependency) on a page whose script runs the exchange against our
 * server and reports back over the WebSocket itself. The page is served by node:http from
 * 127.0.0.1: a data: URL would not do, as Chromium's Local Network Access checks block a
 * data: page (opaque origin, "public" address space) from opening ws://127.0.0.1. The test asserts on what our server
 * received and on what the page reported. The browser is killed by its pid and its temporary
 * profile removed, always.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { runtimeName } from "../../adapters/auto.ts";
import { until } from "../support/net.ts";
import { Chromium, CHROMIUM, servePage } from "../support/chromium.ts";
import {
  assertBytes,
  assertExchange,
  BIG,
  BIG_SIZE,
  BINARY,
  CLOSE_CODE,
  CLOSE_CODE_2,
  CLOSE_REASON,
  CLOSE_REASON_2,
  CLOSED,
  CLOSED_2,
  hex,
  PING_2,
  type ServerRecord,
  startRecordingServer,
  TEXT,
  withTimeout,
} from "../support/interop.ts";

/**
 * The page. On socket A it sends a hello (what it negotiated), then TEXT, BINARY and BIG; it
 * receives the same three from our server, checks them against its own copies, sends the 1 MiB
 * one back verbatim, opens socket B (which our server closes with CLOSE_CODE_2), then sends its
 * report and closes A with CLOSE_CODE. BINARY comes as hex; BIG is the bigPattern formula.
 */
function page(port: number): string {
  const parameters = {
    port,
    text: TEXT,
    binaryHex: hex(BINARY),
    bigSize: BIG_SIZE,
    closeCode: CLOSE_CODE,
    closeReason: CLOSE_REASON,
  };
  const script = `
"use strict";
const P = ${JSON.stringify(parameters)};
const fromHex = (h) => new Uint8Array(h.match(/../g).map((b) => parseInt(b, 16)));
const toHex = (u) => Array.from(u, (b) => b.toString(16).padStart(2, "0")).join("");
const big = new Uint8Array(P.bigSize);
for (let i = 0; i < big.length; i++) big[i] = (i * 31 + (i >>> 8) * 7 + (i >>> 16)) & 255;
const binary = fromHex(P.binaryHex);
const base = "ws://127.0.0.1:" + P.port;
const a = new WebSocket(base + "/a");
a.binaryType = "arraybuffer";
const got = [];
const report = {};
const fail = (e) => { try { a.send(JSON.stringify({ error: String((e && e.stack) || e) })); } catch (_) {} };
a.onopen = () => {
  try {
    a.send(JSON.stringify({ hello: { extensions: a.extensions, protocol: a.protocol, userAgent: navigator.userAgent } }));
    a.send(P.text);
    a.send(binary);
    a.send(big);
  } catch (e) { fail(e); }
};
a.onmessage = (e) => {
  got.push(e.data);
  if (got.length === 3) { try { finish(); } catch (err) { fail(err); } }
};
function finish() {
  const [t, b, g] = got;
  report.text = typeof t === "string" ? t : "not text: " + Object.prototype.toString.call(t);
  report.binaryHex = b instanceof ArrayBuffer ? toHex(new Uint8Array(b)) : "not binary";
  const received = g instanceof ArrayBuffer ? new Uint8Array(g) : new Uint8Array(0);
  report.bigLength = received.length;
  report.bigMismatch = -1;
  for (let i = 0; i < big.length; i++) if (received[i] !== big[i]) { report.bigMismatch = i; break; }
  a.send(received);
  const other = new WebSocket(base + "/b");
  other.onclose = (e) => {
    report.closeB = { code: e.code, reason: e.reason, wasClean: e.wasClean };
    a.send(JSON.stringify({ report }));
    a.close(P.closeCode, P.closeReason);
  };
}
`;
  return `<!doctype html><meta charset="utf-8"><title>anyws interop</title><script>${script}</script>`;
}

function json(record: ServerRecord, index: number): Record<string, unknown> {
  const m = record.messages[index];
  assert.ok(m && "text" in m, `message ${index} from the page should be text: ${JSON.stringify(m)?.slice(0, 200)}`);
  return JSON.parse(m.text) as Record<string, unknown>;
}

describe(`interop on ${runtimeName}: our server × headless Chromium`, () => {
  test(`text, binary, 1 MiB both ways, server ping, closes both ways (${CHROMIUM})`, async () => {
    assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install chromium`);
    const ours = await startRecordingServer({
      onOpen(record) {
        if (record.path === "/b") record.socket.close(CLOSE_CODE_2, CLOSE_REASON_2);
      },
      onMessage(record) {
        if (record.path === "/a" && record.messages.length === 4) {
          // hello, TEXT, BINARY and BIG are in: our turn.
          record.socket.send(TEXT);
          record.socket.send(BINARY);
          record.socket.send(BIG);
          record.socket.ping(PING_2);
        }
        return true; // no echo
      },
    });
    const pageServer = await servePage(page(ours.port));
    let browser: Chromium | null = null;
    try {
      browser = await Chromium.launch("anyws-chromium-", pageServer.url);
      const b = browser;
      const a = await withTimeout(ours.next(), 15_000, "Chromium to connect").catch((error) => {
        throw new Error(`${(error as Error).message}\n${b.describe()}`);
      });
      assert.equal(a.path, "/a");
      assert.equal(a.socket.request.origin, pageServer.url.slice(0, -1), "the page's origin");
      await withTimeout(a.closed, 10_000, "the page to close socket A").catch((error) => {
        throw new Error(`${(error as Error).message}; our server got ${a.messages.length} messages: ${
          JSON.stringify(a.messages.map((m) => ("text" in m ? m.text.slice(0, 300) : m.binary.length)))
        }`);
      });

      // What the page said about itself: Chromium offered permessage-deflate, we declined.
      const hello = json(a, 0).hello as { extensions: string; protocol: string; userAgent: string };
      assert.ok(hello, `the page's hello: ${JSON.stringify(json(a, 0))}`);
      assert.match(hello.userAgent, /Chrom/);
      assert.match(a.offeredExtensions, /permessage-deflate/, "Chromium offers permessage-deflate");
      assert.equal(hello.extensions, "", "the page sees no extension negotiated");
      assert.equal(hello.protocol, "");

      // What our server received from Chromium, byte-exact.
      assert.equal(a.messages.length, 6, `six messages from the page: ${JSON.stringify(a.messages.slice(5))}`);
      assertExchange(a.messages.slice(1, 4), "what our server received from Chromium");
      const reflected = a.messages[4];
      assert.ok("binary" in reflected, "the page sent the 1 MiB message back");
      assertBytes(reflected.binary, BIG, "the 1 MiB message, as Chromium received and returned it");

      // What the page received from our server, as it reported.
      const outcome = json(a, 5);
      assert.equal(outcome.error, undefined, `the page failed: ${outcome.error}`);
      assert.deepEqual(outcome.report, {
        text: TEXT,
        binaryHex: hex(BINARY),
        bigLength: BIG.length,
        bigMismatch: -1,
        closeB: CLOSED_2,
      });

      // Chromium answered our ping with its payload.
      await until(() => a.pongs.length >= 1, "Chromium's pong", 5000);
      assertBytes(a.pongs[0], PING_2, "the pong Chromium sent");

      // The closes, as our server saw them.
      assert.deepEqual(await a.closed, CLOSED);
      const other = ours.connections.find((r) => r.path === "/b");
      assert.ok(other, "the page opened socket B");
      const otherClosed = await withTimeout(other.closed, 5000, "socket B to close");
      assert.equal(otherClosed.code, CLOSE_CODE_2);
      assert.equal(otherClosed.wasClean, true);
      assert.deepEqual(a.errors, []);
    } finally {
      await browser?.close();
      await ours.server.close({ timeout: 1000 });
      await pageServer.close();
    }
  });
});
