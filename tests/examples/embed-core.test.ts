/**
 * examples/readme/embed-core.ts (the README's core example) serves real clients on this runtime,
 * and survives the clients a real server meets: a text and a close in one read, a TCP reset.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { connect, type Socket } from "node:net";
import { fileURLToPath } from "node:url";
import process from "node:process";
import { runtimeName, WebSocket } from "../../adapters/auto.ts";
import { ClientConnection, type ConnectionEvent } from "../../core/mod.ts";
import { concatBytes } from "../../core/bytes.ts";
import { delay, until } from "../support/net.ts";

/** A client on a plain node:net socket, so the test chooses how bytes are split into writes. */
async function rawClient(port: number) {
  const connection = new ClientConnection({ host: `127.0.0.1:${port}` });
  const events: ConnectionEvent[] = [];
  const socket: Socket = connect(port, "127.0.0.1");
  let ended = false;
  socket.on("data", (bytes: Buffer) => {
    connection.receive(new Uint8Array(bytes));
    // Until none are left: the server's close frame, read with its echo, is reported after it.
    for (let polled = connection.pollEvents(); polled.length !== 0; polled = connection.pollEvents()) events.push(...polled);
  });
  socket.on("end", () => (ended = true));
  socket.on("error", () => {});
  await new Promise((resolve) => socket.once("connect", resolve));
  /** Writes everything the connection has to send as one write. */
  const writeAll = () => socket.write(concatBytes(connection.pollOutput()));
  writeAll();
  await until(() => events.some((e) => e.type === "open"), "the 101 response");
  return { connection, events, socket, writeAll, ended: () => ended };
}

describe(`the core embedded in a node:net server, on ${runtimeName}`, () => {
  let child: ChildProcess;
  let output = "";
  let port = 0;

  before(async () => {
    const compiled = import.meta.url.endsWith(".js"); // Node runs the tsc output in dist/
    const example = fileURLToPath(new URL(`../../examples/readme/embed-core.${compiled ? "js" : "ts"}`, import.meta.url));
    child = spawn(process.execPath, runtimeName === "deno" ? ["run", "-A", example] : [example]);
    child.stdout!.on("data", (chunk) => (output += chunk));
    child.stderr!.on("data", (chunk) => (output += chunk));
    await until(() => /listening on port \d+/.test(output), "the example to listen", 15_000);
    port = Number(/listening on port (\d+)/.exec(output)![1]);
  });

  after(() => {
    child.kill(); // by its pid
  });

  /** A WHATWG client's echo and clean close: the server is alive and serving. */
  async function echoes(text: string): Promise<void> {
    assert.equal(child.exitCode, null, `the example exited:\n${output}`);
    const ws = new WebSocket(`ws://127.0.0.1:${port}`);
    const messages: string[] = [];
    ws.onmessage = (event) => messages.push(event.data);
    ws.onopen = () => ws.send(text);
    await until(() => messages.length === 1, "the echo");
    assert.equal(messages[0], `echo: ${text}`);
    const closed = new Promise<CloseEvent>((resolve) => (ws.onclose = (event) => resolve(event)));
    ws.close(1000);
    assert.equal((await closed).wasClean, true);
  }

  test("answers a WebSocket client: echo, then a clean close", async () => {
    await echoes("hi");
    await until(() => output.includes("closed 1000"), "the server's close event");
  });

  test("a text and a close in one read: the text is echoed, then the close is answered, the server lives on", async () => {
    const client = await rawClient(port);
    client.connection.sendText("last words");
    client.connection.close(1000, "bye");
    client.writeAll();
    await until(() => client.events.some((e) => e.type === "close"), "the server's close frame");
    await until(client.ended, "the server to end TCP");
    assert.deepEqual(
      client.events.filter((e) => e.type !== "open").map((e) => e.type === "close" ? `close ${e.code}` : e.type === "text" ? e.data : e.type),
      ["echo: last words", "close 1000"],
    );
    client.socket.destroy();
    await echoes("still there");
  });

  test("a TCP reset ends that connection only", async () => {
    const client = await rawClient(port);
    client.connection.sendText("about to vanish");
    client.writeAll();
    await until(() => client.events.some((e) => e.type === "text"), "the echo");
    // Unread bytes when a socket closes make the kernel send a reset (RST) instead of a FIN.
    client.socket.pause();
    client.connection.sendText("unanswered");
    client.writeAll();
    await delay(100);
    client.socket.resetAndDestroy();
    await delay(100);
    await echoes("after the reset");
  });

  test("a client that connects and sends nothing is answered 408 and disconnected at the handshake deadline", async () => {
    const socket = connect(port, "127.0.0.1");
    let received = "";
    let closed = false;
    socket.on("data", (bytes: Buffer) => (received += bytes.toString("latin1")));
    socket.on("close", () => (closed = true));
    socket.on("error", () => {});
    await new Promise((resolve) => socket.once("connect", resolve));
    await until(() => closed, "the server to close the silent connection at its 5 s handshake deadline", 15_000);
    assert.match(received, /^HTTP\/1\.1 408 /);
    await echoes("after the silent client");
  });
});
