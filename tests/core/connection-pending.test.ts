/**
 * `Connection.pendingBytes`: the payload bytes of messages accepted by a send and not yet in the
 * output (an extension still encoding them, or queued behind one that is), which the adapters add
 * to `bufferedAmount` and to the server's backpressure limit. Driven with a scripted extension
 * whose encoding finishes when the test says so: no codec, no timing.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { ExtensionError, prepareMessage } from "../../core/mod.ts";
import { createPair, type Pair } from "../support/core-pair.ts";
import { clientFactory, DeferredExtension, serverFactory } from "../support/deferred-extension.ts";

function deferredPair(): { pair: Pair; client: DeferredExtension; server: DeferredExtension } {
  const client = new DeferredExtension();
  const server = new DeferredExtension();
  const pair = createPair({ server: { extensions: [serverFactory(server)] }, client: { extensions: [clientFactory(client)] } });
  assert.equal(pair.client.readyState, 1);
  return { pair, client, server };
}

/** Lets every settled promise's continuations run (a timer fires after all microtasks). */
function settle(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

const bytes = (n: number) => new Uint8Array(n).fill(0x61);

describe("Connection.pendingBytes", () => {
  test("0 without extensions, and when the extension answers at once", () => {
    const plain = createPair();
    plain.client.sendText("x".repeat(5000));
    plain.client.sendBinary(bytes(3000));
    assert.equal(plain.client.pendingBytes, 0);
    const { pair, client } = deferredPair();
    client.sync = true;
    pair.client.sendBinary(bytes(3000));
    assert.equal(pair.client.pendingBytes, 0);
    assert.ok(pair.client.pollOutput().length > 0, "written at once");
  });

  test("counts a message from the send until its frames are in the output, and those queued behind it", async () => {
    const { pair, client } = deferredPair();
    pair.client.sendBinary(bytes(1000));
    assert.equal(pair.client.pendingBytes, 1000, "at once, before the extension finished");
    pair.client.sendText("é".repeat(500)); // 1000 bytes of UTF-8
    pair.client.sendBinary(bytes(300), { compress: false }); // not encoded, but queued behind
    pair.client.sendBinary(bytes(200), { fin: false }); // a fragment, queued behind too
    pair.client.sendBinary(bytes(100), { fin: true });
    assert.equal(pair.client.pendingBytes, 2600);
    assert.equal(pair.client.pollOutput().length, 0, "nothing written yet");

    client.waiting[1].resolve(); // the second finishes first: it still waits for the first
    await settle();
    assert.equal(pair.client.pendingBytes, 2600);
    assert.equal(pair.client.pollOutput().length, 0);

    client.waiting[0].resolve();
    await settle();
    assert.equal(pair.client.pendingBytes, 0, "all written");
    pair.pump();
    const received = pair.serverEvents.filter((e) => e.type === "text" || e.type === "binary");
    assert.equal(received.length, 4);
  });

  test("prepared messages queued behind a message being encoded count too (server role)", async () => {
    const { pair, server } = deferredPair();
    pair.server.sendBinary(bytes(4000));
    pair.server.sendPrepared(prepareMessage(bytes(700)));
    assert.equal(pair.server.pendingBytes, 4700);
    server.waiting[0].resolve();
    await settle();
    assert.equal(pair.server.pendingBytes, 0);
    pair.server.sendPrepared(prepareMessage(bytes(700)));
    assert.equal(pair.server.pendingBytes, 0, "nothing ahead of it: written at once");
  });

  test("a failed encoding stops counting its message; so does the end of the connection", async () => {
    const { pair, client } = deferredPair();
    pair.client.sendBinary(bytes(1000));
    pair.client.sendBinary(bytes(2000));
    client.waiting[0].reject(new ExtensionError(1011, "encoder broke"));
    await settle();
    assert.equal(pair.client.pendingBytes, 2000);
    const error = pair.client.pollEvents().find((e) => e.type === "error");
    assert.ok(error && error.type === "error" && error.code === 1011, JSON.stringify(error));

    const other = deferredPair();
    other.pair.client.sendBinary(bytes(5000));
    other.pair.client.sendBinary(bytes(5000));
    assert.equal(other.pair.client.pendingBytes, 10_000);
    other.pair.client.abort(); // disposes the extension, which rejects what it holds
    assert.ok(other.client.disposed);
    await settle();
    assert.equal(other.pair.client.pendingBytes, 0);
    assert.deepEqual(other.pair.client.pollOutput(), [], "nothing written after the abort");
  });
});
