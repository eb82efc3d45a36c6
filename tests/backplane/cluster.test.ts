/**
 * The node:cluster backplane driver, with real forked worker processes on this runtime (Node,
 * and Deno and Bun through their node:cluster): envelopes go from a worker through the
 * primary's hub to the other worker and to the primary, and from the primary to both workers,
 * byte for byte (every byte value, 0 B to 1 MiB) and in order, never back to their sender, and
 * only to subscribers of their channel; with either IPC serialization, and whether the hub
 * starts before or after the workers. Then servers in the primary and in two workers, with
 * real clients, share a room.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { runtimeName } from "../../adapters/auto.ts";
import { clusterDriver } from "../../adapters/backplane/cluster.ts";
import { Child } from "../support/child.ts";
import { digest, testEnvelopes } from "../support/envelopes.ts";
import { assertReceived, clientsOn, closeAll, publication, publish, type TopicClient } from "../support/topic-client.ts";
import { until } from "../support/time.ts";

/** tests/support/cluster-relay.ts as a program on this runtime; resolves once it has exited. */
async function runRelay(serialization: "advanced" | "json", hub: "first" | "late" | "never" | "restart" | "backlog"): Promise<Child> {
  const compiled = import.meta.url.endsWith(".js"); // Node runs the tsc output in dist/
  const script = fileURLToPath(new URL(`../support/cluster-relay.${compiled ? "js" : "ts"}`, import.meta.url));
  const args = runtimeName === "deno" ? ["run", "-A", script] : [script];
  const child = new Child(process.execPath, args, {
    env: {
      ANYWS_SERIALIZATION: serialization,
      ANYWS_HUB_LATE: hub === "first" ? "0" : hub === "late" ? "1" : hub,
      DENO_NO_UPDATE_CHECK: "1",
      NO_COLOR: "1",
    },
  });
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, 40_000)));
  await Promise.race([child.done(), timeout]);
  clearTimeout(timer);
  if (child.exit === null) {
    await child.kill();
    assert.fail(`the cluster did not finish\n${child.describe()}`);
  }
  return child;
}

const expected = testEnvelopes().map(digest);

for (const serialization of ["advanced", "json"] as const) {
  for (const hub of ["first", "late"] as const) {
    test(`cluster driver on ${runtimeName} (${serialization} IPC, hub started ${hub === "first" ? "before" : "after"} forking): worker → worker and primary, primary → workers, in order, byte for byte`, async () => {
      const child = await runRelay(serialization, hub);
      const lines = child.lines;
      const of = (who: string) => lines.filter((l) => l.startsWith(`recv ${who} `)).map((l) => l.slice(`recv ${who} `.length));
      assert.deepEqual(lines.filter((l) => !l.startsWith("recv ")), ["exit"], child.describe());
      assert.deepEqual(of("primary"), expected, "what the primary got from w1");
      assert.deepEqual(of("w1"), expected, "what w1 got from the primary (never its own)");
      assert.deepEqual(of("w2"), [...expected, ...expected], "what w2 got from w1, then from the primary");
      assert.equal(child.exit?.code, 0, child.describe());
    });
  }
}

test(`cluster driver on ${runtimeName}: a worker whose primary runs no hub fails to start, saying so`, async () => {
  const child = await runRelay("advanced", "never");
  assert.deepEqual(child.lines, [
    "start failed anyws: no clusterHub() answered from the cluster primary within 200 ms: call clusterHub() in the primary",
    "exit",
  ], child.describe());
});

test(`cluster driver on ${runtimeName}: when the primary's hub closes, its workers report down and cannot publish; a new hub brings them up again`, async () => {
  const child = await runRelay("advanced", "restart");
  assert.deepEqual(child.lines, [
    "up",
    "down",
    "publish failed anyws: no cluster hub is relaying (not started, or the primary's hub closed)",
    "up",
    `recv w1 ${digest(new Uint8Array([1, 2, 3]))}`,
    "down primary", // the primary's own driver, when its hub closes at the end
    "exit",
  ], child.describe());
});

test(`cluster hub on ${runtimeName}: what it holds for a worker that does not read is bounded by maxQueuedBytes; the rest is dropped, reported once, and the worker gets the rest in order`, async () => {
  const child = await runRelay("advanced", "backlog");
  const got = child.lines.filter((l) => l.startsWith("got ")).map((l) => Number(l.slice(4)));
  const errors = child.lines.filter((l) => l.startsWith("hub error "));
  assert.equal(child.lines.at(-1), "exit", child.describe());
  for (let i = 1; i < got.length; i++) assert.ok(got[i]! > got[i - 1]!, `in order, once each: ${got}`);
  assert.equal(got.at(-1), 40, "the last one, sent once the worker reads again");
  // At most 1 MiB held (4 envelopes) plus what the kernel's socket buffer took: most are dropped.
  assert.ok(got.length < 30, `envelopes dropped: got ${got}`);
  assert.deepEqual(got.slice(0, 4), [0, 1, 2, 3], "the first ones, which fit");
  assert.equal(errors.length, 1, child.describe());
  assert.match(errors[0]!, /cluster hub backlog for worker 1 full \(\d+ bytes\): envelopes for it are dropped/);
});

test("cluster driver: outside a cluster worker, clusterDriver() throws and points at clusterHub()", () => {
  assert.throws(() => clusterDriver(), /clusterDriver\(\) runs in a node:cluster worker; in the primary, call clusterHub\(\)/);
});

for (const serialization of ["advanced", "json"] as const) {
  test(`cluster driver on ${runtimeName} (${serialization} IPC): servers in the primary and in two workers on one port share a room; every client gets every message once, text and binary 0 B to 1 MiB, in each publisher's order`, async () => {
    const compiled = import.meta.url.endsWith(".js");
    const script = fileURLToPath(new URL(`../support/cluster-servers.${compiled ? "js" : "ts"}`, import.meta.url));
    // Deno's reusePort needs --unstable-net (its cluster passes the flag on to the workers).
    const args = runtimeName === "deno" ? ["run", "-A", "--unstable-net", script] : [script];
    const child = new Child(process.execPath, args, {
      env: { ANYWS_SERIALIZATION: serialization, DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1" },
    });
    const clients: TopicClient[] = [];
    try {
      const listening = () => child.lines.filter((l) => l.startsWith("listening "));
      await until(() => listening().length === 3 || child.exit !== null, "three servers", 30_000);
      assert.equal(listening().length, 3, child.describe());
      const portOf = (who: string) => Number(listening().find((l) => l.startsWith(`listening ${who} `))!.split(" ")[2]);
      assert.equal(portOf("w1"), portOf("w2"), "both workers on one port");
      const ports = [portOf("primary"), portOf("w1")];
      const by = await clientsOn(ports, ["primary", "w1", "w2"], 2);
      clients.push(...[...by.values()].flat());
      // A publisher in w1 sends text and binary, one in the primary and one in w2 text, all at once.
      const [p1, r1] = by.get("w1")!;
      const [p0, r0] = by.get("primary")!;
      const [p2, r2] = by.get("w2")!;
      const sent = new Map([["P1", publication("P1", true)], ["P0", publication("P0", false)], ["P2", publication("P2", false)]]);
      publish(p1!, sent.get("P1")!);
      publish(p0!, sent.get("P0")!);
      publish(p2!, sent.get("P2")!);
      for (const [receiver, name] of [[r0, "a client of the primary"], [r1, "a client of w1"], [r2, "a client of w2"]] as const) {
        await assertReceived(receiver!, sent, name);
      }
      // A publisher gets everyone's messages but its own.
      await assertReceived(p1!, new Map([["P0", sent.get("P0")!], ["P2", sent.get("P2")!]]), "publisher P1");
      await assertReceived(p0!, new Map([["P1", sent.get("P1")!], ["P2", sent.get("P2")!]]), "publisher P0");
      assert.deepEqual(child.lines.filter((l) => l.startsWith("error")), [], child.describe());
    } finally {
      await closeAll(clients);
      await child.kill();
    }
  });
}
