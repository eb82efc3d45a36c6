/**
 * Interop with python-websockets (Debian's python3-websockets) over real loopback sockets: our
 * server × its asyncio client, our client × its asyncio server. The Python side is
 * python_websockets_peer.py, run as a child process; it reports what it received as JSON
 * lines (text exactly, bytes as hex or SHA-256), and the test asserts on them.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { runtimeName } from "../../adapters/auto.ts";
import { until } from "../support/net.ts";
import { Child } from "../support/child.ts";
import { python, SCRIPT } from "../support/python.ts";
import { answerScriptedClient, assertDescribed, lastReport, PARAMETERS } from "../support/scripted-peer.ts";
import {
  assertBytes,
  assertExchange,
  clientCell,
  CLOSE_CODE,
  CLOSE_CODE_2,
  CLOSE_REASON,
  CLOSE_REASON_2,
  CLOSED,
  hex,
  PING,
  PING_2,
  startRecordingServer,
  withTimeout,
} from "../support/interop.ts";

const peer = python ? `python-websockets ${python.version}` : "python-websockets";

describe(`interop on ${runtimeName}: anyws × ${peer}`, () => {
  test("python3 with the websockets module is installed (Debian: python3-websockets)", () => {
    assert.ok(python, "no python3 can `import websockets`: apt-get install python3-websockets");
  });

  test(`our server × ${peer} client: text, binary, 1 MiB, pings both ways, closes both ways`, async () => {
    assert.ok(python, "python3-websockets is missing");
    const ours = await startRecordingServer({
      onMessage: answerScriptedClient,
    });
    const child = new Child(python.command, [
      SCRIPT,
      JSON.stringify({ ...PARAMETERS, mode: "client", url: `ws://127.0.0.1:${ours.port}/` }),
    ]);
    try {
      const exit = await withTimeout(child.done(), 15_000, "the python client");
      assert.deepEqual(exit, { code: 0, signal: null }, child.describe());
      const result = lastReport(child);

      // What our server received and saw, byte-exact.
      const [first, second] = ours.connections;
      assert.ok(first && second, "two connections");
      assert.match(first.offeredExtensions, /permessage-deflate/, "python offers permessage-deflate");
      assert.equal(first.extensions, "", "our server declines it (it negotiates none yet)");
      assertExchange(first.messages.slice(0, 3), `what our server received from ${peer}`);
      assert.deepEqual(first.messages.slice(3), [{ text: "ping me" }]);
      assert.equal(first.pings.length, 1);
      assertBytes(first.pings[0], PING, `the ping ${peer} sent`);
      await until(() => first.pongs.length >= 1, "the pong to our server's ping");
      assertBytes(first.pongs[0], PING_2, `the pong ${peer} sent`);
      assert.deepEqual(await first.closed, CLOSED);
      assert.deepEqual(first.errors, []);

      // What python received and saw.
      assert.deepEqual(result.extensions, [], "no extension in use on the python side");
      assert.equal(result.response_extensions, null, "our server answered with no Sec-WebSocket-Extensions");
      await assertDescribed(result.echoes, `echoes ${peer} received`);
      assert.equal(result.pong, true, "python got the pong to its ping, with its payload");
      assert.deepEqual(result.after_ping, { text: "pinged" });
      assert.equal((result.close_received as unknown[])[0], CLOSE_CODE, "our server echoes the close code");
      assert.deepEqual(result.closed_by_server, [CLOSE_CODE_2, CLOSE_REASON_2], `${peer} saw our server's close exactly`);
      const secondClose = await withTimeout(second.closed, 5000, "the second connection's close");
      assert.equal(secondClose.code, CLOSE_CODE_2);
      assert.equal(secondClose.wasClean, true);
    } finally {
      await child.kill();
      await ours.server.close({ timeout: 1000 });
    }
  });

  test(`our client × ${peer} server: text, binary, 1 MiB, pings both ways, closes both ways`, async () => {
    assert.ok(python, "python3-websockets is missing");
    const child = new Child(python.command, [SCRIPT, JSON.stringify({ ...PARAMETERS, mode: "server" })]);
    try {
      await until(() => child.lines.length > 0 || child.exit !== null, "python to listen", 10_000).catch(() => {});
      assert.ok(child.lines.length > 0, `python did not start:\n${child.describe()}`);
      const { port } = JSON.parse(child.lines[0]) as { port: number };
      const reports = () => child.lines.slice(1).map((l) => JSON.parse(l) as Record<string, unknown>);
      await clientCell(peer, port, {
        afterClose: async () => {
          await until(() => reports().length >= 1, "python's report on the first connection", 5000);
          const first = reports()[0];
          assert.equal(first.request_extensions, null, "our client offers no extension");
          await assertDescribed(first.messages, `what ${peer} received from our client`);
          assert.equal(first.pong, true, `our client answered python's ping with its payload: ${JSON.stringify(first)}`);
          assert.deepEqual(first.close_received, [CLOSE_CODE, CLOSE_REASON], `${peer} saw our close exactly`);
        },
      });
    } finally {
      child.process.stdin?.end();
      await withTimeout(child.done(), 3000, "python to exit").catch(() => child.kill());
      await child.kill();
    }
  });
});
