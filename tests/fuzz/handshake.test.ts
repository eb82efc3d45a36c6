/**
 * The core fuzzer's handshake phase (tests/fuzz/README.md): requests to a server and responses
 * to a client, valid or damaged, with frames behind them, in every chunking; and long streams
 * against small HTTP limits. Nothing may throw, every chunking must give the same events and
 * output, and what a connection holds stays bounded by its HTTP limits.
 */
import { describe, test } from "node:test";
import process from "node:process";
import assert from "node:assert/strict";
import { ClientConnection, ServerConnection } from "../../core/mod.ts";
import { hex } from "../support/bytes.ts";
import { feed } from "./core-runner.ts";
import { settings } from "./fuzz.ts";
import { checkHandshakeCase, makeHandshakeCase, PENDING_BUGS, pendingSeen } from "./handshake.ts";
import { Random } from "./random.ts";
import { serialize } from "./streams.ts";

/** Cases run by `npm test`; ANYWS_FUZZ_ITERATIONS runs more (or fewer), from ANYWS_FUZZ_SEED on. */
const DEFAULT_ITERATIONS = 600;
const encoder = new TextEncoder();

/** Read boundaries every 1 to `max` bytes, from a seed. */
function smallReads(length: number, max: number, seed: number): number[] {
  const random = new Random(seed);
  const cuts: number[] = [];
  for (let at = random.range(1, max); at < length; at += random.range(1, max)) cuts.push(at);
  return cuts;
}

describe("core fuzzer, handshake phase", () => {
  test("requests and responses, valid and damaged, with frames behind them, in every chunking", () => {
    const { iterations, seed } = settings(DEFAULT_ITERATIONS);
    const kinds = new Map<string, number>();
    for (let i = 0; i < iterations; i++) {
      const c = makeHandshakeCase(seed + i);
      const problem = checkHandshakeCase(c);
      if (problem) {
        assert.fail([
          `fuzz ${problem.check} problem in the handshake phase, seed ${c.seed} (ANYWS_FUZZ_SEED=${c.seed} ANYWS_FUZZ_ITERATIONS=1 replays the case)`,
          `  role: ${c.role}, head: ${c.head}, limits: ${JSON.stringify(c.limits)}, httpLimits: ${JSON.stringify(c.httpLimits)}`,
          `  bytes (${c.bytes.length}): ${hex(c.bytes)}`,
          `  split: ${problem.split.slice(0, 2000)}`,
          `  ${problem.message}`,
        ].join("\n"));
      }
      kinds.set(`${c.role} ${c.head}`, (kinds.get(`${c.role} ${c.head}`) ?? 0) + 1);
    }
    if (iterations >= DEFAULT_ITERATIONS) {
      for (const role of ["server", "client"]) {
        for (const head of ["valid", "mutated", "stuffed", "long-line", "other-response", "garbage"]) assert.ok(kinds.has(`${role} ${head}`), `no ${role} ${head} case`);
      }
      // A pending bug that no case shows any more was fixed: its exemption must go.
      if (process.env.ANYWS_FUZZ_STRICT !== "1") {
        for (const bug of PENDING_BUGS) assert.ok(pendingSeen.has(bug.id), `pending bug "${bug.id}" exempted no case: delete its entry`);
      }
    }
  });

  test("server: an endless head in small reads is rejected within maxHeadSize and maxLineLength", () => {
    const httpLimits = { maxHeadSize: 2048, maxLineLength: 256, maxHeaders: 1000 };
    for (const tail of ["X-Filler: abc\r\n", "X-Endless: " + "v".repeat(100)]) {
      const bytes = encoder.encode("GET / HTTP/1.1\r\nHost: example.com\r\n" + tail.repeat(2000));
      const server = new ServerConnection({ httpLimits });
      const outcome = feed(server, bytes, smallReads(bytes.length, 64, 3), true, false);
      assert.equal(outcome.threw, null);
      assert.equal(outcome.events[0]?.type, "handshake_failed");
      assert.equal(outcome.events[0]?.status, 431);
      const bound = 16 * 1024 + 2 * (httpLimits.maxHeadSize + httpLimits.maxLineLength + 1) + 34 * 64;
      assert.ok(outcome.maxHeld <= bound, `held ${outcome.maxHeld} bytes of a ${bytes.length}-byte head; bound ${bound}`);
    }
  });

  test("client: an endless response head in small reads fails within maxHeadSize and maxLineLength", () => {
    const httpLimits = { maxHeadSize: 2048, maxLineLength: 256, maxHeaders: 1000 };
    const bytes = encoder.encode("HTTP/1.1 101 Switching Protocols\r\n" + "X-Filler: abc\r\n".repeat(3000));
    const client = new ClientConnection({ host: "example.com", httpLimits });
    client.pollOutput();
    const outcome = feed(client, bytes, smallReads(bytes.length, 64, 4), true, false);
    assert.equal(outcome.threw, null);
    assert.equal(outcome.events[0]?.type, "handshake_failed");
    const bound = 16 * 1024 + 2 * (httpLimits.maxHeadSize + httpLimits.maxLineLength + 1) + 34 * 64;
    assert.ok(outcome.maxHeld <= bound, `held ${outcome.maxHeld} bytes of a ${bytes.length}-byte head; bound ${bound}`);
  });

  test("server: frames sent before the upgrade is answered are held up to the head size limit, then refused", () => {
    // The server owner has not called accept(): the core keeps what follows the request, to a point.
    const request = encoder.encode("GET / HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
    const random = new Random(6);
    const frames = serialize(Array.from({ length: 800 }, () => ({ fin: true, rsv: 0, opcode: 2, masked: true, payload: random.bytes(4000) })), random);
    const bytes = new Uint8Array(request.length + frames.length);
    bytes.set(request);
    bytes.set(frames, request.length);
    const server = new ServerConnection();
    const outcome = feed(server, bytes, smallReads(bytes.length, 8192, 7), true, false);
    assert.equal(outcome.threw, null);
    assert.deepEqual(outcome.events.map((e) => e.type), ["upgrade", "handshake_failed", "close"]);
    // maxHeadSize (the core's allowance for early data, 16 KiB by default) and the reads that carried it.
    const bound = 16 * 1024 + 2 * 8192 + 16 * 1024;
    assert.ok(outcome.maxHeld <= bound, `held ${outcome.maxHeld} bytes of ${bytes.length} sent early; bound ${bound}`);
  });
});
