/**
 * `serve({ reusePort: true })`: two server processes of this runtime on one port, and the kernel
 * (Linux) spreads clients over both; without the option the second process cannot bind. Where
 * the runtime cannot do it (Node before 22.12, Deno without --unstable-net), `serve()` rejects
 * with an error that says so instead of ignoring the option.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { runtimeName, WebSocket } from "../../adapters/auto.ts";
import { Child } from "../support/child.ts";
import { until } from "../support/time.ts";

type Line = { type: "listening"; port: number; pid: number } | { type: "error"; message: string };

/** The fixture server in a child process on this runtime; resolves with its first line. */
async function startServer(port: number, reusePort: boolean, denoFlags: string[] = ["--unstable-net"]) {
  const compiled = import.meta.url.endsWith(".js"); // Node runs the tsc output in dist/
  const script = fileURLToPath(new URL(`../support/reuse-port-server.${compiled ? "js" : "ts"}`, import.meta.url));
  const args = runtimeName === "deno" ? ["run", "-A", ...denoFlags, script] : [script];
  const child = new Child(process.execPath, args, {
    env: { ANYWS_PORT: String(port), ANYWS_REUSE_PORT: reusePort ? "1" : "0", DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1" },
  });
  await until(() => child.lines.length > 0 || child.exit !== null, "the server's first line", 20_000).catch((e) => {
    throw new Error(`${e.message}\n${child.describe()}`);
  });
  if (child.lines.length === 0) throw new Error(`the server said nothing\n${child.describe()}`);
  return { child, line: JSON.parse(child.lines[0]!) as Line };
}

/** Which pid greets a new client on `port`. */
function greeter(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/`);
    ws.onmessage = (event) => {
      resolve(Number(event.data));
      ws.close();
    };
    ws.onerror = () => reject(new Error(`cannot connect to port ${port}`));
  });
}

const [major, minor] = process.versions.node.split(".").map(Number) as [number, number];
const nodeHasIt = major > 23 || (major === 23 && minor >= 1) || (major === 22 && minor >= 12);
const supported = runtimeName !== "node" || nodeHasIt;

if (supported) test(`reusePort: two ${runtimeName} server processes share a port and both get clients`, async () => {
  const children: Child[] = [];
  try {
    const a = await startServer(0, true);
    children.push(a.child);
    assert.equal(a.line.type, "listening", a.child.describe());
    const { port, pid: pidA } = a.line as Extract<Line, { type: "listening" }>;

    // Without the option, the port is taken.
    const refused = await startServer(port, false);
    children.push(refused.child);
    assert.equal(refused.line.type, "error", refused.child.describe());

    const b = await startServer(port, true);
    children.push(b.child);
    assert.equal(b.line.type, "listening", b.child.describe());
    const { pid: pidB } = b.line as Extract<Line, { type: "listening" }>;
    assert.equal((b.line as { port: number }).port, port);

    // The kernel hashes each connection's addresses: 64 clients all on one side has odds of 2^-63.
    const served = new Map<number, number>();
    for (let i = 0; i < 64; i++) {
      const pid = await greeter(port);
      served.set(pid, (served.get(pid) ?? 0) + 1);
    }
    assert.deepEqual([...served.keys()].sort(), [pidA, pidB].sort(), `clients per pid: ${JSON.stringify([...served])}`);
  } finally {
    await Promise.all(children.map((c) => c.kill()));
  }
});

if (!supported) test(`reusePort: Node ${process.versions.node} rejects it, saying which Node it needs`, async () => {
  const a = await startServer(0, true);
  try {
    assert.equal(a.line.type, "error");
    assert.match((a.line as { message: string }).message, /reusePort needs Node >= 22\.12/);
  } finally {
    await a.child.kill();
  }
});

if (runtimeName === "deno") test("reusePort: Deno without --unstable-net rejects it, naming the flag", async () => {
  const a = await startServer(0, true, []);
  try {
    assert.equal(a.line.type, "error", a.child.describe());
    assert.match((a.line as { message: string }).message, /reusePort on Deno needs the --unstable-net flag/);
  } finally {
    await a.child.kill();
  }
});
