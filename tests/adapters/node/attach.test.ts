/** Node: WebSockets attached to an existing http server share its port with the web app. */
import { test } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { attach, WebSocket } from "../../../adapters/node/mod.ts";
import { until } from "../../support/net.ts";

test("an http server keeps serving pages while /ws upgrades to WebSocket", async () => {
  const app = http.createServer((request, response) => {
    response.end(`page ${request.url}`);
  });
  const wss = attach(app, { path: "/ws" }, {
    upgrade: (request) => ({ data: request.query }),
    message: (ws, data) => ws.send(`${ws.data}:${data}`),
  });
  await new Promise<void>((resolve) => app.listen(0, "127.0.0.1", resolve));
  const port = (app.address() as { port: number }).port;

  const page = await fetch(`http://127.0.0.1:${port}/index.html`);
  assert.equal(await page.text(), "page /index.html");

  const ws = new WebSocket(`ws://127.0.0.1:${port}/ws?room=3`);
  const messages: string[] = [];
  ws.onmessage = (e) => messages.push((e as MessageEvent).data);
  await until(() => ws.readyState === WebSocket.OPEN, "the upgrade");
  ws.send("hi");
  await until(() => messages.length === 1, "the echo");
  assert.equal(messages[0], "room=3:hi");
  assert.equal(wss.clients.size, 1);

  const closed = new Promise((resolve) => (ws.onclose = resolve));
  await wss.close();
  await closed;
  await new Promise<void>((resolve) => app.close(() => resolve()));
});
