/**
 * The reference echo server on Deno: `Deno.serve` + `Deno.upgradeWebSocket` (the WebSocket is
 * Deno's native one, in Rust), binary messages as ArrayBuffers (`binaryType = "arraybuffer"`,
 * what a user who cares for speed sets; Blobs would cost more), defaults otherwise.
 */
import { serveWebSockets } from "../shared/serve.deno.ts";
import type { EchoServer } from "./common.ts";

export function start(options: { hostname: string; port: number }): Promise<EchoServer> {
  return serveWebSockets(options, (socket) => {
    socket.binaryType = "arraybuffer";
    socket.onmessage = (event) => socket.send(event.data);
    socket.onerror = () => {}; // a client cut off mid-frame
  });
}
