/**
 * Hostile clients against an echo server that runs in a child process on the same runtime, so
 * that its memory (RSS, after a garbage collection) is measured alone: a ping flood, a pong
 * flood, a close flood, and clients that never read what their text or binary messages are
 * echoed with. Nothing the server queues on their behalf may grow without bound, and the
 * configured policy must happen: with `closeOnBackpressureLimit` a 1008 close, otherwise the
 * server stops reading from that client until it reads again, losing nothing it accepted.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { runtimeName, type ServerOptions } from "../../adapters/auto.ts";
import { encodeFrame, Opcode } from "../../core/mod.ts";
import { concatBytes } from "../../core/bytes.ts";
import { Child } from "../support/child.ts";
import { parseFrames } from "../support/frames.ts";
import { delay, RawClient, until } from "../support/net.ts";

const MB = 1024 * 1024;
const KEY = new Uint8Array([0x5a, 0x17, 0xc3, 0x88]);

/** A frame as a client writes it: masked (RFC 6455 §5.3). */
function clientFrame(opcode: number, payload: Uint8Array): Uint8Array {
  return concatBytes(encodeFrame(opcode, payload, true, 0, KEY));
}

interface Stats {
  rss: number;
  received: number;
  accepted: number;
  dropped: number;
  pongs: number;
}

/** The echo server of tests/support/flood-server.ts, in a child process on this runtime. */
async function startServer(options: ServerOptions) {
  const compiled = import.meta.url.endsWith(".js"); // Node runs the tsc output in dist/
  const script = fileURLToPath(new URL(`../support/flood-server.${compiled ? "js" : "ts"}`, import.meta.url));
  const args =
    runtimeName === "deno"
      ? ["run", "-A", "--v8-flags=--expose-gc", script]
      : runtimeName === "node"
        ? ["--expose-gc", script]
        : [script];
  const child = new Child(process.execPath, args, { env: { ANYWS_FLOOD_OPTIONS: JSON.stringify(options) } });
  const messages = () => child.lines.filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as { type: string } & Record<string, number>);
  try {
    await until(() => messages().some((m) => m.type === "listening") || child.exit !== null, "the server to listen", 20_000);
  } catch (error) {
    await child.kill();
    throw new Error(`${(error as Error).message}\n${child.describe()}`);
  }
  const listening = messages().find((m) => m.type === "listening");
  if (!listening) throw new Error(`the server did not start\n${child.describe()}`);
  return {
    child,
    port: listening.port,
    events: (type: string) => messages().filter((m) => m.type === type),
    async stats(): Promise<Stats> {
      const seen = messages().filter((m) => m.type === "stats").length;
      child.process.stdin!.write("stats\n");
      await until(() => messages().filter((m) => m.type === "stats").length > seen, "the server's stats", 20_000);
      return messages().filter((m) => m.type === "stats")[seen] as unknown as Stats;
    },
    async stop(): Promise<void> {
      child.process.stdin!.end();
      await child.kill(5000);
    },
  };
}

type Server = Awaited<ReturnType<typeof startServer>>;

/** Runs `body` against a fresh server and client; both are gone afterwards, pass or fail. */
async function withServer(options: ServerOptions, body: (server: Server, client: RawClient) => Promise<void>): Promise<void> {
  const server = await startServer(options);
  let client: RawClient | null = null;
  try {
    client = await RawClient.connect(server.port);
    await client.opened();
    await until(() => server.events("open").length === 1, "the server's open");
    await body(server, client);
  } catch (error) {
    throw new Error(`${(error as Error).message}\n${server.child.describe()}`, { cause: error });
  } finally {
    if (client && !client.closed) client.destroy();
    await server.stop();
  }
}

/**
 * Writes batches from `next` until `total` bytes, the server stops taking them (our own buffer
 * stays full for `stallMs`), or the connection ends. Keeps our own buffer under a few MB.
 */
async function flood(client: RawClient, next: () => Uint8Array, total: number, stallMs = 1500): Promise<{ written: number; stalled: boolean }> {
  const transport = client.transport;
  let written = 0;
  while (written < total) {
    if (client.ended || client.closed) return { written, stalled: false };
    const batch = next();
    transport.write([batch]);
    written += batch.length;
    if (transport.bufferedAmount <= 4 * MB) continue;
    let low = transport.bufferedAmount;
    let since = Date.now();
    while (transport.bufferedAmount > MB) {
      if (client.ended || client.closed) return { written, stalled: false };
      await delay(5);
      if (transport.bufferedAmount < low) {
        low = transport.bufferedAmount;
        since = Date.now();
      } else if (Date.now() - since > stallMs) {
        return { written, stalled: true };
      }
    }
  }
  return { written, stalled: false };
}

/** Batches of the same frame, `count` frames each. */
function repeated(frame: Uint8Array, count: number): () => Uint8Array {
  const batch = concatBytes(Array.from({ length: count }, () => frame));
  return () => batch;
}

const mb = (bytes: number) => `${(bytes / MB).toFixed(1)} MB`;

/** Sends `text` through the client's own connection and waits for the server to echo it. */
async function echoed(client: RawClient, text: string): Promise<void> {
  client.connection.sendText(text);
  client.pump();
  await until(() => client.events.some((e) => e.type === "text" && e.data === text), `the echo of "${text}"`, 20_000);
}

/**
 * How much the server's RSS may grow during a flood. Every flood below would make an unbounded
 * server queue several times this much: 2 M pongs of 127 bytes (254 MB), or all the echoes of
 * 256 MB of messages.
 */
const RSS_BOUND = 128 * MB;

describe(`hostile clients against an echo server on ${runtimeName}`, () => {
  for (const closeOnBackpressureLimit of [false, true]) {
    test(`a ping flood from a client that does not read: a few pongs per read, bounded memory${closeOnBackpressureLimit ? " (closeOnBackpressureLimit)" : ""}`, async () => {
      await withServer({ closeOnBackpressureLimit }, async (server, client) => {
        client.transport.pause();
        const before = await server.stats();
        const PINGS = 256 * 8192;
        const ping = clientFrame(Opcode.PING, new Uint8Array(125).fill(0x78));
        const result = await flood(client, repeated(ping, 8192), PINGS * ping.length);
        const pings = result.written / ping.length + 1;
        const last = new TextEncoder().encode("the last ping");
        client.write(clientFrame(Opcode.PING, last));
        const after = await server.stats();
        const growth = after.rss - before.rss;
        const paused = result.stalled ? " (the server stopped reading at backpressureLimit)" : "";
        console.log(`ping flood on ${runtimeName}: ${mb(result.written)} of pings${paused}, server RSS ${mb(before.rss)} -> ${mb(after.rss)}`);
        assert.ok(growth < RSS_BOUND, `server RSS grew by ${mb(growth)}`);
        // Taken whole; or, had reads been small enough for the pongs to reach backpressureLimit
        // first, the server stopped reading, and the policy applies.
        assert.ok(result.written === PINGS * ping.length || result.stalled, `${mb(result.written)} taken`);

        client.transport.resume();
        if (closeOnBackpressureLimit && result.stalled) {
          await until(() => client.events.some((e) => e.type === "close"), "the server's close frame", 20_000);
          const close = client.events.find((e) => e.type === "close");
          assert.ok(close?.type === "close" && close.code === 1008, JSON.stringify(close));
          return;
        }
        await echoed(client, "after the flood");
        const pongs = client.events.filter((e) => e.type === "pong");
        console.log(`  then: ${pongs.length} pongs received for ${pings} pings`);
        assert.ok(pongs.length >= 1 && pongs.length < pings / 4, `${pongs.length} pongs for ${pings} pings`);
        const lastPong = pongs.at(-1)!;
        assert.ok(lastPong.type === "pong");
        assert.equal(new TextDecoder().decode(lastPong.data), "the last ping", "the last pong answers the last ping");
        assert.deepEqual(server.events("close"), [], "the connection is still open");
      });
    });
  }

  test("a pong flood from a client that does not read: nothing is written or kept", async () => {
    await withServer({}, async (server, client) => {
      client.transport.pause();
      const before = await server.stats();
      const PONGS = 256 * 8192;
      const pong = clientFrame(Opcode.PONG, new Uint8Array(125).fill(0x79));
      const result = await flood(client, repeated(pong, 8192), PONGS * pong.length);
      assert.equal(result.written, PONGS * pong.length, "every pong was taken");
      let after = await server.stats();
      for (let i = 0; i < 100 && after.pongs < PONGS; i++) after = await server.stats();
      const growth = after.rss - before.rss;
      console.log(`pong flood on ${runtimeName}: ${mb(result.written)} of pongs, server RSS ${mb(before.rss)} -> ${mb(after.rss)}`);
      assert.equal(after.pongs, PONGS, "the server read every pong");
      assert.ok(growth < RSS_BOUND, `server RSS grew by ${mb(growth)}`);
      client.transport.resume();
      await echoed(client, "after the flood");
      assert.deepEqual(client.events.map((e) => e.type), ["open", "text"], "nothing but the echo was written");
    });
  });

  test("a close flood: one close frame in answer, bounded memory", async () => {
    await withServer({}, async (server, client) => {
      client.parse = false; // count the frames the server writes, not what our connection makes of them
      client.received.length = 0;
      const before = await server.stats();
      const close = clientFrame(Opcode.CLOSE, Uint8Array.of(0x03, 0xe8));
      const result = await flood(client, repeated(close, 16384), 64 * MB);
      await until(() => server.events("close").length === 1, "the server's close handler");
      const after = await server.stats();
      const growth = after.rss - before.rss;
      console.log(`close flood on ${runtimeName}: ${mb(result.written)} of close frames, server RSS ${mb(before.rss)} -> ${mb(after.rss)}`);
      assert.ok(growth < RSS_BOUND, `server RSS grew by ${mb(growth)}`);
      await until(() => client.ended || client.closed, "the server to end the connection");
      const frames = parseFrames(concatBytes(client.received), false);
      assert.deepEqual(frames.map((f) => [f.opcode, (f.payload[0] << 8) | f.payload[1]]), [[Opcode.CLOSE, 1000]], "one close frame");
      assert.deepEqual(server.events("close").map((e) => e.code), [1000]);
    });
  });

  test("a client that never reads again, with closeOnBackpressureLimit: the server gives up on it and lets go of the connection", async () => {
    await withServer({ backpressureLimit: MB, closeOnBackpressureLimit: true, closeTimeout: 500 }, async (server, client) => {
      client.transport.pause();
      const payload = new Uint8Array(1024).fill(0x61);
      const result = await flood(client, repeated(clientFrame(Opcode.TEXT, payload), 256), 256 * MB);
      assert.ok(result.stalled, `the server stopped reading: TCP pushed back after ${mb(result.written)}`);
      // No answer to its close frame comes: after closeTimeout it gives up, and the transport,
      // stuck behind a peer that reads nothing, is closed all the same.
      await until(() => server.events("close").length === 1, "the server's close handler", 20_000);
      assert.deepEqual(server.events("close").map((e) => [e.code, e.wasClean]), [[1006, false]]);
    });
  });

  for (const kind of ["text", "binary"] as const) {
    /** Messages of 1 KiB, each carrying its index (at the start, as text digits or 4 bytes). */
    const messages = () => {
      let index = 0;
      return () => {
        const frames: Uint8Array[] = [];
        for (let i = 0; i < 256; i++, index++) {
          const payload = new Uint8Array(1024).fill(0x61);
          if (kind === "text") payload.set(new TextEncoder().encode(String(index).padStart(10, "0")));
          else new DataView(payload.buffer).setUint32(0, index);
          frames.push(clientFrame(kind === "text" ? Opcode.TEXT : Opcode.BINARY, payload));
        }
        return concatBytes(frames);
      };
    };
    /** The client stops reading and floods 256 MiB of messages; the server's RSS before and after. */
    const floodUnread = async (server: Server, client: RawClient) => {
      client.transport.pause();
      const before = await server.stats();
      const result = await flood(client, messages(), 256 * MB);
      const after = await server.stats();
      return { before, after, growth: after.rss - before.rss, result };
    };
    const indexOf = (data: string | Uint8Array) =>
      typeof data === "string" ? Number(data.slice(0, 10)) : new DataView(data.buffer, data.byteOffset).getUint32(0);

    test(`a client that sends ${kind} messages and does not read: the server stops reading it, loses nothing it accepted, and goes on once it reads`, async () => {
      await withServer({ backpressureLimit: MB }, async (server, client) => {
        const { before, after, growth, result } = await floodUnread(server, client);
        console.log(
          `${kind} echo to a client that does not read, on ${runtimeName}: ${mb(result.written)} written before the server stopped reading, ` +
            `server RSS ${mb(before.rss)} -> ${mb(after.rss)}, ${after.received} messages read`,
        );
        assert.ok(result.stalled, `the server stopped reading: TCP pushed back after ${mb(result.written)}`);
        assert.ok(growth < RSS_BOUND, `server RSS grew by ${mb(growth)}`);

        client.transport.resume();
        await echoed(client, "after the flood");
        const final = await server.stats();
        const sent = result.written / (1024 + 8); // a masked 1 KiB frame has an 8-byte header
        assert.equal(final.received, sent + 1, "the server read every message, once the client read again");
        const echoes = client.events.flatMap((e) => (e.type === kind && e.data !== "after the flood" ? [indexOf(e.data)] : []));
        assert.equal(echoes.length + 1, final.accepted, "every echo the server accepted arrived");
        for (let i = 1; i < echoes.length; i++) assert.ok(echoes[i] > echoes[i - 1], "in order");
        console.log(`  then: ${final.accepted - 1} echoes accepted and received, ${final.dropped} dropped (send() over the limit returned 0)`);
        assert.deepEqual(server.events("close"), [], "the connection is still open");
      });
    });

    test(`a client that sends ${kind} messages and does not read, with closeOnBackpressureLimit: closed with 1008, bounded memory`, async () => {
      await withServer({ backpressureLimit: MB, closeOnBackpressureLimit: true }, async (server, client) => {
        const { before, after, growth, result } = await floodUnread(server, client);
        console.log(
          `${kind} echo with closeOnBackpressureLimit on ${runtimeName}: ${mb(result.written)} written, server RSS ${mb(before.rss)} -> ${mb(after.rss)}`,
        );
        assert.ok(result.stalled, `the server stopped reading: TCP pushed back after ${mb(result.written)}`);
        assert.ok(growth < RSS_BOUND, `server RSS grew by ${mb(growth)}`);
        client.transport.resume();
        await until(() => client.events.some((e) => e.type === "close"), "the server's close frame", 20_000);
        const close = client.events.find((e) => e.type === "close");
        assert.ok(close?.type === "close");
        assert.equal(close.code, 1008);
        assert.equal(close.reason, "send buffer limit exceeded");
        await until(() => server.events("close").length === 1, "the server's close handler", 20_000);
        assert.equal(server.events("close")[0].code, 1008, "our client answered the close frame");
      });
    });
  }
});
