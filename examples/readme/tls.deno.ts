// deno run --allow-net --allow-read tls.deno.ts
import { serve, WebSocket } from "@anyws/anyws/deno";

const server = await serve({
  port: 0,
  tls: { cert: Deno.readTextFileSync("cert.pem"), key: Deno.readTextFileSync("key.pem") },
}, {
  message(ws, data) { ws.send(data); },   // echo
});

const ws = new WebSocket(`wss://localhost:${server.port}/`, [], {
  tls: { ca: Deno.readTextFileSync("ca.pem") },   // trust our own certificate
});
ws.onopen = () => ws.send("hello over TLS");
ws.onmessage = (event) => { console.log(`echo: ${event.data}`); ws.close(1000, "done"); };
ws.onclose = async (event) => { console.log(`closed: ${event.code}`); await server.close(); };
