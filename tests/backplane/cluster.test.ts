/**
 * The node:cluster backplane driver, with real forked worker processes on this runtime (Node,
 * and Deno and Bun through their node:cluster): envelopes go from a worker through the
 * primary's hub to the other worker and to the primary, and from the primary to both workers,
 * byte for byte (every byte value, 0 B to 1 MiB) and in order, never back to their sender, and
 * only to subscribers of their channel; with either IPC serialization, and whether the hub
 * starts before or after the workers.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { runtimeName } from "../../adapters/auto.ts";
import { clusterDriver } from "../../adapters/backplane/cluster.ts";
import { Child } from "../support/child.ts";
import { digest, testEnvelopes } from "../support/envelopes.ts";

/** tests/support/cluster-relay.ts as a program on this runtime; resolves once it has exited. */
async function runRelay(serialization: "advanced" | "json", hub: "first" | "late" | "never"): Promise<Child> {
  const compiled = import.meta.url.endsWith(".js"); // Node runs the tsc output in dist/
  const script = fileURLToPath(new URL(`../support/cluster-relay.${compiled ? "js" : "ts"}`, import.meta.url));
  const args = runtimeName === "deno" ? ["run", "-A", script] : [script];
  const child = new Child(process.execPath, args, {
    env: {
      ANYWS_SERIALIZATION: serialization,
      ANYWS_HUB_LATE: hub === "first" ? "0" : hub === "late" ? "1" : "never",
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

test("cluster driver: outside a cluster worker, clusterDriver() throws and points at clusterHub()", () => {
  assert.throws(() => clusterDriver(), /clusterDriver\(\) runs in a node:cluster worker; in the primary, call clusterHub\(\)/);
});
