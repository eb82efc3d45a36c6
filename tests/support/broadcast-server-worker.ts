/**
 * A worker thread for tests/backplane/broadcast-channel.test.ts: a WebSocket server whose
 * backplane is a BroadcastChannel driver; once up, it posts `{ who, port }` on the
 * BroadcastChannel "anyws.test.servers", under a name of its own.
 */
import { serve } from "../../adapters/auto.ts";
import { broadcastChannelDriver } from "../../adapters/backplane/broadcast-channel.ts";
import { topicHandlers } from "./topic-server.ts";

const who = `thread-${crypto.randomUUID().slice(0, 8)}`;
const server = await serve(
  { port: 0, hostname: "127.0.0.1", backplane: { driver: broadcastChannelDriver({ prefix: "anyws.test.e2e:" }) } },
  topicHandlers(who),
);
await server.backplane!.ready;
const announce = new BroadcastChannel("anyws.test.servers");
announce.postMessage({ who, port: server.port });
announce.close();
