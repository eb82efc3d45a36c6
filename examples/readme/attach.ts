import http from "node:http";
import { attach, WebSocket } from "anyws/node";

const app = http.createServer((req, res) => res.end("a web page"));
const wss = attach(app, { path: "/ws" }, { message: (ws, data) => ws.send(data) });
app.listen(0, "127.0.0.1", async () => {
  const { port } = app.address() as { port: number };
  console.log(`GET / -> ${await (await fetch(`http://127.0.0.1:${port}/`)).text()}`);
  const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);   // the same port
  ws.onopen = () => ws.send("hello");
  ws.onmessage = (event) => { console.log(`/ws -> ${event.data}`); ws.close(); };
  ws.onclose = async () => { await wss.close(); app.close(); };
});
