import { readFileSync } from "node:fs";
import { serve, WebSocket } from "anyws";

// A TLS server that wants a token (cert.pem, key.pem, ca.pem: see "Deno" above).
const tls = { cert: readFileSync("cert.pem", "utf8"), key: readFileSync("key.pem", "utf8") };
const server = await serve({ port: 0, tls }, {
  upgrade(request) {
    const token = request.headers.get("authorization");
    if (token !== "Bearer my-token") return { accept: false, status: 401 };
  },
  message(ws, data) { ws.send(`echo: ${data}`); },
});

const ws = new WebSocket(`wss://localhost:${server.port}/chat`, ["chat.v2"], {
  headers: { Authorization: "Bearer my-token" },
  tls: { ca: readFileSync("ca.pem", "utf8") },   // trusted besides the system's CAs
  connectTimeout: 5000,
});
ws.onopen = () => { console.log(`open: protocol ${ws.protocol}`); ws.send("hi"); };
ws.onmessage = (event) => { console.log(event.data); ws.close(1000, "bye"); };
ws.onclose = async (event) => {
  console.log(`closed: ${event.code}, clean: ${event.wasClean}`);
  await server.close();
};
