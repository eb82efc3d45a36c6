/** examples/embed-core.ts (the README's core example) serves a real client on this runtime. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import process from "node:process";
import { runtimeName, WebSocket } from "../../adapters/auto.ts";
import { until } from "../support/net.ts";

test(`the core embedded in a node:net server answers a WebSocket client on ${runtimeName}`, async () => {
  const compiled = import.meta.url.endsWith(".js");
  const example = fileURLToPath(new URL(`../../examples/embed-core.${compiled ? "js" : "ts"}`, import.meta.url));
  const child = spawn(process.execPath, runtimeName === "deno" ? ["run", "-A", example] : [example]);
  let output = "";
  child.stdout.on("data", (chunk) => (output += chunk));
  try {
    await until(() => /listening on \d+/.test(output), "the example to listen", 15_000);
    const port = Number(/listening on (\d+)/.exec(output)![1]);
    const ws = new WebSocket(`ws://127.0.0.1:${port}`);
    const messages: string[] = [];
    ws.onmessage = (e) => messages.push((e as MessageEvent).data);
    ws.onopen = () => ws.send("hi");
    await until(() => messages.length === 1, "the echo");
    assert.equal(messages[0], "echo: hi");
    const closed = new Promise<CloseEvent>((resolve) => (ws.onclose = (e) => resolve(e as CloseEvent)));
    ws.close(1000);
    assert.equal((await closed).wasClean, true);
    await until(() => output.includes("closed 1000"), "the server's close event");
  } finally {
    child.kill(); // by its pid
  }
});
