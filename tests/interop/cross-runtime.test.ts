/**
 * Interop across runtimes: anyws on the runtime running this test × the native WebSocket of the
 * other runtimes, Deno's, Bun's and Node 24's, each run as a child process (node_modules/.bin/deno
 * and node_modules/.bin/bun, the versions package.json pins; tools/node24/node_modules/.bin/node,
 * which the test command installs) with tests/interop/native_peer.ts. Our server × that runtime's
 * `globalThis.WebSocket`; our client × `Deno.serve` + `Deno.upgradeWebSocket` or `Bun.serve` with
 * `websocket` handlers (Node has no native server). The runtime's own natives are tested
 * in-process by native.test.ts and {deno,bun}/native-server.test.ts, so on Deno only Bun's and
 * Node's run here, on Bun only Deno's and Node's, on Node 20 (no client of its own) all three, on
 * Node 22 and later Deno's and Bun's.
 *
 * Each cell exchanges non-ASCII text, binary and 1 MiB (byte for byte on both sides), pings and
 * pongs where the peer's API allows (Deno's WebSocket has no ping and no ping events on either
 * side; Bun's has both), and closes both ways with a code and a reason that the receiving side
 * must see exactly. The peer reports what it saw as JSON lines; the test asserts on them.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { runtimeName } from "../../adapters/auto.ts";
import { until } from "../support/net.ts";
import { Child, sourcePath } from "../support/child.ts";
import { answerScriptedClient, assertDescribed, PARAMETERS, reports } from "../support/scripted-peer.ts";
import {
  assertBytes,
  assertExchange,
  clientCell,
  CLOSE_CODE,
  CLOSE_CODE_2,
  CLOSE_REASON,
  CLOSED,
  CLOSED_2,
  hex,
  NATIVE_CLIENT_EXPECTED,
  PING,
  PING_2,
  startRecordingServer,
  withTimeout,
} from "../support/interop.ts";

const ROOT = sourcePath("../../", import.meta.url);
const SCRIPT = sourcePath("./native_peer.ts", import.meta.url);
/** A whole cell, processes included, is given this long. */
const CELL_MS = 45_000;

type Foreign = "deno" | "bun" | "node";
const NAME: Record<Foreign, string> = { deno: "Deno", bun: "Bun", node: "Node 24" };
const SERVER: Record<"deno" | "bun", string> = {
  deno: "Deno.serve + Deno.upgradeWebSocket",
  bun: "Bun.serve websocket",
};
const BIN: Record<Foreign, string> = {
  deno: join(ROOT, "node_modules", ".bin", "deno"),
  bun: join(ROOT, "node_modules", ".bin", "bun"),
  node: join(ROOT, "tools", "node24", "node_modules", ".bin", "node"),
};
const INSTALL: Record<Foreign, string> = { deno: "npm ci", bun: "npm ci", node: "npm ci --prefix tools/node24" };

/** The peer script on `rt`, with the exchange and `extra` as its parameters. */
function startPeer(rt: Foreign, extra: Record<string, unknown>): Child {
  const bin = BIN[rt];
  const parameters = JSON.stringify({ ...PARAMETERS, ...extra });
  const args = rt === "deno" ? ["run", "--allow-net", "--no-prompt", SCRIPT, parameters] : [SCRIPT, parameters];
  return new Child(bin, args, { env: { DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1" } });
}

/** A cell: `body`, bounded; the peer always killed by its pid afterwards. */
async function cell(child: Child, what: string, body: () => Promise<void>): Promise<void> {
  try {
    await withTimeout(body(), CELL_MS, what);
  } catch (error) {
    // What the peer said is half the story.
    if (error instanceof Error) error.message += `\n--- the peer process:\n${child.describe()}`;
    throw error;
  } finally {
    child.process.stdin?.end();
    await withTimeout(child.done(), 3000, "the peer to exit").catch(() => {});
    await child.kill();
  }
}

/** Our server × `rt`'s globalThis.WebSocket. */
async function serverCell(rt: Foreign): Promise<void> {
  const peer = `${NAME[rt]}'s native WebSocket client`;
  const ours = await startRecordingServer({ onMessage: answerScriptedClient });
  const child = startPeer(rt, { mode: "client", url: `ws://127.0.0.1:${ours.port}/` });
  try {
    await cell(child, `our server on ${runtimeName} × ${peer}`, async () => {
      const exit = await child.done();
      const result = reports(child).at(-1);
      assert.ok(result && !("error" in result), `${peer} reported no result`);
      assert.deepEqual(exit, { code: 0, signal: null }, `${peer} exits 0`);
      const canPing = result.can_ping === true;
      assert.equal(canPing, rt === "bun", "only Bun's client has ping()");

      // What our server received and saw on the first connection, byte-exact.
      const [first, second] = ours.connections;
      assert.ok(first && second, `two connections (${ours.connections.length})`);
      assert.equal(first.extensions, "", `nothing negotiated (offered: ${first.offeredExtensions || "none"})`);
      assert.equal(result.extensions, "", `${peer} negotiated nothing`);
      assertExchange(first.messages.slice(0, 3), `what our server received from ${peer}`);
      assert.deepEqual(first.messages.slice(3), [{ text: "ping me" }]);
      if (canPing) {
        // Bun's ping: our server saw it and answered with its payload.
        assert.equal(first.pings.length, 1, `our server saw ${peer}'s ping`);
        assertBytes(first.pings[0], PING, `the ping ${peer} sent`);
        assert.deepEqual(result.pongs, [hex(PING)], `${peer} got our pong, with its payload`);
      } else {
        assert.deepEqual(first.pings, []);
      }
      // Our server's ping: the native client answered with its payload.
      await until(() => first.pongs.length >= 1, `the pong to our server's ping from ${peer}`, 5000);
      assertBytes(first.pongs[0], PING_2, `the pong ${peer} sent`);
      if (canPing) assert.deepEqual(result.pings, [hex(PING_2)], `${peer} saw our ping (its "ping" event)`);
      assert.deepEqual(result.after_ping, { text: "pinged" });

      // What the native client received.
      await assertDescribed(result.echoes, `echoes ${peer} received`);

      // Its close: our server saw code and reason exactly, and echoed the code.
      assert.deepEqual(await withTimeout(first.closed, 5000, "our server's close on connection 1"), CLOSED);
      const closeReceived = result.close_received as { code: number; wasClean: boolean };
      assert.equal(closeReceived.code, CLOSE_CODE, `our server echoes the close code: ${JSON.stringify(closeReceived)}`);
      assert.equal(closeReceived.wasClean, true, `${peer}'s close is clean`);
      assert.deepEqual(first.errors, []);

      // Our server's close: the native client saw code, reason and wasClean exactly.
      assert.deepEqual(result.closed_by_server, CLOSED_2, `${peer} sees our server's close exactly`);
      const secondClose = await withTimeout(second.closed, 5000, "our server's close on connection 2");
      assert.equal(secondClose.code, CLOSE_CODE_2);
      assert.equal(secondClose.wasClean, true);
      assert.deepEqual(second.errors, []);
    });
  } finally {
    await ours.server.close({ timeout: 1000 });
  }
}

/** Our client × Deno.serve or Bun.serve. */
async function clientCellAgainst(rt: "deno" | "bun"): Promise<void> {
  const child = startPeer(rt, { mode: "server" });
  await cell(child, `our client on ${runtimeName} × ${SERVER[rt]}`, async () => {
    await until(() => reports(child).length > 0 || child.exit !== null, `${rt} to listen`, 15_000);
    const listening = reports(child)[0];
    assert.ok(listening && typeof listening.port === "number", `${rt} did not start`);
    const peer = `${listening.runtime as string} ${SERVER[rt]}`;
    const pings = listening.can_ping === true;
    assert.equal(pings, rt === "bun", "only Bun's server pings");
    const connection = async (n: number) => {
      const find = () => reports(child).find((r) => r.conn === n);
      await until(() => find() !== undefined, `${peer}'s report on connection ${n}`, 5000);
      return find()!;
    };

    // Connection 1: the exchange, closed by our client with CLOSE_CODE/CLOSE_REASON; connection
    // 2: our ping, from our core over this runtime's adapter; connection 3: closed by the server.
    await clientCell(peer, listening.port as number, {
      afterClose: async () => {
        const first = await connection(1);
        assert.equal(first.request_extensions, null, "our client offers no extension");
        await assertDescribed(first.messages, `what ${peer} received from our client`);
        assert.equal((first.messages as unknown[]).length, 3, `${peer} received nothing else`);
        if (pings) {
          // Bun pinged on connection; our client answered with the same payload.
          assert.deepEqual(first.pongs, [hex(PING_2)], `our client answered ${peer}'s ping with its payload`);
        }
        assert.deepEqual(first.close_received, CLOSED, `${peer} saw our close exactly`);
      },
    });
    const second = await connection(2);
    if (pings) assert.deepEqual(second.pings, [hex(PING)], `${peer} saw our ping with its payload`);
    assert.equal((second.close_received as { code: number }).code, 1000, "our raw client closed with 1000");
    const third = await connection(3);
    assert.deepEqual(third.messages, [{ text: "close me" }]);
    assert.equal((third.close_received as { code: number }).code, CLOSE_CODE_2, "our client echoes the server's close code");
  });
}

const foreign: Foreign[] = [
  ...(["deno", "bun"] as const).filter((rt) => rt !== runtimeName),
  // Node's client runs in-process where this runtime has one (native.test.ts).
  ...(runtimeName !== "node" || !NATIVE_CLIENT_EXPECTED ? ["node" as const] : []),
];

for (const rt of foreign) {
  describe(`interop on ${runtimeName}: anyws × ${NAME[rt]}'s natives (a ${rt} child process)`, () => {
    const bin = BIN[rt];
    if (!existsSync(bin)) {
      // Installed by the project's own files: missing means a broken install, which must not pass as green.
      test(`${NAME[rt]} is installed`, () => assert.fail(`${bin} is missing: run \`${INSTALL[rt]}\``));
      return;
    }

    test(`our server × ${NAME[rt]}'s native WebSocket client: text, binary, 1 MiB, pings, closes both ways`, async () => {
      await serverCell(rt);
    });

    if (rt !== "node") {
      test(`our client × ${SERVER[rt]}: text, binary, 1 MiB, pings, closes both ways`, async () => {
        await clientCellAgainst(rt);
      });
    }
  });
}
