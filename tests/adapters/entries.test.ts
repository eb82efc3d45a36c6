/** Every entry exports one `WebSocketServer` class: a server made through one entry is an instance of the class of every other. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { runtimeName, WebSocketServer as AutoServer } from "../../adapters/auto.ts";
import { WebSocketServer as StreamsServer } from "../../adapters/streams/mod.ts";

test(`on ${runtimeName}: the runtime's entry and the streams entry share the server class`, async () => {
  const streams = new StreamsServer({}, {});
  const auto = new AutoServer({}, {});
  assert.ok(streams instanceof AutoServer, "a streams server is an instance of the runtime entry's class");
  assert.ok(auto instanceof StreamsServer, "and the other way round");
  await Promise.all([streams.close(), auto.close()]);
});
