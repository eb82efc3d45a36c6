import { serve, WebSocket } from "anyws";

// A chat room: every message a client sends goes to the other clients in the room.
const server = await serve({ port: 0 }, {   // port 0: any free port
  open(ws) { ws.subscribe("lobby"); },
  message(ws, data) { ws.publish("lobby", data); },   // to every other subscriber
  close(ws, code) { console.log(`server: a client left (${code})`); },
});

const url = `ws://127.0.0.1:${server.port}/`;
const alice = new WebSocket(url);
const bob = new WebSocket(url);
const opened = (ws: WebSocket) => new Promise((resolve) => (ws.onopen = resolve));
await Promise.all([opened(alice), opened(bob)]);

bob.onmessage = async (event) => {
  console.log(`bob received: ${event.data}`);
  await server.close();   // closes both clients (1001), then the process has nothing left to do
};
alice.send("hello from alice");
