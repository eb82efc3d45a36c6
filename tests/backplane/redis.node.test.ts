/**
 * The Redis backplane with a real redis-server (the test's own, on a free loopback port) and
 * real server processes of different runtimes and clients on one channel: Node, Deno and Bun,
 * each with node-redis 5, node-redis 4 or ioredis (tests/backplane/redis-peer.ts), on plain and
 * on sharded pub/sub, each with real WebSocket clients, which number their messages so that
 * loss, duplication and order can be checked.
 * Driven from Node, which starts every process and stops it by pid.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import process from "node:process";
import { serve, WebSocket } from "../../adapters/auto.ts";
import { redisBackplane } from "../../adapters/backplane/mod.ts";
import { Child, sourcePath } from "../support/child.ts";
import { RedisServer } from "../support/redis.ts";
import { delay, until, withTimeout } from "../support/time.ts";

const ROOT = sourcePath("../../", import.meta.url);
const SOURCE = join(ROOT, "tests", "backplane", "redis-peer.ts");
type Runtime = "node" | "deno" | "bun";
type Library = "node-redis" | "node-redis4" | "ioredis";

function command(runtime: Runtime): [string, string[]] {
  if (runtime === "node") return [process.execPath, [join(ROOT, "dist", "tests", "backplane", "redis-peer.js")]];
  if (runtime === "deno") return [join(ROOT, "node_modules", ".bin", "deno"), ["run", "-A", SOURCE]];
  return [join(ROOT, "node_modules", ".bin", "bun"), [SOURCE]];
}

interface PeerEvent {
  event: "up" | "down" | "error" | "gap";
  stage?: string;
  message?: string;
  origin?: string;
  from?: number;
  to?: number;
}

/** A server process on the backplane. */
class Peer {
  readonly child: Child;
  readonly name: string;
  readonly runtime: Runtime;
  port = 0;
  origin = "";

  constructor(runtime: Runtime, library: Library, redis: RedisServer, sharded: boolean) {
    const [file, args] = command(runtime);
    this.runtime = runtime;
    this.name = `${runtime}/${library}${sharded ? "/sharded" : ""}`;
    this.child = new Child(file, args, { env: { REDIS_URL: redis.url, REDIS_CLIENT: library, REDIS_SHARDED: sharded ? "1" : "0" } });
  }

  static async start(runtime: Runtime, library: Library, redis: RedisServer, sharded = false): Promise<Peer> {
    const peer = new Peer(runtime, library, redis, sharded);
    try {
      await until(() => peer.child.exit !== null || peer.events("up").length > 0, `${peer.name} to be up`, 60_000);
    } catch (error) {
      await peer.child.kill();
      throw new Error(`${(error as Error).message}\n${peer.child.describe()}`);
    }
    assert.equal(peer.child.exit, null, peer.child.describe());
    const hello = JSON.parse(peer.child.lines.find((l) => l.includes('"port"'))!);
    peer.port = hello.port;
    peer.origin = hello.origin;
    return peer;
  }

  events(kind?: PeerEvent["event"]): PeerEvent[] {
    return this.child.lines
      .filter((l) => l.startsWith('{"event"'))
      .map((l) => JSON.parse(l) as PeerEvent)
      .filter((e) => kind === undefined || e.event === kind);
  }

  alive(): void {
    assert.equal(this.child.exit, null, `${this.name} is still running\n${this.child.describe()}`);
  }
}

/** A message as a test client sends it: text "ID SEQ padding", or binary [id u32, seq u32, padding]. */
function message(id: number, seq: number, size: number, binary: boolean): string | Uint8Array {
  if (!binary) return `${id} ${seq} `.padEnd(size, "é");
  const bytes = new Uint8Array(Math.max(size, 8));
  const view = new DataView(bytes.buffer);
  view.setUint32(0, id);
  view.setUint32(4, seq);
  for (let i = 8; i < bytes.length; i++) bytes[i] = (i * 13 + seq) & 0xff;
  return bytes;
}

/** Who sent a message and its number. */
function parse(data: string | Uint8Array): [number, number] {
  if (typeof data === "string") {
    const [id, seq] = data.split(" ");
    return [Number(id), Number(seq)];
  }
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  return [view.getUint32(0), view.getUint32(4)];
}

class Client {
  readonly received: (string | Uint8Array)[] = [];
  sent = 0;
  readonly id: number;
  readonly ws: WebSocket;

  private constructor(id: number, ws: WebSocket) {
    this.id = id;
    this.ws = ws;
  }

  static async connect(id: number, peer: Peer): Promise<Client> {
    const ws = new WebSocket(`ws://127.0.0.1:${peer.port}`);
    ws.binaryType = "uint8array";
    const client = new Client(id, ws);
    ws.addEventListener("message", (e) => client.received.push((e as MessageEvent).data));
    await new Promise((resolve, reject) => {
      ws.addEventListener("open", resolve);
      ws.addEventListener("error", reject);
    });
    ws.send("sub room");
    await until(() => client.received.includes("subscribed room"), "the subscription");
    client.received.length = 0;
    return client;
  }

  /** Sequence numbers received from client `id`, in arrival order. */
  from(id: number): number[] {
    return this.received.map(parse).filter(([from]) => from === id).map(([, seq]) => seq);
  }

  /** Sends its next message; waits while the socket's buffer is full. */
  async send(size: number, binary: boolean): Promise<void> {
    this.ws.send(message(this.id, ++this.sent, size, binary));
    while (this.ws.bufferedAmount > 1024 * 1024) await delay(1);
  }
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe("Redis backplane across processes and runtimes", () => {
  let redis: RedisServer;
  const peers: Peer[] = [];
  const clients: Client[] = [];

  before(async () => {
    redis = await RedisServer.start();
  });

  after(async () => {
    await stopAll();
    await redis?.stop();
  });

  async function stopAll(): Promise<void> {
    for (const c of clients.splice(0)) c.ws.close();
    await Promise.all(peers.splice(0).map((p) => p.child.kill()));
  }

  async function startPeers(kinds: [Runtime, Library][], sharded = false, clientsPerPeer = 2): Promise<Client[][]> {
    peers.push(...(await Promise.all(kinds.map(([rt, lib]) => Peer.start(rt, lib, redis, sharded)))));
    const groups: Client[][] = [];
    for (const peer of peers) {
      const group: Client[] = [];
      for (let i = 0; i < clientsPerPeer; i++) group.push(await Client.connect(clients.length + 1, peer));
      clients.push(...group);
      groups.push(group);
    }
    return groups;
  }

  /**
   * Every publisher (the first client of each process) sends `count` small messages, text and
   * binary in turn; then one of them sends text and binary of 0 B to 1 MiB. Every other client,
   * in every process, gets each exactly once, in the publisher's order.
   */
  async function exchange(groups: Client[][], count: number): Promise<void> {
    const publishers = groups.map((g) => g[0]!);
    await Promise.all(publishers.map(async (p) => {
      for (let i = 0; i < count; i++) await p.send(16 + (i % 100), i % 2 === 1);
    }));
    for (const c of clients) {
      const expected = publishers.filter((p) => p !== c).length * count;
      await until(() => c.received.length >= expected, `client ${c.id} to receive ${expected} messages (has ${c.received.length})`, 30_000);
    }
    for (const c of clients) {
      for (const p of publishers) assert.deepEqual(c.from(p.id), p === c ? [] : range(1, count), `client ${c.id} from ${p.id}`);
    }
    // Sizes the whole message has (a 0 B one cannot carry its number: order tells which it is).
    for (const c of clients) c.received.length = 0;
    const sweep = groups[1]![0]!;
    const sizes = [0, 1, 125, 126, 65_535, 65_536, 1024 * 1024];
    const sent: (string | Uint8Array)[] = [];
    for (const size of sizes) {
      for (const binary of [false, true]) {
        const data = size < 8 ? (binary ? new Uint8Array(size).fill(size) : "x".repeat(size)) : message(sweep.id, 0, size, binary);
        sent.push(data);
        sweep.ws.send(data);
      }
    }
    for (const c of clients) {
      if (c === sweep) continue;
      await until(() => c.received.length >= sent.length, `client ${c.id} to receive the size sweep`, 30_000);
      assert.deepEqual(c.received, sent, `client ${c.id}: the size sweep, byte for byte and in order`);
    }
    for (const peer of peers) {
      peer.alive();
      assert.deepEqual(peer.events("gap"), [], `${peer.name} saw no gap`);
    }
    assert.deepEqual(sweep.received, []);
  }

  /** The channels the peers hold on Redis: plain (SUBSCRIBE) and sharded (SSUBSCRIBE). */
  async function channelsOnRedis(): Promise<{ plain: string[]; sharded: string[] }> {
    const { createClient } = await import("redis");
    const admin = createClient({ url: redis.url });
    await admin.connect();
    try {
      const plain = await admin.sendCommand<string[]>(["PUBSUB", "CHANNELS"]);
      const sharded = await admin.sendCommand<string[]>(["PUBSUB", "SHARDCHANNELS"]);
      return { plain: plain.sort(), sharded: sharded.sort() };
    } finally {
      admin.destroy();
    }
  }

  const exchanges: [Runtime, Library][][] = [
    [["node", "node-redis"], ["deno", "ioredis"], ["bun", "node-redis"]],
    [["node", "ioredis"], ["deno", "node-redis"], ["bun", "ioredis"]],
    [["node", "node-redis4"], ["deno", "node-redis4"], ["bun", "node-redis4"]],
  ];
  const named = (kinds: [Runtime, Library][]) =>
    kinds.map(([rt, lib]) => `${rt[0]!.toUpperCase()}${rt.slice(1)} + ${lib.replace("redis4", "redis 4")}`).join(", ");
  for (const kinds of exchanges) {
    test(`three processes: ${named(kinds)}`, { timeout: 120_000 }, async () => {
      try {
        const groups = await startPeers(kinds);
        assert.deepEqual(await channelsOnRedis(), { plain: ["anyws"], sharded: [] });
        await exchange(groups, 300);
      } finally {
        await stopAll();
      }
    });
  }

  const shardedExchanges: [Runtime, Library][][] = [
    [["node", "node-redis"], ["deno", "ioredis"], ["bun", "node-redis4"]],
    [["node", "ioredis"], ["deno", "node-redis"], ["bun", "ioredis"]],
    [["node", "node-redis4"], ["deno", "node-redis4"], ["bun", "node-redis"]],
  ];
  for (const kinds of shardedExchanges) {
    test(`sharded pub/sub (SPUBLISH, SSUBSCRIBE), one channel per topic, three processes: ${named(kinds)}`, { timeout: 120_000 }, async () => {
      try {
        const groups = await startPeers(kinds, true);
        assert.deepEqual(await channelsOnRedis(), { plain: [], sharded: ["anyws:room"] });
        await exchange(groups, 300);
      } finally {
        await stopAll();
      }
    });
  }

  /**
   * Checks what `receiver` got from `publisher` (which sent 1..sent) against the gaps its process
   * reported: every number once, in order, and the missing ones exactly the reported ranges (the
   * publisher's process published nothing else, so its envelope numbers are the client's).
   */
  function assertGapsReported(receiver: Client, receiverPeer: Peer, publisher: Client, publisherPeer: Peer): number[] {
    const got = receiver.from(publisher.id);
    for (let i = 1; i < got.length; i++) assert.ok(got[i]! > got[i - 1]!, `client ${receiver.id}: in order, once each: ${got.slice(i - 1, i + 1)}`);
    const missing = range(1, publisher.sent).filter((n) => !got.includes(n));
    const reported = receiverPeer.events("gap").filter((e) => e.origin === publisherPeer.origin).flatMap((e) => range(e.from!, e.to!));
    assert.deepEqual(missing, reported, `${receiverPeer.name}: the gaps it reported are what its clients missed`);
    return missing;
  }

  const restarts: [[Runtime, Library][], boolean][] = [
    [[["node", "node-redis"], ["bun", "ioredis"]], false],
    [[["deno", "node-redis4"], ["node", "node-redis4"]], false],
    [[["bun", "node-redis"], ["deno", "ioredis"]], true],
  ];
  for (const [kinds, sharded] of restarts) {
  test(`redis-server killed mid-stream and restarted: local delivery goes on, the drivers resubscribe, the gap is reported, delivery resumes (${named(kinds)}${sharded ? ", sharded" : ""})`, { timeout: 120_000 }, async () => {
    try {
      const [[publisher, local], [remote, remotePublisher]] = await startPeers(kinds, sharded);
      const [a, b] = peers as [Peer, Peer];
      let stop = false;
      const stream = (async () => {
        while (!stop) {
          await publisher!.send(32, publisher!.sent % 2 === 1);
          await delay(2);
        }
      })();
      await until(() => remote!.from(publisher!.id).length >= 100, "the stream to reach the other process");
      await redis.kill();
      const killedAt = publisher!.sent;
      await until(() => a.events("down").length === 1 && b.events("down").length === 1, "both drivers to report down", 20_000);
      // Local delivery does not wait for the broker.
      await until(() => local!.from(publisher!.id).length >= killedAt + 50, "local delivery while Redis is down");
      await redis.restart();
      await until(() => a.events("up").length === 2 && b.events("up").length === 2, "both drivers to be up again", 30_000);
      const upAt = publisher!.sent;
      await until(() => remote!.from(publisher!.id).some((n) => n > upAt + 20), "delivery across processes to resume", 20_000);
      stop = true;
      await stream;
      await until(() => remote!.from(publisher!.id).at(-1) === publisher!.sent, "the last message");
      for (let i = 0; i < 10; i++) await remotePublisher!.send(20, false);
      await until(() => local!.from(remotePublisher!.id).length === 10, "the other way too");
      for (const peer of peers) peer.alive();
      assert.deepEqual(local!.from(publisher!.id), range(1, publisher!.sent), "local delivery never stopped");
      assert.deepEqual(local!.from(remotePublisher!.id), range(1, 10));
      const missing = assertGapsReported(remote!, b, publisher!, a);
      assertGapsReported(remotePublisher!, b, publisher!, a);
      assert.deepEqual(remote!.from(publisher!.id).length + missing.length, publisher!.sent);
      for (const peer of peers) {
        const stages = new Set(peer.events("error").map((e) => e.stage));
        assert.ok(stages.has("receive") || stages.has("publish"), `${peer.name} reported the lost connection: ${[...stages]}`);
      }
    } finally {
      await stopAll();
    }
  });
  }

  const cutOffs: [[Runtime, Library][], boolean][] = [
    [[["node", "ioredis"], ["deno", "node-redis"]], false],
    [[["bun", "node-redis4"], ["node", "node-redis4"]], false],
    [[["deno", "node-redis4"], ["bun", "ioredis"]], true],
  ];
  for (const [kinds, sharded] of cutOffs) {
  test(`a subscriber Redis cuts off for its output buffer is reported (down, error), resubscribes, and the missed message is a gap (${named(kinds)}${sharded ? ", sharded" : ""})`, { timeout: 120_000 }, async () => {
    const { createClient } = await import("redis");
    const admin = createClient({ url: redis.url });
    await admin.connect();
    try {
      const [[publisher, local], [remote]] = await startPeers(kinds, sharded);
      const [a, b] = peers as [Peer, Peer];
      await publisher!.send(100, false);
      await until(() => remote!.received.length === 1, "a first message");
      await admin.configSet("client-output-buffer-limit", "pubsub 65536 32768 60");
      await publisher!.send(1024 * 1024, true);
      await until(() => b.events("up").length === 2 && a.events("up").length === 2, "both subscribers to be cut off and to resubscribe", 30_000);
      await admin.configSet("client-output-buffer-limit", "pubsub 33554432 8388608 60");
      await publisher!.send(100, false);
      await until(() => remote!.from(publisher!.id).includes(3), "delivery after the resubscription");
      assert.deepEqual(remote!.from(publisher!.id), [1, 3]);
      assert.deepEqual(local!.from(publisher!.id), [1, 2, 3], "local delivery is not the broker's business");
      assertGapsReported(remote!, b, publisher!, a);
      for (const peer of [a, b]) {
        peer.alive();
        assert.equal(peer.events("down").length, 1, `${peer.name} reported down`);
        assert.ok(peer.events("error").some((e) => e.stage === "receive"), `${peer.name} reported the subscriber's connection lost`);
      }
    } finally {
      await admin.configSet("client-output-buffer-limit", "pubsub 33554432 8388608 60").catch(() => {});
      await admin.close();
      await stopAll();
    }
  });
  }

  test("server.close() does not wait for a broker that is gone, and leaves the application's client open", { timeout: 60_000 }, async () => {
    const { createClient } = await import("redis");
    const { createClient: createClient4 } = await import("redis4");
    const { Redis } = await import("ioredis");
    const nodeRedis = createClient({ url: redis.url, socket: { reconnectStrategy: () => 100 } });
    const nodeRedis4 = createClient4({ url: redis.url, socket: { reconnectStrategy: () => 100 } });
    const ioRedis = new Redis(redis.url, { retryStrategy: () => 100 });
    const errors: string[] = [];
    const servers = await Promise.all([nodeRedis, nodeRedis4, ioRedis].map((client) =>
      serve({ port: 0, backplane: { driver: redisBackplane(client), error: (stage) => errors.push(stage) } }, {})
    ));
    try {
      await Promise.all(servers.map((s) => s.backplane!.ready));
      await redis.kill();
      await until(() => servers.every((s) => !s.backplane!.stats().up), "every driver to see Redis gone");
      for (const s of servers) s.publish("room", "queued while Redis is down");
      assert.deepEqual(servers.map((s) => s.backplane!.stats().queuedBytes > 0), [true, true, true]);
      await withTimeout(Promise.all(servers.map((s) => s.close())), 10_000, "server.close() with Redis down");
      assert.deepEqual(servers.map((s) => s.backplane!.stats().dropped), [1, 1, 1], "what was queued is dropped, and counted");
      assert.deepEqual(servers.map((s) => s.backplane!.stats().queuedBytes), [0, 0, 0]);
      assert.equal(nodeRedis.isOpen, true, "the node-redis client is still the application's");
      assert.equal(nodeRedis4.isOpen, true, "the node-redis 4 client is still the application's");
      assert.notEqual(ioRedis.status, "end", "the ioredis client is still the application's");
      assert.ok(errors.includes("receive"), `errors reported: ${errors}`);
    } finally {
      nodeRedis.destroy();
      await nodeRedis4.disconnect();
      ioRedis.disconnect();
      await redis.restart();
    }
  });

  test('sharded: true needs channels: "topic" and a client with sharded pub/sub, and says so', async () => {
    const { createClient } = await import("redis");
    const { Redis } = await import("ioredis");
    const nodeRedis = createClient({ url: redis.url });
    const ioRedis = new Redis(redis.url, { lazyConnect: true });
    try {
      for (const client of [nodeRedis, ioRedis]) {
        await assert.rejects(
          async () => await serve({ port: 0, backplane: { driver: redisBackplane(client, { sharded: true }) } }, {}),
          { name: "TypeError", message: /needs channels: "topic"/ },
        );
      }
      // The shape of a client without sharded pub/sub (an older library): refused where it is passed.
      const noop = () => Promise.resolve();
      const older = { isOpen: false, isReady: false, connect: noop, duplicate: () => older, publish: noop, subscribe: noop, unsubscribe: noop, on() {}, off() {} };
      assert.throws(() => redisBackplane(older, { sharded: true }), { name: "TypeError", message: /sharded: true.*sPublish\(\)/ });
    } finally {
      assert.equal(nodeRedis.isOpen, false, "nothing was connected");
      ioRedis.disconnect();
    }
  });

});
