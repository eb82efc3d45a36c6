/**
 * A worker thread for tests/backplane/broadcast-channel.test.ts: a BroadcastChannel driver that
 * sends back, on channel "back", every envelope it receives on channel "there", and says
 * "ready" on a plain BroadcastChannel once subscribed.
 */
import { broadcastChannelDriver } from "../../adapters/backplane/broadcast-channel.ts";

const driver = broadcastChannelDriver({ prefix: "anyws.test:" });
await driver.start({
  message: (_channel, envelope) => void driver.publish("back", envelope),
  error: (stage, error) => console.error("worker driver error", stage, error),
  up: () => {},
  down: () => {},
});
await driver.subscribe("there");
const ready = new BroadcastChannel("anyws.test.ready");
ready.postMessage("ready");
ready.close();
