import process from "node:process";
import { createClient } from "redis";
import { serve, WebSocket } from "anyws";
import { redisBackplane } from "anyws/backplane";

// Two servers on one Redis: in production, two processes or two machines.
const redis = [createClient({ url: process.env.REDIS_URL }), createClient({ url: process.env.REDIS_URL })];
const servers = await Promise.all(redis.map((client) => serve({ port: 0, backplane: {
  driver: redisBackplane(client),
  gap: (origin, from, to) => console.log(`missed messages ${from} to ${to} from ${origin}`),
} }, {
  open(ws) { ws.subscribe("room"); },
  message(ws, data) { ws.publish("room", data); },   // here, and in every process
})));
await Promise.all(servers.map((server) => server.backplane!.ready));

const [alice, bob] = servers.map((server) => new WebSocket(`ws://127.0.0.1:${server.port}/`));
await Promise.all([alice, bob].map((ws) => new Promise((resolve) => (ws!.onopen = resolve))));
bob!.onmessage = async (event) => {
  console.log(`bob, on the other server: ${event.data}`);
  console.log(servers.map((s) => `relayed ${s.backplane!.stats().relayed}, received ${s.backplane!.stats().received}`).join("; "));
  await Promise.all(servers.map((server) => server.close()));
  await Promise.all(redis.map((client) => client.close()));
};
alice!.send("hello from alice");
