/** The anyws echo server, as a user writes it: the same file on Node, Deno and Bun. */
import { runtimeName, serve } from "../../adapters/auto.ts";
import type { EchoServer } from "./common.ts";

export async function start(options: { hostname: string; port: number }): Promise<EchoServer> {
  const server = await serve(options, {
    message(ws, data) {
      ws.send(data); // a string back as text, bytes as binary
    },
  });
  return { port: server.port, name: `anyws (${runtimeName} adapter)` };
}
