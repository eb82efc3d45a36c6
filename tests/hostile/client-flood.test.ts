/**
 * A hostile server against the WHATWG client: it floods pings and never reads (a Python script,
 * so that the peer really leaves everything unread on every runtime). Once the client's unsent
 * bytes pass `readLimit` it must stop reading, so that TCP pushes back on the server instead of
 * the client queueing a pong for every read. The client first sends a message larger than the
 * kernel's buffers, so its own buffer is over the limit however the pings happen to be read
 * (pings read together share pongs, RFC 6455 §5.5.3, so the pongs alone reach it at a rate that
 * depends on the chunking).
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { runtimeName, WebSocket } from "../../adapters/auto.ts";
import { Child, sourcePath } from "../support/child.ts";
import { python } from "../support/python.ts";
import { until } from "../support/net.ts";

const MB = 1024 * 1024;
const SCRIPT = sourcePath("./ping_flood_server.py", import.meta.url);

describe(`the client against a server that floods pings and never reads, on ${runtimeName}`, () => {
  test("the client stops reading at its readLimit: TCP pushes back on the server", async () => {
    assert.ok(python, "no python3 (Debian: python3-websockets)");
    const budget = 256 * MB;
    const server = new Child(python.command, [SCRIPT, String(budget)]);
    try {
      await until(() => server.lines.length >= 1 || server.exit !== null, "the server's port", 10_000);
      const port = Number(server.lines[0]);
      assert.ok(port > 0, server.describe());
      const client = new WebSocket(`ws://127.0.0.1:${port}`, [], { readLimit: MB });
      client.onopen = () => client.send(new Uint8Array(16 * MB));
      try {
        await until(() => server.lines.length >= 2 || server.exit !== null, "the flood to end", 60_000);
        const flood = JSON.parse(server.lines[1]) as { written: number; stalled: boolean };
        console.log(`ping flood against the client on ${runtimeName}: ${(flood.written / MB).toFixed(1)} MiB written before TCP pushed back`);
        assert.ok(flood.stalled, `the server wrote all ${budget / MB} MiB of pings: the client kept reading`);
        assert.equal(client.readyState, WebSocket.OPEN, "the client is still open, only paused");
      } finally {
        client.close();
      }
    } finally {
      await server.kill();
    }
  });
});
