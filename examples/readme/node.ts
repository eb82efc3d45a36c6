import { serve, WebSocket } from "anyws/node";

const server = await serve({ port: 0 }, {
  message(ws, data) { ws.send(data); },   // echo
});
const ws = new WebSocket(`ws://127.0.0.1:${server.port}/`);
ws.onopen = () => ws.send("hello");
ws.onmessage = (event) => { console.log(`echo: ${event.data}`); ws.close(1000, "done"); };
ws.onclose = (event) => { console.log(`closed: ${event.code}`); server.close(); };
