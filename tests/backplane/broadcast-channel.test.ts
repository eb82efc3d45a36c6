/**
 * The BroadcastChannel backplane driver moves envelopes between drivers of one thread and
 * between threads (Node worker_threads, Deno and Bun workers): every byte value, 0 B to 1 MiB,
 * in order, only to subscribers of the channel. Then servers in the main thread and two worker
 * threads, with real clients, share a room.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { runtimeName } from "../../adapters/auto.ts";
import { broadcastChannelDriver } from "../../adapters/backplane/broadcast-channel.ts";
import { assertBytes } from "../support/bytes.ts";
import { testEnvelopes } from "../support/envelopes.ts";
import { RecordingSink } from "../support/recording-sink.ts";
import { delay, until, withTimeout } from "../support/time.ts";
import { serve } from "../../adapters/auto.ts";
import { topicHandlers } from "../support/topic-server.ts";
import { assertReceived, clientsOn, closeAll, publication, publish, type TopicClient } from "../support/topic-client.ts";

const PREFIX = "anyws.test:";

test("BroadcastChannel driver: envelopes cross between two drivers, byte for byte and in order, to subscribers only", async () => {
  const a = broadcastChannelDriver({ prefix: PREFIX });
  const b = broadcastChannelDriver({ prefix: PREFIX });
  const c = broadcastChannelDriver({ prefix: PREFIX });
  const sa = new RecordingSink();
  const sb = new RecordingSink();
  const sc = new RecordingSink();
  try {
    await a.start(sa);
    await b.start(sb);
    await c.start(sc);
    assert.deepEqual([sa.ups, sb.ups, sc.ups], [1, 1, 1]);
    await a.subscribe("room");
    await b.subscribe("room");
    await c.subscribe("other");
    const envelopes = testEnvelopes();
    for (const e of envelopes) await a.publish("room", e);
    // A view into a larger buffer goes as exactly its bytes.
    const big = Uint8Array.from({ length: 64 }, (_, i) => i);
    await a.publish("room", big.subarray(10, 20));
    await sb.received(envelopes.length + 1);
    assert.deepEqual(sb.messages.map((m) => m.channel), Array(envelopes.length + 1).fill("room"));
    envelopes.forEach((e, i) => assertBytes(sb.messages[i]!.envelope, e, `envelope ${i}`));
    assertBytes(sb.messages[envelopes.length]!.envelope, big.subarray(10, 20), "the view");
    // After unsubscribing, b gets nothing more; a never hears itself; c publishes on "room"
    // but is subscribed to another channel only, so it hears nothing of "room".
    await b.unsubscribe("room");
    await c.publish("room", new Uint8Array([2]));
    await a.publish("room", new Uint8Array([1]));
    await sa.received(1);
    assertBytes(sa.messages[0]!.envelope, new Uint8Array([2]), "c's envelope at a");
    await delay(50);
    assert.equal(sb.messages.length, envelopes.length + 1);
    assert.equal(sa.messages.length, 1);
    assert.equal(sc.messages.length, 0);
    assert.deepEqual([...sa.errors, ...sb.errors, ...sc.errors], []);
  } finally {
    await Promise.all([a.close(), b.close(), c.close()]);
  }
});

test("BroadcastChannel driver: publishing before start rejects, and a foreign message on the channel is reported as a decode error", async () => {
  const a = broadcastChannelDriver({ prefix: PREFIX });
  await assert.rejects(a.publish("room", new Uint8Array(1)), /not started/);
  const sink = new RecordingSink();
  await a.start(sink);
  await a.subscribe("room");
  const foreign = new BroadcastChannel(PREFIX + "room");
  try {
    foreign.postMessage("not bytes");
    const deadline = Date.now() + 5000;
    while (sink.errors.length === 0 && Date.now() < deadline) await delay(10);
    assert.equal(sink.errors[0]?.stage, "decode");
    assert.equal(sink.messages.length, 0);
  } finally {
    foreign.close();
    await a.close();
  }
});

/** A worker running tests/support/`script`: the runtime's own Worker, or worker_threads on Node. */
async function startWorker(script = "broadcast-worker"): Promise<{ terminate(): unknown }> {
  const compiled = import.meta.url.endsWith(".js"); // Node runs the tsc output in dist/
  const url = new URL(`../support/${script}.${compiled ? "js" : "ts"}`, import.meta.url);
  if (runtimeName === "node") {
    const { Worker } = await import("node:worker_threads");
    return new Worker(url);
  }
  return new Worker(url.href, { type: "module" });
}

test(`BroadcastChannel driver: envelopes cross to a ${runtimeName} worker thread and back, byte for byte and in order`, async () => {
  const ready = new BroadcastChannel("anyws.test.ready");
  const isReady = new Promise<void>((resolve) => (ready.onmessage = () => resolve()));
  const worker = await startWorker();
  const driver = broadcastChannelDriver({ prefix: PREFIX });
  const sink = new RecordingSink();
  try {
    await withTimeout(isReady, 20_000, "the worker to get ready");
    await driver.start(sink);
    await driver.subscribe("back");
    const envelopes = testEnvelopes();
    for (const e of envelopes) await driver.publish("there", e);
    await sink.received(envelopes.length);
    envelopes.forEach((e, i) => assertBytes(sink.messages[i]!.envelope, e, `envelope ${i} back from the worker`));
    assert.deepEqual(sink.errors, []);
  } finally {
    ready.close();
    await driver.close();
    await worker.terminate();
  }
});

test(`BroadcastChannel driver on ${runtimeName}: servers in the main thread and two worker threads share a room; every client gets every message once, text and binary 0 B to 1 MiB, in each publisher's order`, async () => {
  const announced = new BroadcastChannel("anyws.test.servers");
  const ports = new Map<string, number>();
  announced.onmessage = (event: { data: unknown }) => {
    const { who, port } = event.data as { who: string; port: number };
    ports.set(who, port);
  };
  const workers = [await startWorker("broadcast-server-worker"), await startWorker("broadcast-server-worker")];
  const server = await serve(
    { port: 0, hostname: "127.0.0.1", backplane: { driver: broadcastChannelDriver({ prefix: "anyws.test.e2e:" }) } },
    topicHandlers("main"),
  );
  const clients: TopicClient[] = [];
  try {
    await server.backplane!.ready;
    ports.set("main", server.port);
    await until(() => ports.size === 3, "both worker threads' servers", 20_000);
    const [t1, t2] = [...ports.keys()].filter((who) => who !== "main") as [string, string];
    const by = await clientsOn([...ports.values()], ["main", t1, t2], 2);
    clients.push(...[...by.values()].flat());
    const [p1, r1] = by.get(t1)!;
    const [p0, r0] = by.get("main")!;
    const [, r2] = by.get(t2)!;
    const sent = new Map([["P1", publication("P1", true)], ["P0", publication("P0", false)]]);
    publish(p1!, sent.get("P1")!);
    publish(p0!, sent.get("P0")!);
    await assertReceived(r0!, sent, "a client of the main thread");
    await assertReceived(r1!, sent, "a client of the first worker");
    await assertReceived(r2!, sent, "a client of the second worker");
    await assertReceived(p0!, new Map([["P1", sent.get("P1")!]]), "publisher P0");
    assert.equal(server.backplane!.stats().gaps, 0);
  } finally {
    announced.close();
    await closeAll(clients);
    await server.close({ timeout: 100 });
    for (const w of workers) await w.terminate();
  }
});
