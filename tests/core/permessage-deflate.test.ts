/**
 * permessage-deflate (RFC 7692) in the core: negotiation in both roles (every parameter
 * combination, malformed, duplicate and out-of-range parameters, several offers), and messages
 * through a client core ↔ server core with the real node:zlib codec injected: round trips for
 * every combination of context takeover and window bits, what goes on the wire (RSV1, the
 * stripped tail, the threshold, the opt-out, control frames), the RFC's examples, BFINAL, a zip
 * bomb, order under asynchronous compression, and disposal; a codec that answers at once.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { constants, deflateRawSync, inflateRawSync } from "node:zlib";
import {
  acceptKey,
  ClientConnection,
  type ClientExtensionFactory,
  type Connection,
  type ConnectionEvent,
  type DeflateAgreement,
  type DeflateCodec,
  DecompressedSizeError,
  encodeFrame,
  ExtensionError,
  Opcode,
  PerMessageDeflate,
  type PerMessageDeflateOptions,
  perMessageDeflateClient,
  perMessageDeflateServer,
  RSV1,
  ServerConnection,
  type ServerExtensionFactory,
  WebSocketError,
} from "../../core/mod.ts";
import { createZlibCodec, type ZlibCodec } from "../../adapters/zlib/codec.ts";
import { concatBytes } from "../../core/bytes.ts";
import { utf8 } from "../support/bytes.ts";
import { jsonLike, zipBomb } from "../support/deflate-data.ts";
import { createPair, drainOutput, type Pair } from "../support/core-pair.ts";
import { type Frame, parseFrames } from "../support/frames.ts";
import { delay, until } from "../support/time.ts";

const KEY = new Uint8Array([0x12, 0x34, 0x56, 0x78]);
const TAIL = new Uint8Array([0, 0, 0xff, 0xff]);
const codec = createZlibCodec();

function noise(size: number, seed = 7): Uint8Array {
  const out = new Uint8Array(size);
  let x = seed;
  for (let i = 0; i < size; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

/** Waits for `count` frames in `conn`'s output (compression is asynchronous), and returns them. */
async function written(conn: Connection, count: number, masked: boolean): Promise<Frame[]> {
  const bytes: Uint8Array[] = [];
  let frames: Frame[] = [];
  await until(() => {
    bytes.push(drainOutput(conn));
    frames = parseFrames(concatBytes(bytes), masked);
    return frames.length >= count;
  }, `${count} frames`);
  return frames;
}

const isMessageOrError = (e: ConnectionEvent) => e.type === "text" || e.type === "binary" || e.type === "error";

/** Waits for `count` messages (or an error) among `conn`'s events (a pair pumped by hand). */
async function polled(conn: Connection, count: number): Promise<ConnectionEvent[]> {
  const events: ConnectionEvent[] = [];
  await until(() => {
    events.push(...conn.pollEvents());
    return events.filter(isMessageOrError).length >= count || events.some((e) => e.type === "error");
  }, `${count} messages`);
  return events;
}

/** Waits for `count` messages (or an error) among the server's events (a pair that pumps itself). */
async function received(pair: Pair, count: number): Promise<ConnectionEvent[]> {
  await until(() => {
    pair.pump();
    const events = pair.serverEvents;
    return events.filter(isMessageOrError).length >= count || events.some((e) => e.type === "error");
  }, `${count} messages`);
  return pair.serverEvents;
}

// ---- Negotiation harness --------------------------------------------------------------------

/** Factories that remember the extension they made. */
function spyServer(options: PerMessageDeflateOptions) {
  const inner = perMessageDeflateServer({ codec, ...options });
  const spy = {
    extension: null as PerMessageDeflate | null,
    factory: {
      name: inner.name,
      negotiate(offers) {
        const result = inner.negotiate(offers);
        spy.extension = (result?.extension as PerMessageDeflate | undefined) ?? null;
        return result;
      },
    } as ServerExtensionFactory,
  };
  return spy;
}

function spyClient(options: PerMessageDeflateOptions) {
  const inner = perMessageDeflateClient({ codec, ...options });
  const spy = {
    extension: null as PerMessageDeflate | null,
    factory: {
      name: inner.name,
      offers: () => inner.offers(),
      accept(params) {
        const extension = inner.accept(params) as PerMessageDeflate;
        spy.extension = extension;
        return extension;
      },
    } as ClientExtensionFactory,
  };
  return spy;
}

/** The response header a server sends for `offer` (a Sec-WebSocket-Extensions value), or null. */
function serverAnswer(offer: string, options: PerMessageDeflateOptions = {}): string | null {
  const server = new ServerConnection({ extensions: [perMessageDeflateServer({ codec, ...options })] });
  server.receive(utf8(
    "GET / HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" +
      `Sec-WebSocket-Extensions: ${offer}\r\n\r\n`,
  ));
  assert.equal(server.pollEvents()[0]?.type, "upgrade");
  server.accept();
  const response = new TextDecoder().decode(drainOutput(server));
  assert.match(response, /^HTTP\/1\.1 101 /);
  return /\r\nSec-WebSocket-Extensions: ([^\r]*)\r\n/i.exec(response)?.[1] ?? null;
}

/** What a client offers, and what it makes of a response's extension header. */
function clientAgainst(response: string | null, options: PerMessageDeflateOptions = {}) {
  const spy = spyClient(options);
  const client = new ClientConnection({ host: "example.com", extensions: [spy.factory] });
  const request = new TextDecoder().decode(drainOutput(client));
  const key = /\r\nSec-WebSocket-Key: ([^\r]*)\r\n/i.exec(request)![1];
  const offer = /\r\nSec-WebSocket-Extensions: ([^\r]*)\r\n/i.exec(request)?.[1] ?? null;
  client.receive(utf8(
    `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptKey(key)}\r\n` +
      (response === null ? "" : `Sec-WebSocket-Extensions: ${response}\r\n`) + "\r\n",
  ));
  const [event] = client.pollEvents();
  return { offer, event, agreement: spy.extension?.agreement ?? null };
}

function agreement(local: [boolean, number], remote: [boolean, number]): DeflateAgreement {
  return {
    localNoContextTakeover: local[0],
    localMaxWindowBits: local[1],
    remoteNoContextTakeover: remote[0],
    remoteMaxWindowBits: remote[1],
  };
}

describe("permessage-deflate negotiation: the server's answer", () => {
  const cases: [string, string, PerMessageDeflateOptions, string | null][] = [
    ["the plain offer", "permessage-deflate", {}, "permessage-deflate"],
    ["client_max_window_bits without a value (browsers): no limit set", "permessage-deflate; client_max_window_bits", {}, "permessage-deflate"],
    ["client_max_window_bits with a value: echoed", "permessage-deflate; client_max_window_bits=10", {}, "permessage-deflate; client_max_window_bits=10"],
    ["our client limit, the client's hint above it", "permessage-deflate; client_max_window_bits=12", { clientMaxWindowBits: 9 }, "permessage-deflate; client_max_window_bits=9"],
    ["our client limit, the client's hint below it", "permessage-deflate; client_max_window_bits=8", { clientMaxWindowBits: 9 }, "permessage-deflate; client_max_window_bits=8"],
    ["our client limit, the client supports it", "permessage-deflate; client_max_window_bits", { clientMaxWindowBits: 11 }, "permessage-deflate; client_max_window_bits=11"],
    ["our client limit, the client does not support it: accepted without", "permessage-deflate", { clientMaxWindowBits: 11 }, "permessage-deflate"],
    ["server_max_window_bits asked for", "permessage-deflate; server_max_window_bits=10", {}, "permessage-deflate; server_max_window_bits=10"],
    ["server_max_window_bits asked for, ours is lower", "permessage-deflate; server_max_window_bits=12", { serverMaxWindowBits: 9 }, "permessage-deflate; server_max_window_bits=9"],
    ["server_max_window_bits asked for, ours is higher", "permessage-deflate; server_max_window_bits=9", { serverMaxWindowBits: 12 }, "permessage-deflate; server_max_window_bits=9"],
    ["server_max_window_bits unasked", "permessage-deflate", { serverMaxWindowBits: 10 }, "permessage-deflate; server_max_window_bits=10"],
    ["server_max_window_bits=8 (we compress Huffman-only)", "permessage-deflate; server_max_window_bits=8", {}, "permessage-deflate; server_max_window_bits=8"],
    ["server_no_context_takeover asked for", "permessage-deflate; server_no_context_takeover", {}, "permessage-deflate; server_no_context_takeover"],
    ["server_no_context_takeover by our choice", "permessage-deflate", { serverNoContextTakeover: true }, "permessage-deflate; server_no_context_takeover"],
    ["client_no_context_takeover offered: acknowledged", "permessage-deflate; client_no_context_takeover", {}, "permessage-deflate; client_no_context_takeover"],
    ["client_no_context_takeover by our choice", "permessage-deflate", { clientNoContextTakeover: true }, "permessage-deflate; client_no_context_takeover"],
    [
      "everything at once, quoted values",
      'permessage-deflate; client_no_context_takeover; server_no_context_takeover; server_max_window_bits="11"; client_max_window_bits="13"',
      { clientMaxWindowBits: 12 },
      "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=11; client_max_window_bits=12",
    ],
  ];
  for (const [what, offer, options, answer] of cases) {
    test(what, () => assert.equal(serverAnswer(offer, options), answer));
  }

  // RFC 7692 §5: an offer with an unknown, duplicate or malformed parameter is declined.
  const invalid: [string, string][] = [
    ["an unknown parameter", "permessage-deflate; x-foo"],
    ["a parameter name in another case", "permessage-deflate; Server_No_Context_Takeover"],
    ["a duplicate server_no_context_takeover", "permessage-deflate; server_no_context_takeover; server_no_context_takeover"],
    ["a duplicate client_no_context_takeover", "permessage-deflate; client_no_context_takeover; client_no_context_takeover"],
    ["a duplicate server_max_window_bits", "permessage-deflate; server_max_window_bits=10; server_max_window_bits=10"],
    ["a duplicate client_max_window_bits", "permessage-deflate; client_max_window_bits; client_max_window_bits=10"],
    ["server_no_context_takeover with a value", "permessage-deflate; server_no_context_takeover=1"],
    ["client_no_context_takeover with a value", "permessage-deflate; client_no_context_takeover=true"],
    ["server_max_window_bits without a value", "permessage-deflate; server_max_window_bits"],
    ["server_max_window_bits=7", "permessage-deflate; server_max_window_bits=7"],
    ["server_max_window_bits=16", "permessage-deflate; server_max_window_bits=16"],
    ["server_max_window_bits=0", "permessage-deflate; server_max_window_bits=0"],
    ["server_max_window_bits with a leading zero", "permessage-deflate; server_max_window_bits=09"],
    ["server_max_window_bits not a number", "permessage-deflate; server_max_window_bits=ten"],
    ["server_max_window_bits with a sign", "permessage-deflate; server_max_window_bits=+9"],
    ["client_max_window_bits=7", "permessage-deflate; client_max_window_bits=7"],
    ["client_max_window_bits=16", "permessage-deflate; client_max_window_bits=16"],
    ["client_max_window_bits=1.5", 'permessage-deflate; client_max_window_bits="1.5"'],
  ];
  for (const [what, offer] of invalid) {
    test(`declines an offer with ${what}`, () => assert.equal(serverAnswer(offer), null));
  }

  test("several offers: the first acceptable one is taken", () => {
    assert.equal(
      serverAnswer("permessage-deflate; server_max_window_bits=10, permessage-deflate; client_max_window_bits"),
      "permessage-deflate; server_max_window_bits=10",
    );
    assert.equal(
      serverAnswer("permessage-deflate; x-bad, permessage-deflate; server_max_window_bits=16, permessage-deflate; server_no_context_takeover"),
      "permessage-deflate; server_no_context_takeover",
    );
    assert.equal(serverAnswer("x-other, permessage-deflate; client_max_window_bits=9"), "permessage-deflate; client_max_window_bits=9");
    assert.equal(serverAnswer("permessage-deflate; a, permessage-deflate; b"), null, "all invalid: none");
  });

  test("options are checked", () => {
    for (const bad of [
      { serverMaxWindowBits: 7 },
      { serverMaxWindowBits: 16 },
      { serverMaxWindowBits: 9.5 },
      { clientMaxWindowBits: 0 },
      { threshold: -1 },
      { level: 10 },
      { memLevel: 0 },
      { memLevel: 10 },
    ]) {
      assert.throws(() => perMessageDeflateServer({ codec, ...bad }), WebSocketError, JSON.stringify(bad));
      assert.throws(() => perMessageDeflateClient({ codec, ...bad }), WebSocketError, JSON.stringify(bad));
    }
    assert.throws(() => perMessageDeflateServer({}), /codec/);
  });
});

describe("permessage-deflate negotiation: the client's offer and its checks of the answer", () => {
  test("the default offer: permessage-deflate; client_max_window_bits", () => {
    assert.equal(clientAgainst(null).offer, "permessage-deflate; client_max_window_bits");
  });

  test("every option in the offer", () => {
    const { offer } = clientAgainst(null, {
      serverNoContextTakeover: true,
      clientNoContextTakeover: true,
      serverMaxWindowBits: 10,
      clientMaxWindowBits: 12,
    });
    assert.equal(offer, "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10; client_max_window_bits=12");
    assert.equal(clientAgainst(null, { clientMaxWindowBits: false }).offer, "permessage-deflate");
  });

  test("a server that declines: open, no extension", () => {
    const { event, agreement: a } = clientAgainst(null);
    assert.ok(event.type === "open" && event.extensions === "");
    assert.equal(a, null);
  });

  const accepted: [string, string, PerMessageDeflateOptions, DeflateAgreement][] = [
    ["the plain answer", "permessage-deflate", {}, agreement([false, 15], [false, 15])],
    ["server_no_context_takeover, unasked", "permessage-deflate; server_no_context_takeover", {}, agreement([false, 15], [true, 15])],
    ["client_no_context_takeover, unasked", "permessage-deflate; client_no_context_takeover", {}, agreement([true, 15], [false, 15])],
    ["client_no_context_takeover of our own", "permessage-deflate", { clientNoContextTakeover: true }, agreement([true, 15], [false, 15])],
    ["server_max_window_bits, unasked", "permessage-deflate; server_max_window_bits=10", {}, agreement([false, 15], [false, 10])],
    ["server_max_window_bits lower than asked", "permessage-deflate; server_max_window_bits=9", { serverMaxWindowBits: 11 }, agreement([false, 15], [false, 9])],
    ["client_max_window_bits, when offered without a value", "permessage-deflate; client_max_window_bits=8", {}, agreement([false, 8], [false, 15])],
    ["client_max_window_bits lower than our value", "permessage-deflate; client_max_window_bits=9", { clientMaxWindowBits: 12 }, agreement([false, 9], [false, 15])],
    ["no client_max_window_bits: we keep our own value", "permessage-deflate", { clientMaxWindowBits: 12 }, agreement([false, 12], [false, 15])],
  ];
  for (const [what, response, options, expected] of accepted) {
    test(`accepts ${what}`, () => {
      const { event, agreement: a } = clientAgainst(response, options);
      assert.ok(event.type === "open", JSON.stringify(event));
      assert.equal(event.extensions, response);
      assert.deepEqual(a, expected);
    });
  }

  // RFC 7692 §5: the client fails the connection on an answer it cannot accept.
  const rejected: [string, string, PerMessageDeflateOptions][] = [
    ["an unknown parameter", "permessage-deflate; x-foo", {}],
    ["a duplicate parameter", "permessage-deflate; server_no_context_takeover; server_no_context_takeover", {}],
    ["a value on client_no_context_takeover", "permessage-deflate; client_no_context_takeover=1", {}],
    ["server_max_window_bits without a value", "permessage-deflate; server_max_window_bits", {}],
    ["server_max_window_bits=16", "permessage-deflate; server_max_window_bits=16", {}],
    ["server_max_window_bits=7", "permessage-deflate; server_max_window_bits=7", {}],
    ["client_max_window_bits without a value (only an offer may omit it)", "permessage-deflate; client_max_window_bits", {}],
    ["client_max_window_bits=16", "permessage-deflate; client_max_window_bits=16", {}],
    ["client_max_window_bits when we did not offer it", "permessage-deflate; client_max_window_bits=10", { clientMaxWindowBits: false }],
    ["client_max_window_bits above our value", "permessage-deflate; client_max_window_bits=13", { clientMaxWindowBits: 12 }],
    ["no server_max_window_bits after we asked", "permessage-deflate", { serverMaxWindowBits: 10 }],
    ["server_max_window_bits above what we asked", "permessage-deflate; server_max_window_bits=11", { serverMaxWindowBits: 10 }],
    ["no server_no_context_takeover after we asked", "permessage-deflate", { serverNoContextTakeover: true }],
    ["the extension twice", "permessage-deflate, permessage-deflate", {}],
  ];
  for (const [what, response, options] of rejected) {
    test(`fails on ${what}`, () => {
      const { event } = clientAgainst(response, options);
      assert.equal(event.type, "handshake_failed", JSON.stringify(event));
    });
  }
});

describe("permessage-deflate negotiation: every client option × every server option, both roles agree", () => {
  const bools = [false, true];
  const clientOptions: PerMessageDeflateOptions[] = [];
  for (const serverNoContextTakeover of bools) {
    for (const clientNoContextTakeover of bools) {
      for (const serverMaxWindowBits of [undefined, 8, 11, 15]) {
        for (const clientMaxWindowBits of [true, false, 8, 11, 15]) {
          clientOptions.push({ serverNoContextTakeover, clientNoContextTakeover, serverMaxWindowBits, clientMaxWindowBits });
        }
      }
    }
  }
  const serverOptions: PerMessageDeflateOptions[] = [];
  for (const serverNoContextTakeover of bools) {
    for (const clientNoContextTakeover of bools) {
      for (const serverMaxWindowBits of [undefined, 9, 12]) {
        for (const clientMaxWindowBits of [undefined, 9, 12]) {
          serverOptions.push({ serverNoContextTakeover, clientNoContextTakeover, serverMaxWindowBits, clientMaxWindowBits });
        }
      }
    }
  }

  /** The RFC's outcome, written independently of the implementation. */
  function expected(c: PerMessageDeflateOptions, s: PerMessageDeflateOptions): { server: DeflateAgreement; client: DeflateAgreement } {
    const serverNct = !!(c.serverNoContextTakeover || s.serverNoContextTakeover);
    const clientNct = !!(c.clientNoContextTakeover || s.clientNoContextTakeover);
    const serverBits = Math.min(c.serverMaxWindowBits ?? 15, (s.serverMaxWindowBits as number | undefined) ?? 15);
    let clientBits = 15;
    if (c.clientMaxWindowBits === true) clientBits = (s.clientMaxWindowBits as number | undefined) ?? 15;
    else if (typeof c.clientMaxWindowBits === "number") clientBits = Math.min(c.clientMaxWindowBits, (s.clientMaxWindowBits as number | undefined) ?? 15);
    return {
      server: agreement([serverNct, serverBits], [clientNct, clientBits]),
      client: agreement([clientNct, clientBits], [serverNct, serverBits]),
    };
  }

  test(`${clientOptions.length} × ${serverOptions.length} handshakes`, () => {
    let count = 0;
    for (const c of clientOptions) {
      for (const s of serverOptions) {
        const server = spyServer(s);
        const client = spyClient(c);
        const pair = createPair({ server: { extensions: [server.factory] }, client: { extensions: [client.factory] } });
        const what = `client ${JSON.stringify(c)} × server ${JSON.stringify(s)}`;
        const open = pair.clientEvents.find((e) => e.type === "open");
        assert.ok(open && open.type === "open", `${what}: ${JSON.stringify(pair.clientEvents)}`);
        assert.match(open.extensions, /^permessage-deflate/, what);
        const e = expected(c, s);
        assert.deepEqual(server.extension?.agreement, e.server, `${what}: the server's side (${open.extensions})`);
        assert.deepEqual(client.extension?.agreement, e.client, `${what}: the client's side (${open.extensions})`);
        count++;
      }
    }
    assert.equal(count, 2880);
  });
});

// ---- Messages through client core ↔ server core, real zlib ------------------------------------

interface DeflatePair extends Pair {
  codec: ZlibCodec;
}

/**
 * A pair with permessage-deflate on both sides. It pumps itself whenever asynchronous work
 * completes, unless `manual`: then a test takes each side's output and events itself.
 */
function deflatePair(
  server: PerMessageDeflateOptions = {},
  client: PerMessageDeflateOptions = {},
  connection: { maxMessageSize?: number; fragmentSize?: number; manual?: boolean } = {},
): DeflatePair {
  const own = createZlibCodec();
  const { manual, ...limits } = connection;
  let pair: Pair | undefined;
  const onWake = () => manual || pair?.pump();
  pair = createPair({
    server: { ...limits, extensions: [perMessageDeflateServer({ codec: own, ...server })], onWake },
    client: { ...limits, extensions: [perMessageDeflateClient({ codec: own, ...client })], onWake },
  });
  const open = pair.clientEvents.find((e) => e.type === "open");
  assert.ok(open && open.type === "open" && open.extensions.startsWith("permessage-deflate"), JSON.stringify(pair.clientEvents));
  return Object.assign(pair, { codec: own });
}

function messagesOf(events: ConnectionEvent[]): (string | Uint8Array)[] {
  return events.flatMap((e): (string | Uint8Array)[] => (e.type === "text" ? [e.data] : e.type === "binary" ? [e.data.slice()] : []));
}

async function closeBoth(pair: DeflatePair): Promise<void> {
  pair.client.close(1000);
  await until(() => {
    pair.pump();
    return pair.server.readyState === 3 && pair.client.readyState === 3;
  }, "both sides closed");
  assert.equal(pair.codec.stats.streams, 0, "every zlib stream is freed when the connection ends");
}

/** Ends a pair at once (a manually pumped one, whose output a test took). */
function abortBoth(pair: DeflatePair): void {
  pair.server.abort();
  pair.client.abort();
  assert.equal(pair.codec.stats.streams, 0, "every zlib stream is freed when the connection ends");
}

/** What each round trip sends: repeats (takeover), noise, big, tiny and empty messages. */
function workload(seed: number): (string | Uint8Array)[] {
  const text = jsonLike(3000, seed);
  return [text, text, noise(2000, seed), jsonLike(200_000, seed + 1), "x", "", new Uint8Array(0), text, noise(70_000, seed + 2)];
}

describe("permessage-deflate messages: round trips with the real zlib codec", () => {
  const bits = [8, 9, 10, 11, 12, 13, 14, 15];
  for (const serverNoContextTakeover of [false, true]) {
    for (const clientNoContextTakeover of [false, true]) {
      test(`server_no_context_takeover=${serverNoContextTakeover} client_no_context_takeover=${clientNoContextTakeover}, window bits 8..15 each way`, async () => {
        for (const b of bits) {
          const options = { serverNoContextTakeover, clientNoContextTakeover, serverMaxWindowBits: b, clientMaxWindowBits: 23 - b, threshold: 0 };
          const pair = deflatePair(options, { threshold: 0 });
          const toServer = workload(b);
          const toClient = workload(b + 100);
          for (const m of toServer) typeof m === "string" ? pair.client.sendText(m) : pair.client.sendBinary(m);
          for (const m of toClient) typeof m === "string" ? pair.server.sendText(m) : pair.server.sendBinary(m);
          pair.pump();
          const what = JSON.stringify(options);
          await until(() => messagesOf(pair.serverEvents).length === toServer.length && messagesOf(pair.clientEvents).length === toClient.length, what);
          assert.deepEqual(messagesOf(pair.serverEvents), toServer, `${what}: what the server received`);
          assert.deepEqual(messagesOf(pair.clientEvents), toClient, `${what}: what the client received`);
          await closeBoth(pair);
        }
      });
    }
  }

  test("the negotiated window bits hold on the wire: each direction inflates with exactly that window", async () => {
    for (const [serverBits, clientBits] of [[9, 12], [12, 9], [8, 10], [10, 8]]) {
      const pair = deflatePair({ serverMaxWindowBits: serverBits, clientMaxWindowBits: clientBits }, {}, { manual: true });
      const messages = [jsonLike(20_000, 1), jsonLike(20_000, 2), jsonLike(20_000, 1)];
      for (const m of messages) pair.client.sendText(m);
      for (const m of messages) pair.server.sendText(m);
      const fromClient = await written(pair.client, 3, true);
      const fromServer = await written(pair.server, 3, false);
      for (const [frames, bitsUsed, who] of [[fromClient, clientBits, "client"], [fromServer, serverBits, "server"]] as const) {
        // The messages as one DEFLATE stream (tails put back), inflated with the agreed window only.
        const stream = concatBytes(frames.flatMap((f) => [f.payload, TAIL]));
        const inflated = inflateRawSync(stream, { windowBits: bitsUsed, finishFlush: constants.Z_SYNC_FLUSH });
        assert.equal(new TextDecoder().decode(inflated), messages.join(""), `${who} with ${bitsUsed} bits`);
        assert.ok(frames.every((f) => f.rsv === RSV1));
      }
      abortBoth(pair);
    }
  });
});

describe("permessage-deflate messages: on the wire", () => {
  test("§7.2.1: compressed with a sync flush, the 4-byte tail stripped, RSV1 set", async () => {
    const pair = deflatePair({}, {}, { manual: true });
    const text = jsonLike(5000);
    pair.server.sendText(text);
    const [frame] = await written(pair.server, 1, false);
    assert.equal(frame.rsv, RSV1);
    assert.ok(frame.payload.length < text.length / 3, `${frame.payload.length} bytes for ${text.length}`);
    const inflated = inflateRawSync(concatBytes([frame.payload, TAIL]), { finishFlush: constants.Z_SYNC_FLUSH });
    assert.equal(new TextDecoder().decode(inflated), text);
    abortBoth(pair);
  });

  test("context takeover is observable: a repeated message shrinks with it, not without it", async () => {
    const text = jsonLike(4000);
    const sizes: Record<string, number[]> = {};
    for (const [name, options] of [["takeover", {}], ["none", { clientNoContextTakeover: true, serverNoContextTakeover: true }]] as const) {
      const pair = deflatePair(options, {}, { manual: true });
      pair.client.sendText(text);
      pair.client.sendText(text);
      pair.server.sendText(text);
      pair.server.sendText(text);
      const c = await written(pair.client, 2, true);
      const s = await written(pair.server, 2, false);
      sizes[name] = [c[0].payload.length, c[1].payload.length, s[0].payload.length, s[1].payload.length];
      // And the other side decodes both (with the same takeover rule).
      pair.server.receive(concatBytes(c.flatMap((f) => encodeFrame(f.opcode, f.payload, f.fin, f.rsv, KEY))));
      assert.deepEqual(messagesOf(await polled(pair.server, 2)), [text, text]);
      abortBoth(pair);
    }
    const [c1, c2, s1, s2] = sizes.takeover;
    assert.ok(c2 * 4 < c1 && s2 * 4 < s1, `with takeover: ${sizes.takeover}`);
    const [n1, n2, m1, m2] = sizes.none;
    assert.ok(n1 === n2 && m1 === m2, `without: ${sizes.none}`);
  });

  test("§6: a fragmented compressed message has RSV1 on its first frame only", async () => {
    const pair = deflatePair({}, {}, { fragmentSize: 100, manual: true });
    const data = noise(1500); // incompressible: several fragments
    pair.server.sendBinary(data);
    const frames = await written(pair.server, 2, false);
    assert.ok(frames.length > 3);
    assert.deepEqual(frames.map((f) => f.rsv), [RSV1, ...frames.slice(1).map(() => 0)]);
    assert.deepEqual(frames.map((f) => f.opcode), [Opcode.BINARY, ...frames.slice(1).map(() => Opcode.CONTINUATION)]);
    assert.deepEqual(frames.map((f) => f.fin), frames.map((_, i) => i === frames.length - 1));
    // The other side reassembles and inflates it.
    pair.client.receive(concatBytes(frames.flatMap((f) => encodeFrame(f.opcode, f.payload, f.fin, f.rsv, null))));
    assert.deepEqual(messagesOf(await polled(pair.client, 1)), [data]);
    abortBoth(pair);
  });

  test("the threshold: shorter messages go uncompressed (RSV1 clear); threshold 0 compresses even an empty one", async () => {
    const pair = deflatePair({}, {}, { manual: true });
    pair.server.sendText("a".repeat(1023));
    pair.server.sendText("a".repeat(1024));
    const frames = await written(pair.server, 2, false);
    assert.deepEqual(frames.map((f) => f.rsv), [0, RSV1]);
    assert.equal(frames[0].payload.length, 1023);
    abortBoth(pair);

    const eager = deflatePair({ threshold: 0 }, { threshold: 0 }, { manual: true });
    eager.client.sendText("");
    eager.client.sendText("abc");
    eager.client.sendBinary(new Uint8Array(0));
    const sent = await written(eager.client, 3, true);
    assert.deepEqual(sent.map((f) => f.rsv), [RSV1, RSV1, RSV1]);
    assert.deepEqual([...sent[0].payload], [0x00], "RFC 7692 §7.2.3.6: an empty message compresses to 0x00");
    assert.deepEqual([...sent[2].payload], [0x00]);
    eager.server.receive(concatBytes(sent.flatMap((f) => encodeFrame(f.opcode, f.payload, f.fin, f.rsv, KEY))));
    assert.deepEqual(messagesOf(await polled(eager.server, 3)), ["", "abc", new Uint8Array(0)]);
    abortBoth(eager);
  });

  test("the opt-out: compress: false sends RSV1 clear, in order with compressed ones", async () => {
    const pair = deflatePair({}, {}, { manual: true });
    const big = jsonLike(10_000);
    pair.server.sendText(big);
    pair.server.sendText(big, { compress: false });
    pair.server.sendText(big);
    const frames = await written(pair.server, 3, false);
    assert.deepEqual(frames.map((f) => f.rsv), [RSV1, 0, RSV1]);
    assert.equal(new TextDecoder().decode(frames[1].payload), big);
    abortBoth(pair);
  });

  test("control frames are never compressed; a control frame with RSV1 is a protocol error", async () => {
    const pair = deflatePair({ threshold: 0 }, { threshold: 0 }, { manual: true });
    pair.server.ping("x".repeat(125));
    pair.server.pong("y");
    pair.server.close(1000, "z".repeat(100));
    const frames = await written(pair.server, 3, false);
    assert.deepEqual(frames.map((f) => [f.opcode, f.rsv]), [[Opcode.PING, 0], [Opcode.PONG, 0], [Opcode.CLOSE, 0]]);
    abortBoth(pair);
    const other = deflatePair({}, {}, { manual: true });
    other.server.receive(concatBytes(encodeFrame(Opcode.PING, utf8("p"), true, RSV1, KEY)));
    const [error] = other.server.pollEvents();
    assert.equal(error.type === "error" && error.code, 1002);
    abortBoth(other);
  });
});

describe("permessage-deflate messages: decoding", () => {
  /** Feeds the server raw client frames (masked) of one or more messages. */
  function feed(pair: Pair, ...frames: [number, Uint8Array, boolean, number][]) {
    pair.server.receive(concatBytes(frames.flatMap(([opcode, payload, fin, rsv]) => encodeFrame(opcode, payload, fin, rsv, KEY))));
  }
  const hex = (h: string) => Uint8Array.from(h.match(/../g)!, (b) => parseInt(b, 16));

  test("a compressed message with no payload at all is an empty message with a buffer of its own", async () => {
    const pair = deflatePair();
    feed(pair, [Opcode.BINARY, new Uint8Array(0), true, RSV1]);
    const [first] = (await received(pair, 1)).filter(isMessageOrError);
    assert.ok(first.type === "binary" && first.data.length === 0, JSON.stringify(first));
    // The application may transfer what it got; nothing the connection uses later goes with it.
    structuredClone(first.data.buffer, { transfer: [first.data.buffer as ArrayBuffer] });
    feed(pair, [Opcode.BINARY, new Uint8Array(0), true, RSV1]);
    pair.server.ping();
    pair.server.sendText("after");
    const [, second] = (await received(pair, 2)).filter(isMessageOrError);
    assert.ok(second.type === "binary" && second.data.length === 0 && second.data !== first.data, JSON.stringify(second));
    await until(() => (pair.pump(), pair.clientEvents.some((e) => e.type === "text" && e.data === "after")), "the text after");
    await closeBoth(pair);
  });

  test("the RFC 7692 §7.2.3 examples", async () => {
    const pair = deflatePair();
    feed(pair, [Opcode.TEXT, hex("f248cdc9c90700"), true, RSV1]); // §7.2.3.1
    feed(pair, [Opcode.TEXT, hex("f248cd"), false, RSV1], [Opcode.CONTINUATION, hex("c9c90700"), true, 0]); // §7.2.3.1, fragmented
    feed(pair, [Opcode.TEXT, hex("f200110000"), true, RSV1]); // §7.2.3.2: the shared window
    feed(pair, [Opcode.TEXT, hex("000500faff48656c6c6f00"), true, RSV1]); // §7.2.3.3: a stored block
    feed(pair, [Opcode.TEXT, hex("f24805000000ffffcac9c90700"), true, RSV1]); // §7.2.3.5: two blocks
    feed(pair, [Opcode.TEXT, hex("f3"), false, RSV1], [Opcode.CONTINUATION, hex("48cdc9c9070000"), true, 0]); // §7.2.3.4: BFINAL
    feed(pair, [Opcode.TEXT, hex("f248cdc9c90700"), true, RSV1]); // after BFINAL: a new stream
    feed(pair, [Opcode.TEXT, utf8("plain"), true, 0]);
    const events = await received(pair, 8);
    assert.deepEqual(messagesOf(events), ["Hello", "Hello", "Hello", "Hello", "Hello", "Hello", "Hello", "plain"]);
    await closeBoth(pair);
  });

  test("§7.2.3.4: messages that end with a BFINAL=1 block (a peer that finishes each DEFLATE stream)", async () => {
    const pair = deflatePair({ clientNoContextTakeover: true });
    const messages = [jsonLike(50_000, 1), jsonLike(300, 2), jsonLike(70_000, 3)];
    for (const m of messages) feed(pair, [Opcode.TEXT, new Uint8Array(deflateRawSync(utf8(m))), true, RSV1]);
    assert.deepEqual(messagesOf(await received(pair, 3)), messages);
    await closeBoth(pair);
  });

  test("invalid compressed data fails with 1007; so does compressed text that is not UTF-8", async () => {
    const pair = deflatePair();
    feed(pair, [Opcode.BINARY, hex("ffffffff"), true, RSV1]);
    const error = (await received(pair, 1)).find((e) => e.type === "error");
    assert.ok(error && error.type === "error" && error.code === 1007, JSON.stringify(error));
    assert.match(error.reason, /^invalid compressed data/);

    const other = deflatePair();
    const bad = new Uint8Array(deflateRawSync(new Uint8Array([0x61, 0xff, 0x62]), { finishFlush: constants.Z_SYNC_FLUSH }));
    feed(other, [Opcode.TEXT, bad.subarray(0, bad.length - 4), true, RSV1]);
    const failed = (await received(other, 1)).find((e) => e.type === "error");
    assert.ok(failed && failed.type === "error" && failed.code === 1007, JSON.stringify(failed));
    assert.match(failed.reason, /UTF-8/);
    // A failing server closes the transport (RFC 6455 §7.1.7): the end of each connection.
    for (const p of [pair, other]) {
      assert.ok(p.server.closeExpected);
      p.server.receiveEof();
      p.client.receiveEof();
      assert.equal(p.codec.stats.streams, 0);
    }
  });

  test("a zip bomb (1 MiB inflating to 1 GiB) fails with 1009 past maxMessageSize; memory stays bounded", async () => {
    // The bomb: 1 MiB of zeros compressed with sync flushes; from the second MiB on, each
    // segment comes out identical (the window is all zeros), so 1023 copies of it follow.
    const payload = await zipBomb(1024);
    assert.ok(payload.length < 1.1 * (1 << 20), `${payload.length} bytes inflate to 1 GiB`);

    const limit = 8 * 1024 * 1024;
    const pair = deflatePair({}, {}, { maxMessageSize: limit });
    const before = process.memoryUsage().rss;
    let peak = before;
    const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 2);
    let events: ConnectionEvent[];
    try {
      feed(pair, [Opcode.BINARY, payload, true, RSV1]);
      events = await received(pair, 1);
    } finally {
      clearInterval(timer);
    }
    peak = Math.max(peak, process.memoryUsage().rss);
    const error = events.find((e) => e.type === "error");
    assert.ok(error && error.type === "error" && error.code === 1009, JSON.stringify(events.map((e) => e.type)));
    assert.match(error.reason, /over 8388608 bytes once decompressed/);
    assert.equal(messagesOf(events).length, 0);
    // The client got the close frame with 1009.
    await until(() => {
      pair.pump();
      return pair.clientEvents.some((e) => e.type === "close");
    }, "the client to see the close");
    const close = pair.clientEvents.find((e) => e.type === "close");
    assert.ok(close && close.type === "close" && close.code === 1009, JSON.stringify(close));
    const growth = (peak - before) / (1024 * 1024);
    assert.ok(growth < 128, `resident memory grew by ${growth.toFixed(1)} MiB for a 1024 MiB bomb`);
    await until(() => pair.codec.stats.streams === 0, "the zlib streams to be freed");
  });
});

describe("permessage-deflate messages: order and resources", () => {
  test("order holds with asynchronous compression: mixed sizes, opt-outs, pings and a close", async () => {
    const pair = deflatePair();
    const sent: (string | Uint8Array)[] = [];
    for (let i = 0; i < 120; i++) {
      const m = i % 3 === 0 ? jsonLike(100 + i * 97, i) : i % 3 === 1 ? `short ${i}` : noise(2000 + i, i);
      sent.push(m);
      const options = i % 7 === 0 ? { compress: false } : undefined;
      typeof m === "string" ? pair.client.sendText(m, options) : pair.client.sendBinary(m, options);
      if (i % 10 === 0) pair.client.ping(`p${i}`);
    }
    pair.client.close(1000, "done");
    pair.pump();
    await until(() => pair.serverEvents.some((e) => e.type === "close"), "the close");
    assert.deepEqual(messagesOf(pair.serverEvents), sent);
    const kinds = pair.serverEvents.filter((e) => e.type !== "upgrade" && e.type !== "open").map((e) => e.type);
    assert.equal(kinds.at(-1), "close");
    assert.equal(kinds.indexOf("ping"), 1, "the first ping comes right after the first message");
    await until(() => pair.client.readyState === 3, "the client closed");
    assert.equal(pair.codec.stats.streams, 0);
  });

  test("zlib streams are made on first use and freed at the end, also on abort", async () => {
    const pair = deflatePair();
    assert.equal(pair.codec.stats.streams, 0, "nothing allocated for a connection that sent nothing");
    pair.client.sendText("small"); // under the threshold
    assert.equal(pair.codec.stats.streams, 0);
    pair.client.sendText(jsonLike(5000));
    pair.pump();
    await until(() => messagesOf(pair.serverEvents).length === 2, "two messages");
    assert.equal(pair.codec.stats.streams, 2, "the client's compressor, the server's decompressor");
    pair.server.abort();
    pair.client.abort();
    assert.equal(pair.codec.stats.streams, 0);
  });

  test("the extension's errors after disposal do not leak: sending while the codec works, then aborting", async () => {
    const pair = deflatePair();
    for (let i = 0; i < 20; i++) pair.server.sendText(jsonLike(100_000, i));
    pair.server.abort();
    await delay(50);
    assert.equal(pair.codec.stats.streams, 0);
    assert.equal(pair.codec.stats.running, 0);
    assert.deepEqual(pair.server.pollOutput(), []);
  });
});

describe("permessage-deflate with a codec that answers at once", () => {
  /** Each message a whole DEFLATE stream of its own, sync-flushed: what zlib's one-shot functions make. */
  function oneShotCodec(fail: { compress?: unknown; decompress?: unknown } = {}): DeflateCodec {
    return {
      createCompressor: () => ({
        compress(data) {
          if (fail.compress !== undefined) throw fail.compress;
          return new Uint8Array(deflateRawSync(data, { finishFlush: constants.Z_SYNC_FLUSH }));
        },
        close() {},
      }),
      createDecompressor: () => ({
        decompress(chunks, maxSize) {
          if (fail.decompress !== undefined) throw fail.decompress;
          const out = new Uint8Array(inflateRawSync(concatBytes([...chunks]), { finishFlush: constants.Z_SYNC_FLUSH }));
          if (out.length > maxSize) throw new DecompressedSizeError(maxSize, out.length);
          return out;
        },
        close() {},
      }),
    };
  }

  const agreement: DeflateAgreement = { localNoContextTakeover: true, localMaxWindowBits: 15, remoteNoContextTakeover: true, remoteMaxWindowBits: 15 };
  const extension = (codec: DeflateCodec) => {
    const server = perMessageDeflateServer({ codec, serverNoContextTakeover: true, clientNoContextTakeover: true });
    const result = server.negotiate([[]]);
    assert.ok(result);
    const e = result.extension as PerMessageDeflate;
    assert.deepEqual(e.agreement, agreement);
    return e;
  };

  test("encode and decode return at once: the tail stripped, RSV1 set, the bytes back", () => {
    const e = extension(oneShotCodec());
    const message = utf8(jsonLike(5000));
    const encoded = e.encode(message);
    assert.ok(!(encoded instanceof Promise), "not a promise");
    assert.equal(encoded.rsv, RSV1);
    assert.ok(encoded.data.length < message.length);
    const decoded = e.decode(encoded.data, RSV1, Infinity);
    assert.ok(decoded instanceof Uint8Array, "not a promise");
    assert.deepEqual(decoded, message);
  });

  test("a codec that throws: 1011 when compressing, 1009 over the size limit, 1007 for bad data", () => {
    const closeCode = (f: () => unknown) => {
      try {
        f();
      } catch (error) {
        assert.ok(error instanceof ExtensionError, String(error));
        return error.closeCode;
      }
      assert.fail("did not throw");
    };
    const big = utf8(jsonLike(5000));
    assert.equal(closeCode(() => extension(oneShotCodec({ compress: new Error("broken") })).encode(big)), 1011);
    assert.equal(closeCode(() => extension(oneShotCodec({ decompress: new DecompressedSizeError(10, 20) })).decode(big, RSV1, 10)), 1009);
    assert.equal(closeCode(() => extension(oneShotCodec({ decompress: new Error("invalid block type") })).decode(big, RSV1, 10)), 1007);
  });

  test("through a pair: a compressed message is in the output when sendText returns, and arrives when receive returns", () => {
    const codec = oneShotCodec();
    const pair = createPair({
      server: { extensions: [perMessageDeflateServer({ codec, serverNoContextTakeover: true, clientNoContextTakeover: true })] },
      client: { extensions: [perMessageDeflateClient({ codec, serverNoContextTakeover: true, clientNoContextTakeover: true })] },
    });
    const message = jsonLike(20_000);
    pair.client.sendText(message);
    assert.equal(pair.client.pendingBytes, 0);
    const bytes = drainOutput(pair.client);
    const frames = parseFrames(bytes, true);
    assert.equal(frames.length, 1);
    assert.equal(frames[0].rsv, RSV1);
    pair.server.receive(bytes);
    const text = pair.server.pollEvents().find((e) => e.type === "text");
    assert.ok(text && text.type === "text" && text.data === message);
  });

  test("the node:zlib codec, once loaded, compresses a small message before sendText returns", async () => {
    const pair = deflatePair({}, {}, { manual: true });
    pair.client.sendText(jsonLike(3000, 1)); // may load node:zlib (the first job of the process is asynchronous)
    await written(pair.client, 1, true);
    pair.client.sendText(jsonLike(3000, 2));
    const frames = parseFrames(drainOutput(pair.client), true);
    assert.equal(frames.length, 1, "written at once");
    assert.equal(frames[0].rsv, RSV1);
    abortBoth(pair);
  });
});
