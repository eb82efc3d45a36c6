import { checkOrigin, serve, WebSocket } from "anyws";

const server = await serve<{ user: string }>({ port: 0, path: "/ws" }, {
  upgrade(request) {      // method, path, query, headers, origin, protocols, remoteAddress...
    return checkOrigin(request, ["https://app.example"])            // 403 for other origins
      ?? { protocol: "chat.v2", headers: { "X-Server": "anyws" }, data: { user: request.query } };
    // or reject: return { accept: false, status: 401, body: "who are you" };
  },
  message(ws, data) {
    const result = ws.send(`${ws.data.user}: ${data}`);  // bytes written, -1 queued, 0 dropped
    if (result === 0) console.log("dropped: the client reads too slowly");
  },
  drain(ws) { /* the send buffer emptied */ },
});
const url = `ws://127.0.0.1:${server.port}/ws?ada`;

// A page from another site is refused before any WebSocket exists.
const other = new WebSocket(url, [], { origin: "https://other.example" });
other.onerror = (event) => console.log(event.message);
await new Promise((resolve) => (other.onclose = resolve));

const ws = new WebSocket(url, ["chat.v2"], { origin: "https://app.example" });
ws.onopen = () => { console.log(`open, protocol ${ws.protocol}`); ws.send("hello"); };
ws.onmessage = async (event) => {
  console.log(`received: ${event.data}`);
  await server.close({ code: 1001, timeout: 5000 }); // graceful: close all, then terminate the rest
};
ws.onclose = (event) => console.log(`closed: ${event.code} ${event.reason}`);
