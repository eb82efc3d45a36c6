/**
 * An echo server and a client, in one file that runs unchanged on every runtime:
 *   deno run -A examples/echo.ts   |   bun examples/echo.ts   |   node dist/examples/echo.js
 */
import { runtimeName, serve, WebSocket } from "../adapters/auto.ts";

const server = await serve({ port: 0, hostname: "127.0.0.1" }, {
  message(ws, data) {
    ws.send(data); // echo
  },
});
console.log(`echo server on ${runtimeName}, port ${server.port}`);

const ws = new WebSocket(`ws://127.0.0.1:${server.port}/`);
ws.onopen = () => ws.send("hello from anyws");
ws.onmessage = (event) => {
  console.log(`received: ${event.data}`);
  ws.close(1000, "done");
};
ws.onclose = async (event) => {
  console.log(`closed: ${event.code}`);
  await server.close();
};
