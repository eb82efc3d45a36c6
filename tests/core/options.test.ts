/**
 * A connection's options (core/options.ts): resolved with their defaults, checked, and, with
 * `connectionConfig()`, resolved once and shared by many connections, each with its own clock.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { type ConnectionEvent, connectionConfig, ServerConnection, WebSocketError } from "../../core/mod.ts";
import { createPair } from "../support/core-pair.ts";
import { utf8 } from "../support/bytes.ts";

const types = (events: readonly ConnectionEvent[]) => events.map((e) => (e.type === "error" ? `error ${e.code}` : e.type));

describe("connectionConfig", () => {
  test("fills in every default, and is frozen", () => {
    const config = connectionConfig({ maxMessageSize: 10 });
    assert.equal(config.maxMessageSize, 10);
    assert.equal(config.maxFragments, 100_000);
    assert.equal(config.handshakeTimeout, 10_000);
    assert.equal(config.autoPong, true);
    assert.equal(config.fragmentSize, Infinity);
    assert.equal(typeof config.random, "function");
    assert.ok(Object.isFrozen(config));
  });

  test("a bad option is refused: by connectionConfig(), and by a connection given it directly", () => {
    assert.throws(() => connectionConfig({ fragmentSize: 0 }), (error: unknown) => error instanceof WebSocketError && error.code === "ERR_INVALID_ARGUMENT");
    assert.throws(() => new ServerConnection({ fragmentSize: 0 }), (error: unknown) => error instanceof WebSocketError && error.code === "ERR_INVALID_ARGUMENT");
  });

  test("connections made from one config each apply its limits", () => {
    const config = connectionConfig({ maxMessageSize: 10 });
    for (let i = 0; i < 2; i++) {
      const pair = createPair({ server: { config } });
      pair.client.sendText("0123456789");
      pair.client.sendText("0123456789a");
      pair.pump();
      assert.deepEqual(types(pair.serverEvents), ["upgrade", "open", "text", "error 1009"]);
    }
  });

  test("each connection made from one config keeps its own clock", () => {
    const config = connectionConfig({ handshakeTimeout: 100 });
    const early = new ServerConnection({ config, now: 1000 });
    const late = new ServerConnection({ config, now: 5000 });
    assert.equal(early.deadline, 1100);
    assert.equal(late.deadline, 5100);
  });

  test("its trace hook is told which connection each record is from", () => {
    const seen: unknown[] = [];
    const config = connectionConfig({ trace: (record, connection) => void seen.push([record.type, connection]) });
    const a = new ServerConnection({ config });
    const b = new ServerConnection({ config });
    a.receive(utf8("GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"));
    a.pollEvents();
    a.accept();
    b.abort();
    assert.deepEqual(seen, [["state", a], ["state", b]]);
  });
});
