/**
 * The client's events are typed as a browser's are: a handler reads `event.data`, `event.code`,
 * `event.reason` without a cast. tsc (Node's and Bun's types) and deno check compile this file,
 * so a regression in the types fails the type-check step; each `@ts-expect-error` line proves a
 * wrong use is still rejected. The test also runs it, so the types describe what is dispatched.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { CloseEvent, ErrorEvent, runtimeName, serve, WebSocket } from "../../adapters/auto.ts";

test(`the WebSocket client's events have the types they are dispatched with, on ${runtimeName}`, async () => {
  const server = await serve({ port: 0, hostname: "127.0.0.1" }, {
    message(ws, data) {
      ws.send(`echo ${data}`);
      ws.close(4001, "bye");
    },
  });
  try {
    const ws = new WebSocket(`ws://127.0.0.1:${server.port}/`);
    const seen: string[] = [];
    const done = new Promise<void>((resolve) => {
      ws.onopen = (event) => {
        const type: string = event.type;
        seen.push(type);
        ws.send("hi");
      };
      ws.onmessage = (event) => {
        const data: string = event.data; // MessageEvent: data is the message
        seen.push(`message ${data}`);
      };
      ws.onerror = (event) => {
        const message: string = event.message;
        const error: Error = event.error;
        seen.push(`error ${message} ${error.name}`);
      };
      ws.onclose = (event) => {
        const code: number = event.code;
        const reason: string = event.reason;
        const wasClean: boolean = event.wasClean;
        seen.push(`onclose ${code} ${reason} ${wasClean}`);
        assert.ok(event instanceof CloseEvent);
        resolve();
      };
    });
    ws.addEventListener("message", (event) => {
      assert.ok(event instanceof MessageEvent);
      seen.push(`listener ${event.data.length}`);
    });
    ws.addEventListener("close", function (event) {
      const socket: WebSocket = this; // `this` is the WebSocket, as in lib.dom
      seen.push(`listener close ${event.code} ${socket.readyState}`);
    });
    ws.addEventListener("error", (event: ErrorEvent) => seen.push(`listener error ${event.message}`));
    ws.addEventListener("open", (event: Event) => seen.push(`listener ${event.type}`));
    // A handler written against the global types (as for a browser's WebSocket) is accepted.
    const onMessage = (event: MessageEvent) => event.data;
    ws.addEventListener("message", onMessage);
    ws.removeEventListener("message", onMessage);
    // Any other event type falls back to EventTarget's listener.
    ws.addEventListener("custom", (event) => seen.push(event.type));

    await done;
    assert.deepEqual(seen, [
      "open",
      "listener open",
      "message echo hi",
      "listener 7",
      "onclose 4001 bye true",
      "listener close 4001 3",
    ]);
  } finally {
    await server.close();
  }
});

/** Wrong uses, each rejected by the type checker (never called). */
export function rejectedUses(ws: WebSocket): void {
  ws.onmessage = ws.onmessage; // (allowed: the getter returns what the setter takes)
  // @ts-expect-error an open event has no data
  ws.onopen = (event) => event.data;
  // @ts-expect-error a message event has no close code
  ws.onmessage = (event) => event.code;
  // @ts-expect-error a close event has no data
  ws.onclose = (event) => event.data;
  // @ts-expect-error a close code is a number
  ws.addEventListener("close", (event) => event.code.toUpperCase());
  // @ts-expect-error a close listener does not get a MessageEvent
  ws.addEventListener("close", (event: MessageEvent) => event.data);
  // @ts-expect-error not an event handler
  ws.onmessage = "hello";
}
