/**
 * Interop (Deno only): our client × Deno's native server, `Deno.serve` + `Deno.upgradeWebSocket`,
 * over real loopback sockets. Deno's server socket has the standard API (no ping events); its
 * `idleTimeout` sends pings and closes the connection when they go unanswered, which is how the
 * test sees our client answer pings. Our ping to Deno comes from our core over the Deno adapter.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { delay, RawClient, until } from "../../support/net.ts";
import {
  clientCell,
  CLOSE_CODE,
  CLOSE_REASON,
  deferred,
  echoOrClose,
  openClient,
  type PeerRecord,
  peerRecord,
  withTimeout,
} from "../../support/interop.ts";

const peer = `Deno ${Deno.version.deno} Deno.serve + Deno.upgradeWebSocket`;

/** Deno's server, echoing; "close me" makes it close with CLOSE_CODE_2/CLOSE_REASON_2. */
async function startDenoServer(options: { idleTimeout?: number } = {}) {
  const seen: PeerRecord[] = [];
  const sockets: WebSocket[] = [];
  const listening = deferred<number>();
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    onListen: ({ port }) => listening.resolve(port),
  }, (request) => {
    const s = peerRecord(request.headers.get("sec-websocket-extensions") ?? "");
    const { socket, response } = Deno.upgradeWebSocket(request, { idleTimeout: options.idleTimeout });
    socket.binaryType = "arraybuffer";
    sockets.push(socket);
    seen.push(s);
    socket.onmessage = (e) => {
      echoOrClose(s, typeof e.data === "string" ? e.data : new Uint8Array(e.data as ArrayBuffer), socket);
    };
    socket.onclose = (e) => s.close({ code: e.code, reason: e.reason, wasClean: e.wasClean });
    socket.onerror = () => {};
    return response;
  });
  const port = await withTimeout(listening.promise, 5000, "Deno.serve to listen");
  return {
    port,
    seen,
    async close() {
      for (const socket of sockets) if (socket.readyState < 2) socket.close();
      await Promise.all(seen.map((s) => withTimeout(s.closed, 5000, "Deno's sockets to close")));
      await server.shutdown();
    },
  };
}

describe(`interop on deno: our client × ${peer}`, () => {
  test("text, binary, 1 MiB, our ping, closes both ways", async () => {
    const deno = await startDenoServer();
    try {
      await clientCell(peer, deno.port, { seen: deno.seen });
    } finally {
      await deno.close();
    }
  });

  test("Deno's keepalive pings (idleTimeout: 1 s) are answered: our client outlives 2.5 idle seconds, a deaf one does not", async () => {
    const deno = await startDenoServer({ idleTimeout: 1 });
    try {
      const client = await openClient(`ws://127.0.0.1:${deno.port}/`);
      // The control: a client that does not answer pings is dropped by Deno meanwhile.
      const deaf = await RawClient.connect(deno.port, { autoPong: false });
      await deaf.opened();
      await delay(2500);
      assert.ok(deaf.events.some((e) => e.type === "ping"), "Deno pinged");
      await deaf.whenClosed(5000);
      assert.equal(client.ws.readyState, 1, `still open (closed: ${JSON.stringify(await Promise.race([client.closed, null]))})`);
      client.ws.send("still here");
      await until(() => client.messages.length === 1, "the echo", 5000);
      client.ws.close(CLOSE_CODE, CLOSE_REASON);
      assert.equal((await withTimeout(client.closed, 5000, "close")).code, CLOSE_CODE);
    } finally {
      await deno.close();
    }
  });
});
