import { serve, WebSocket } from "anyws/bun";

const server = await serve({ port: 0, perMessageDeflate: true }, {
  open(ws) { ws.subscribe("room"); },
  message(ws, data) { ws.publish("room", data); },   // to every other subscriber
});
const url = `ws://127.0.0.1:${server.port}/`;
const sender = new WebSocket(url);
const receiver = new WebSocket(url);
const opened = (ws: WebSocket) => new Promise((resolve) => (ws.onopen = resolve));
await Promise.all([opened(sender), opened(receiver)]);
console.log(`compression: ${receiver.extensions}`);

receiver.onmessage = async (event) => {
  console.log(`received ${event.data.length} characters`);
  await server.close();
};
sender.send("x".repeat(1000));   // sent compressed: a few bytes on the wire
