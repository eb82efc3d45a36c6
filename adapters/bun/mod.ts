/** anyws on Bun: `serve` on Bun.listen, and the `WebSocket` client on Bun.connect. */
import { createServe } from "../shared/server.ts";
import { createWebSocketClass } from "../shared/websocket.ts";
import { bunRuntime } from "./runtime.ts";

export * from "../shared/mod.ts";
export { bunRuntime };

export const serve = createServe(bunRuntime);
export const WebSocket = createWebSocketClass(bunRuntime);
export type WebSocket = InstanceType<typeof WebSocket>;
