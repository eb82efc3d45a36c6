/**
 * The backplane through real servers and real WebSocket clients, with the in-memory driver:
 * several servers in one process share a hub as they would share a broker.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { runtimeName, serve, type WebSocketServer, WebSocket } from "../../adapters/auto.ts";
import { encodeEnvelope, MemoryHub } from "../../adapters/backplane/mod.ts";
import type { BackplaneDriver, BackplaneOptions } from "../../adapters/shared/backplane.ts";
import { until } from "../support/net.ts";
import { topicHandlers } from "../support/topic-server.ts";

/** A server whose clients send "sub TOPIC" / "unsub TOPIC" / "pub TOPIC TEXT", or binary (published to "bin"). */
function start(backplane: BackplaneOptions): Promise<WebSocketServer> {
  return serve({ port: 0, backplane }, topicHandlers(null, "bin"));
}

async function client(server: WebSocketServer, ...topics: string[]) {
  const ws = new WebSocket(`ws://127.0.0.1:${server.port}`);
  ws.binaryType = "uint8array";
  const messages: (string | Uint8Array)[] = [];
  ws.addEventListener("message", (e) => messages.push((e as MessageEvent).data));
  await new Promise((resolve, reject) => {
    ws.addEventListener("open", resolve);
    ws.addEventListener("error", reject);
  });
  for (const topic of topics) ws.send(`sub ${topic}`);
  await until(() => messages.length === topics.length, "subscriptions");
  messages.length = 0;
  return { ws, messages };
}

/** A memory driver whose subscribe/unsubscribe calls are recorded. */
function recorded(driver: BackplaneDriver, log: string[]): BackplaneDriver {
  return {
    start: (sink) => driver.start(sink),
    publish: (channel, envelope) => driver.publish(channel, envelope),
    subscribe: (channel) => (log.push(`+${channel}`), driver.subscribe(channel)),
    unsubscribe: (channel) => (log.push(`-${channel}`), driver.unsubscribe(channel)),
    close: () => driver.close(),
  };
}

describe(`backplane with the memory driver on ${runtimeName}`, () => {
  test("a publish reaches every subscriber of every server once, text and binary, 0 B to 1 MiB, in order", async () => {
    const hub = new MemoryHub();
    const servers = [await start({ driver: hub.driver() }), await start({ driver: hub.driver() }), await start({ driver: hub.driver() })];
    try {
      await Promise.all(servers.map((s) => s.backplane!.ready));
      const publisher = await client(servers[0]!, "room", "bin");
      const clients = [await client(servers[0]!, "room", "bin"), await client(servers[1]!, "room", "bin"), await client(servers[2]!, "room", "bin")];
      const other = await client(servers[1]!, "elsewhere");
      const sizes = [0, 1, 125, 126, 65_536, 1024 * 1024];
      const binaries = sizes.map((size, n) => Uint8Array.from({ length: size }, (_, i) => (i + n) & 0xff));
      for (let i = 0; i < 50; i++) publisher.ws.send(`pub room ${i} ${"é".repeat(i)}`);
      for (const b of binaries) publisher.ws.send(b);
      for (const c of clients) await until(() => c.messages.length === 50 + sizes.length, "every message");
      for (const c of clients) {
        assert.deepEqual(c.messages.slice(0, 50), Array.from({ length: 50 }, (_, i) => `${i} ${"é".repeat(i)}`));
        assert.deepEqual(c.messages.slice(50), binaries);
      }
      assert.deepEqual(publisher.messages, [], "the publisher is excluded, in its own process too");
      assert.deepEqual(other.messages, []);
      assert.equal(servers[0]!.subscriberCount("room"), 2, "this process's subscribers only");
      assert.equal(servers[1]!.subscriberCount("room"), 1);
      const s0 = servers[0]!.backplane!.stats(), s1 = servers[1]!.backplane!.stats();
      assert.equal(s0.relayed, 56);
      assert.equal(s0.received, 0, "its own envelopes are not received");
      assert.equal(s1.received, 56);
      assert.equal(s1.gaps, 0);
      assert.notEqual(s0.origin, s1.origin);
      assert.match(s0.origin, /^[0-9a-f]{32}$/);
      // Server.publish relays too, and server-side publishes reach the publisher's own process once.
      servers[2]!.publish("room", "from the server");
      for (const c of clients) await until(() => c.messages.length === 57, "the server's publish");
      for (const c of clients) assert.equal(c.messages[56], "from the server");
    } finally {
      await Promise.all(servers.map((s) => s.close()));
    }
  });

  test("while the broker is down, local delivery goes on and publishes wait in the queue; an overflow is a gap with its range", async () => {
    const hub = new MemoryHub();
    const gaps: [string, number, number][] = [];
    const events: string[] = [];
    const a = await start({
      driver: hub.driver(),
      maxQueuedBytes: 10 * 1024,
      error: (stage) => events.push(`error ${stage}`),
      up: () => events.push("up"),
      down: () => events.push("down"),
    });
    const b = await start({ driver: hub.driver(), gap: (origin, from, to) => gaps.push([origin, from, to]) });
    try {
      await Promise.all([a.backplane!.ready, b.backplane!.ready]);
      const local = await client(a, "room");
      const remote = await client(b, "room");
      a.publish("room", "1");
      await until(() => remote.messages.length === 1, "the first message");
      hub.down();
      // 2..4 fit in the queue; the 1 KiB ones fill it until 10 KiB; then one more fits again after up.
      for (let i = 2; i <= 4; i++) a.publish("room", String(i));
      const big = "x".repeat(1024);
      for (let i = 5; i <= 20; i++) a.publish("room", `${i} ${big}`);
      await until(() => local.messages.length === 20, "local delivery, which does not wait for the broker");
      const stats = a.backplane!.stats();
      assert.equal(stats.up, false);
      // An envelope is 38 bytes of header, the topic and the payload: those that fit in 10 KiB.
      const sizes = [2, 3, 4].map(() => 38 + 4 + 1).concat(Array.from({ length: 16 }, (_, i) => 38 + 4 + `${i + 5} `.length + 1024));
      let queued = 0, bytes = 0;
      while (bytes + sizes[queued]! <= 10 * 1024) bytes += sizes[queued++]!;
      assert.equal(stats.dropped, 19 - queued);
      assert.equal(stats.queuedBytes, bytes, "every queued byte counted");
      hub.up();
      a.publish("room", "21");
      await until(() => remote.messages.length === 1 + queued + 1, "the queue and the next message");
      assert.deepEqual(remote.messages.slice(0, 4), ["1", "2", "3", "4"]);
      assert.equal(remote.messages.at(-1), "21");
      assert.deepEqual(gaps, [[a.backplane!.origin, 2 + queued, 20]]);
      assert.deepEqual(events, ["up", "down", "error queue", "up"]);
      assert.equal(b.backplane!.stats().missed, 20 - 2 - queued + 1);
      assert.equal(b.backplane!.stats().gaps, 1);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  test("what is not an envelope, or not valid text, is reported and skipped; delivery goes on", async () => {
    const hub = new MemoryHub();
    const errors: [string, string][] = [];
    const server = await start({ driver: hub.driver(), error: (stage, error) => errors.push([stage, (error as Error).message]) });
    const foreign = hub.driver();
    await foreign.start({ message() {}, error() {}, up() {}, down() {} });
    try {
      await server.backplane!.ready;
      const c = await client(server, "room");
      const origin = new Uint8Array(16).fill(7);
      await foreign.publish("anyws", new TextEncoder().encode("not an envelope, though longer than one"));
      await foreign.publish("anyws", encodeEnvelope(origin, 1, 1, "room", new Uint8Array([0xc3, 0x28]), false));
      await foreign.publish("anyws", encodeEnvelope(origin, 1, 2, "room", "fine"));
      await until(() => c.messages.length === 1, "the valid message");
      assert.deepEqual(c.messages, ["fine"]);
      assert.deepEqual(errors.map(([stage]) => stage), ["decode", "receive"]);
      assert.match(errors[0]![1], /unknown envelope version/);
      assert.match(errors[1]![1], /not valid UTF-8/);
      assert.equal(server.backplane!.stats().lastError?.stage, "receive");
    } finally {
      await foreign.close();
      await server.close();
    }
  });

  test('channels: "topic" subscribes a channel while a local socket holds the topic', async () => {
    const hub = new MemoryHub();
    const log: string[] = [];
    const gaps: unknown[][] = [];
    const a = await start({ driver: recorded(hub.driver(), log), channels: "topic", prefix: "app", gap: (...args) => gaps.push(args) });
    const b = await start({ driver: hub.driver(), channels: "topic", prefix: "app", maxQueuedBytes: 120, error: () => {} });
    try {
      await Promise.all([a.backplane!.ready, b.backplane!.ready]);
      assert.deepEqual(log, []);
      const first = await client(a, "red");
      const second = await client(a, "red", "blue");
      assert.deepEqual(log, ["+app:red", "+app:blue"]);
      b.publish("red", "r1");
      b.publish("blue", "b1");
      b.publish("green", "g1");
      await until(() => second.messages.length === 2, "red and blue");
      assert.deepEqual(first.messages, ["r1"]);
      assert.deepEqual(second.messages, ["r1", "b1"]);
      first.ws.close();
      second.ws.send("unsub red");
      await until(() => log.length === 3, "the last red subscriber to go");
      assert.deepEqual(log, ["+app:red", "+app:blue", "-app:red"]);
      b.publish("red", "r2");
      b.publish("blue", "b2");
      await until(() => second.messages.length === 4, "blue");
      assert.deepEqual(second.messages.slice(2), ["unsubscribed red", "b2"]);
      // Sequence numbers are per channel: what went to channels nobody here holds is no gap.
      assert.equal(a.backplane!.stats().gaps, 0);
      assert.equal(a.backplane!.stats().received, 3);
      // A gap names its topic: blue's 3rd fits in the queue, its 4th and 5th do not.
      hub.down();
      for (const n of [3, 4, 5]) b.publish("blue", `b${n} ${"x".repeat(20)}`);
      hub.up();
      b.publish("blue", "b6");
      await until(() => second.messages.length === 6, "blue after the outage");
      assert.deepEqual(second.messages.slice(4), [`b3 ${"x".repeat(20)}`, "b6"]);
      assert.deepEqual(gaps, [[b.backplane!.origin, 4, 5, "blue"]]);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });
});
