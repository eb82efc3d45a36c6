/** Node: WebSockets attached to an existing http server share its port with the web app. */
import { test } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import net from "node:net";
import type { Duplex } from "node:stream";
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

/** Sends a raw upgrade request for `path`; resolves with what came back once the socket closed, or after `ms`. */
function rawUpgrade(port: number, path: string, ms = 5000): Promise<{ response: string; closed: boolean }> {
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1");
    let response = "";
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ response, closed: false });
    }, ms);
    socket.setEncoding("latin1");
    socket.on("data", (text: string) => (response += text));
    socket.on("error", () => {});
    socket.on("close", () => {
      clearTimeout(timer);
      resolve({ response, closed: true });
    });
    socket.write(
      `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    );
  });
}

async function listen(app: http.Server): Promise<number> {
  await new Promise<void>((resolve) => app.listen(0, "127.0.0.1", resolve));
  return (app.address() as { port: number }).port;
}

const TEAPOT = "HTTP/1.1 418 I'm a teapot\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

test("attach() reads the path as the server does: /a/../ws is not /ws, and goes to the next upgrade listener", async () => {
  const app = http.createServer();
  let opened = 0;
  const wss = attach(app, { path: "/ws" }, { open: () => opened++ });
  const other: string[] = [];
  app.on("upgrade", (request: http.IncomingMessage, socket: Duplex) => {
    if (request.url === "/ws") return; // anyws's
    other.push(request.url ?? "");
    socket.end(TEAPOT);
  });
  const port = await listen(app);
  const result = await rawUpgrade(port, "/a/../ws");
  assert.deepEqual(other, ["/a/../ws"]);
  assert.equal(result.response, TEAPOT); // anyws wrote nothing on a socket that is not its own
  assert.equal(result.closed, true);
  const ok = await rawUpgrade(port, "/ws", 500);
  assert.match(ok.response, /^HTTP\/1\.1 101 /);
  assert.equal(opened, 1);
  await wss.close({ timeout: 100 });
  await new Promise<void>((resolve) => app.close(() => resolve()));
});

test("attach(): an upgrade for another path, with no other listener to take it, is answered and closed", async () => {
  const app = http.createServer();
  const wss = attach(app, { path: "/ws" }, {});
  const port = await listen(app);
  for (const path of ["/elsewhere", "/a/../ws", "/ws/"]) {
    const result = await rawUpgrade(port, path);
    assert.equal(result.closed, true, `${path}: the socket was left hanging`);
    assert.match(result.response, /^HTTP\/1\.1 404 /, path);
  }
  await wss.close();
  await new Promise<void>((resolve) => app.close(() => resolve()));
});

test("attach() twice on one server: each path reaches its own, another path is answered once", async () => {
  const app = http.createServer();
  const seen: string[] = [];
  const a = attach(app, { path: "/a" }, { open: () => seen.push("a") });
  const b = attach(app, { path: "/b" }, { open: () => seen.push("b") });
  const port = await listen(app);
  assert.match((await rawUpgrade(port, "/b", 500)).response, /^HTTP\/1\.1 101 /);
  assert.match((await rawUpgrade(port, "/a", 500)).response, /^HTTP\/1\.1 101 /);
  assert.deepEqual(seen, ["b", "a"]);
  const other = await rawUpgrade(port, "/c");
  assert.equal(other.closed, true);
  assert.equal(other.response.match(/HTTP\/1\.1 /g)?.length, 1, other.response);
  assert.match(other.response, /^HTTP\/1\.1 404 /);
  await Promise.all([a.close({ timeout: 100 }), b.close({ timeout: 100 })]);
  await new Promise<void>((resolve) => app.close(() => resolve()));
});
