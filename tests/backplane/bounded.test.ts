/**
 * The backplane's state stays bounded while topics and processes come and go: a publisher
 * forgets unused sequence counters (the next publish starts a new run), a receiver forgets the
 * processes it has not heard from for long or beyond its cap, and a channel's record goes with
 * its subscription. None of it may show as a false gap, drop a message, or hide a loss the
 * receiver can see. A clock of the test's own says what went unused.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { runtimeName } from "../../adapters/auto.ts";
import { Backplane, type BackplaneDriver, type BackplaneOptions, decodeEnvelope, encodeEnvelope, MemoryHub } from "../../adapters/backplane/mod.ts";

const decoder = new TextDecoder();
const flush = () => new Promise((resolve) => setTimeout(resolve, 0));

/** A backplane on `hub` that records what it delivers and the gaps it reports, on the clock `time.now`. */
function node(hub: MemoryHub, time: { now: number }, options: Omit<BackplaneOptions, "driver"> & { driver?: BackplaneDriver } = {}) {
  const delivered: string[] = [];
  const gaps: unknown[][] = [];
  const backplane = new Backplane(
    { driver: hub.driver(), gap: (...args) => gaps.push(args), ...options },
    (topic, payload) => delivered.push(`${topic} ${decoder.decode(payload)}`),
    () => time.now,
  );
  return { backplane, delivered, gaps };
}

/** A driver that hands every envelope it publishes to `log` too. */
function tapped(driver: BackplaneDriver, log: Uint8Array[]): BackplaneDriver {
  return {
    start: (sink) => driver.start(sink),
    publish: (channel, envelope) => (log.push(envelope), driver.publish(channel, envelope)),
    subscribe: (channel) => driver.subscribe(channel),
    unsubscribe: (channel) => driver.unsubscribe(channel),
    close: () => driver.close(),
  };
}

describe(`backplane state bounds on ${runtimeName}`, () => {
  test('"topic" channels: unused counters are forgotten; the new run is delivered, is no false gap, and a loss in it is reported', async () => {
    const hub = new MemoryHub();
    const time = { now: 0 };
    const sent: Uint8Array[] = [];
    const receiver = node(hub, time, { channels: "topic" });
    const publisher = node(hub, time, {
      channels: "topic",
      driver: tapped(hub.driver(), sent),
      forgetAfter: 1000,
      maxTracked: 50,
      maxQueuedBytes: 100,
      error: () => {},
    });
    try {
      await Promise.all([receiver.backplane.ready, publisher.backplane.ready]);
      receiver.backplane.topicAdded("room");
      publisher.backplane.publish("room", "1");
      publisher.backplane.publish("room", "2");
      for (let i = 0; i < 100; i++) publisher.backplane.publish(`topic ${i}`, "x");
      assert.equal(publisher.backplane.stats().counters, 50, "at most maxTracked counters");
      await flush();
      assert.deepEqual(receiver.delivered, ["room 1", "room 2"]);
      // Unused for forgetAfter: every counter goes, and "room" starts a new run.
      time.now = 1000;
      publisher.backplane.publish("other", "x");
      assert.equal(publisher.backplane.stats().counters, 1);
      publisher.backplane.publish("room", "3");
      await flush();
      const runs = sent.map(decodeEnvelope).filter((e) => e.topic === "room").map((e) => [e.run, e.sequence]);
      assert.equal(runs.length, 3);
      assert.deepEqual(runs[2]![1], 1, "the new run counts from 1");
      assert.ok(runs[2]![0] > runs[0]![0], "in a later run");
      assert.deepEqual(receiver.delivered, ["room 1", "room 2", "room 3"], "delivered, not taken for a duplicate");
      assert.deepEqual(receiver.gaps, [], "no false gap");
      // Forgotten again; the new run's first message is lost (the relay queue is full): its second is a gap of 1 to 1.
      time.now = 2000;
      publisher.backplane.publish("other", "x");
      hub.down();
      publisher.backplane.publish("room", "4".repeat(100));
      hub.up();
      publisher.backplane.publish("room", "5");
      await flush();
      assert.deepEqual(receiver.delivered.slice(3), ["room 5"]);
      assert.deepEqual(receiver.gaps, [[publisher.backplane.origin, 1, 1, "room"]]);
    } finally {
      await Promise.all([receiver.backplane.close(), publisher.backplane.close()]);
    }
  });

  test("a receiver forgets origins silent for forgetAfter and, beyond maxTracked, the least recently heard; runs are ordered", async () => {
    const hub = new MemoryHub();
    const time = { now: 0 };
    const receiver = node(hub, time, { forgetAfter: 1000, maxTracked: 3 });
    const foreign = hub.driver();
    await foreign.start({ message() {}, error() {}, up() {}, down() {} });
    const origins = [1, 2, 3, 4].map((n) => new Uint8Array(16).fill(n));
    const hexes = origins.map((o) => Array.from(o, (b) => b.toString(16).padStart(2, "0")).join(""));
    const send = (o: number, run: number, sequence: number) =>
      foreign.publish("anyws", encodeEnvelope(origins[o]!, run, sequence, "room", `${o}.${run}.${sequence}`));
    try {
      await receiver.backplane.ready;
      for (const o of [0, 1, 2]) await send(o, 1, 1);
      time.now = 200;
      await send(0, 1, 2); // origin 0 heard again: origin 1 is now the least recently heard
      await send(3, 1, 1); // beyond the cap: origin 1 is forgotten
      assert.equal(receiver.backplane.stats().peers, 3);
      await send(0, 1, 4); // still known: a gap
      await send(1, 1, 3); // forgotten: counting starts again, no gap (origin 2, the least recently heard now, goes)
      assert.deepEqual(receiver.gaps, [[hexes[0], 3, 3, undefined]]);
      // Runs: a later one restarts the numbers (what it numbered before never came), an earlier one is over.
      await send(0, 2, 1);
      await send(0, 2, 3);
      await send(0, 1, 5);
      await send(0, 3, 2);
      assert.deepEqual(receiver.gaps.slice(1), [[hexes[0], 2, 2, undefined], [hexes[0], 1, 1, undefined]]);
      time.now = 700;
      await send(3, 1, 2);
      // Silent for forgetAfter: origins 0 and 1 (last heard at 200) go; origin 3 (at 700) stays.
      time.now = 1200;
      await send(0, 3, 5);
      await send(3, 1, 4);
      assert.equal(receiver.backplane.stats().peers, 2);
      assert.deepEqual(receiver.gaps.slice(3), [[hexes[3], 3, 3, undefined]]);
      assert.deepEqual(receiver.delivered.map((d) => d.slice(5)), [
        "0.1.1", "1.1.1", "2.1.1", "0.1.2", "3.1.1", "0.1.4", "1.1.3", "0.2.1", "0.2.3", "0.3.2", "3.1.2", "0.3.5", "3.1.4",
      ]);
    } finally {
      await foreign.close();
      await receiver.backplane.close();
    }
  });

  test('"topic" channels: a channel\'s record goes with its subscription, and a resubscription counts afresh', async () => {
    const hub = new MemoryHub();
    const time = { now: 0 };
    const receiver = node(hub, time, { channels: "topic" });
    const publisher = node(hub, time, { channels: "topic" });
    try {
      await Promise.all([receiver.backplane.ready, publisher.backplane.ready]);
      receiver.backplane.topicAdded("room");
      publisher.backplane.publish("room", "1");
      await flush();
      assert.equal(receiver.backplane.stats().peers, 1);
      receiver.backplane.topicRemoved("room");
      assert.equal(receiver.backplane.stats().peers, 0);
      publisher.backplane.publish("room", "2"); // nobody here holds it: not a loss
      await flush();
      receiver.backplane.topicAdded("room");
      publisher.backplane.publish("room", "3");
      await flush();
      assert.deepEqual(receiver.delivered, ["room 1", "room 3"]);
      assert.deepEqual(receiver.gaps, []);
    } finally {
      await Promise.all([receiver.backplane.close(), publisher.backplane.close()]);
    }
  });

  test("close() drops what waits in the relay queue, counted, and its bytes are no longer queued", async () => {
    const hub = new MemoryHub();
    const { backplane } = node(hub, { now: 0 });
    await backplane.ready;
    hub.down();
    backplane.publish("room", "a");
    backplane.publish("room", new Uint8Array(1000));
    assert.equal(backplane.stats().queuedBytes, 38 + 4 + 1 + 38 + 4 + 1000);
    await backplane.close();
    assert.equal(backplane.stats().dropped, 2);
    assert.equal(backplane.stats().queuedBytes, 0);
  });
});
