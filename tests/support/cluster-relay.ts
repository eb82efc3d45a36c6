/**
 * A node:cluster program for tests/backplane/cluster.test.ts, run on the test's runtime: the
 * primary starts `clusterHub()` (before forking, or after with ANYWS_HUB_LATE=1) and serves
 * through `hub.driver()`; worker 1 publishes the test envelopes on channel "c", which worker 2
 * and the primary receive; then the primary publishes them, which both workers receive. Every
 * process subscribes to "c", and envelopes also go to channel "nobody", which no one
 * subscribes to. Each process prints `recv <who> <length> <sha256>` per envelope, in order of
 * arrival, and the primary `exit` when every worker has exited. IPC serialization is
 * ANYWS_SERIALIZATION ("advanced" or "json"). With ANYWS_HUB_LATE=never there is no hub: the
 * one worker prints `start failed <message>`. With ANYWS_HUB_LATE=restart the one worker's hub
 * closes and a new one starts: it prints `up`, `down`, `publish failed <message>`, `up`, then
 * the envelope the new hub's primary driver publishes. With ANYWS_HUB_LATE=backlog the hub holds
 * at most 1 MiB for a worker: the one worker stops reading (its event loop busy for 2 s) while
 * the primary publishes 40 envelopes of 256 KiB, then, 3 s later, a last one of 4 bytes; the
 * worker prints `got <index>` for each envelope that reaches it, the primary `hub error
 * <message>` for each error its hub reports.
 */
import cluster from "node:cluster";
import process from "node:process";
import { clusterDriver, clusterHub } from "../../adapters/backplane/cluster.ts";
import type { BackplaneDriver, BackplaneSink } from "../../adapters/shared/backplane.ts";
import { digest, testEnvelopes } from "./envelopes.ts";

const print = (line: string) => process.stdout.write(line + "\n");
const envelopes = testEnvelopes();
const N = envelopes.length;

/** A sink that prints each envelope and calls `then` once `expect` have arrived. */
function printingSink(who: string, expect: number, then: () => void): BackplaneSink {
  let count = 0;
  return {
    message(channel, envelope) {
      print(`recv ${who} ${channel === "c" ? "" : channel + " "}${digest(envelope)}`);
      if (++count === expect) then();
    },
    error: (stage, error) => print(`error ${who} ${stage} ${String(error)}`),
    up: () => {},
    down: () => print(`down ${who}`),
  };
}

async function publishAll(driver: BackplaneDriver): Promise<void> {
  for (const e of envelopes) {
    await driver.publish("c", e);
    await driver.publish("nobody", e.subarray(0, 10));
  }
}

const mode = process.env.ANYWS_HUB_LATE;
/** Envelope `index` of the backlog run: its index in the first 4 bytes. */
const numbered = (index: number, size: number) => {
  const bytes = new Uint8Array(size);
  new DataView(bytes.buffer).setUint32(0, index);
  return bytes;
};
if (cluster.isPrimary && mode === "backlog") {
  cluster.setupPrimary({ serialization: "advanced" });
  const hub = clusterHub({ maxQueuedBytes: 1024 * 1024, error: (error) => print(`hub error ${(error as Error).message}`) });
  const driver = hub.driver();
  await driver.start(printingSink("primary", Infinity, () => {}));
  const worker = cluster.fork({ ANYWS_WHO: "w1" });
  worker.on("message", async (m: { ready?: string }) => {
    if (!m.ready) return;
    for (let i = 0; i < 40; i++) await driver.publish("c", numbered(i, 256 * 1024));
    await new Promise((resolve) => setTimeout(resolve, 3000));
    await driver.publish("c", numbered(40, 4));
  });
  worker.on("exit", () => {
    hub.close();
    print("exit");
  });
} else if (cluster.isWorker && mode === "backlog") {
  const driver = clusterDriver();
  await driver.subscribe("c");
  await driver.start({
    message(_channel, envelope) {
      const index = new DataView(envelope.buffer, envelope.byteOffset, envelope.byteLength).getUint32(0);
      print(`got ${index}`);
      if (index === 40) void driver.close().then(() => process.disconnect?.());
    },
    error: (stage, error) => print(`error w1 ${stage} ${String(error)}`),
    up() {},
    down() {},
  });
  process.send!({ ready: "w1" });
  const until = Date.now() + 2000;
  while (Date.now() < until) {
    // Busy: this worker reads nothing from its IPC channel meanwhile.
  }
} else if (cluster.isPrimary && mode === "never") {
  cluster.fork({ ANYWS_WHO: "w1" }).on("exit", () => print("exit"));
} else if (cluster.isPrimary && mode === "restart") {
  let hub = clusterHub();
  const worker = cluster.fork({ ANYWS_WHO: "w1" });
  worker.on("message", async (m: { step?: string }) => {
    if (m.step === "up") hub.close();
    else if (m.step === "down") {
      hub = clusterHub();
    } else if (m.step === "up again") {
      const driver = hub.driver();
      await driver.start(printingSink("primary", 1, () => {}));
      await driver.publish("c", new Uint8Array([1, 2, 3]));
    }
  });
  worker.on("exit", () => {
    hub.close();
    print("exit");
  });
} else if (cluster.isWorker && mode === "restart") {
  const driver = clusterDriver();
  let ups = 0;
  await driver.subscribe("c");
  await driver.start({
    message(_channel, envelope) {
      print(`recv w1 ${digest(envelope)}`);
      void driver.close().then(() => process.disconnect?.());
    },
    error: (stage, error) => print(`error w1 ${stage} ${String(error)}`),
    up() {
      print("up");
      process.send!({ step: ++ups === 1 ? "up" : "up again" });
    },
    async down() {
      print("down");
      await driver.publish("c", new Uint8Array(1)).catch((error) => print(`publish failed ${(error as Error).message}`));
      process.send!({ step: "down" });
    },
  });
} else if (cluster.isPrimary) {
  cluster.setupPrimary({ serialization: process.env.ANYWS_SERIALIZATION as "advanced" | "json" });
  let hub = process.env.ANYWS_HUB_LATE === "1" ? null : clusterHub();
  const workers = [cluster.fork({ ANYWS_WHO: "w1" }), cluster.fork({ ANYWS_WHO: "w2" })];
  if (hub === null) {
    // Both workers are running (and have said hello to nobody) before the hub starts.
    await Promise.all(workers.map((w) => new Promise((resolve) => w.once("online", resolve))));
    hub = clusterHub();
  }
  const driver = hub.driver();
  const ready = new Set<string>();
  await driver.start(printingSink("primary", N, () => void publishAll(driver)));
  await driver.subscribe("c");
  for (const w of workers) {
    w.on("message", (m: { ready?: string }) => {
      if (!m.ready) return;
      ready.add(m.ready);
      if (ready.size === 2) workers[0]!.send({ go: true }); // w1 publishes once both listen
    });
  }
  let exited = 0;
  cluster.on("exit", () => {
    if (++exited < workers.length) return;
    void driver.close().then(() => {
      hub!.close();
      print("exit");
      process.exit(0);
    });
  });
} else if (cluster.isWorker) {
  const who = process.env.ANYWS_WHO!;
  const never = process.env.ANYWS_HUB_LATE === "never";
  const driver = clusterDriver({ timeout: never ? 200 : 10_000 });
  if (never) {
    await driver.start(printingSink(who, 1, () => {})).catch((error) => print(`start failed ${(error as Error).message}`));
    await driver.close();
    process.exit(0);
  }
  // w1 hears the primary's set; w2 hears w1's, then the primary's.
  const expect = who === "w1" ? N : 2 * N;
  await driver.subscribe("c");
  await driver.start(printingSink(who, expect, () => {
    void driver.close().then(() => process.disconnect?.());
  }));
  process.on("message", (m: { go?: boolean }) => {
    if (m.go) void publishAll(driver);
  });
  process.send!({ ready: who });
}
