/**
 * The suite judges: a conformance suite that passes everything proves nothing. Here it runs
 * against a naive hand-written WebSocket peer with one flaw at a time, in both roles, and must
 * give the flawed behaviour the verdict Autobahn (or the RFC) gives it; without the flaw, OK.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { runtime, runtimeName } from "../../adapters/auto.ts";
import type { Transport } from "../../adapters/shared/transport.ts";
import { selectCases } from "./cases.ts";
import { runFuzzingClient } from "./fuzzing-client.ts";
import { startFuzzingServer } from "./fuzzing-server.ts";
import { type CaseResult, DEFAULT_SETTINGS, type Settings, type Verdict } from "./session.ts";
import {
  acceptFor,
  closePayload,
  concat,
  FrameReader,
  frameBytes,
  HeadReader,
  isUtf8,
  OP,
  Random,
  textEncoder,
} from "./wire.ts";

type Flaw =
  | "none"
  | "no-checks" // echoes whatever it gets: no RSV, opcode, control-frame or UTF-8 checks
  | "late-utf8" // checks UTF-8 only once a message is complete
  | "wrong-masking" // masks as a server, does not mask as a client
  | "keeps-tcp" // (server) does not close TCP after the closing handshake
  | "no-close-reply" // never answers a close frame
  | "code-1011" // fails with 1011 instead of the right code
  | "no-inflate"; // negotiates permessage-deflate, then echoes the compressed bytes as they came, without RSV1

/** A naive endpoint on a transport whose handshake is done: echoes messages, answers pings and closes. */
function naivePeer(transport: Transport, isServer: boolean, flaw: Flaw) {
  const reader = new FrameReader();
  const random = new Random(7);
  let message: { opcode: number; chunks: Uint8Array[] } | null = null;
  let closed = false;
  const mask = () => ((isServer ? flaw === "wrong-masking" : flaw !== "wrong-masking") ? random.bytes(4) : null);
  const send = (opcode: number, payload: Uint8Array) => transport.write([frameBytes(opcode, payload, true, 0, mask())]);
  const fail = (code: number) => {
    if (closed) return;
    closed = true;
    send(OP.CLOSE, closePayload(flaw === "code-1011" ? 1011 : code));
    if (isServer) transport.end();
  };
  const strict = flaw !== "no-checks";
  return {
    onData(chunk: Uint8Array) {
      for (const f of reader.push(chunk)) {
        if (closed && f.opcode !== OP.CLOSE) continue;
        if (strict && ((f.rsv !== 0 && !(flaw === "no-inflate" && f.rsv === 4)) || (f.opcode > 2 && f.opcode < 8) || f.opcode > 10)) return fail(1002);
        if (strict && f.opcode >= 8 && (!f.fin || f.payload.length > 125)) return fail(1002);
        if (f.opcode === OP.PING) send(OP.PONG, f.payload);
        else if (f.opcode === OP.CLOSE) {
          const code = f.payload.length >= 2 ? (f.payload[0] << 8) | f.payload[1] : 1000;
          const validCode = (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999);
          if (strict && !closed && (f.payload.length === 1 || !validCode)) return fail(1002);
          if (!closed && flaw !== "no-close-reply") send(OP.CLOSE, f.payload.subarray(0, 2));
          closed = true;
          if (isServer && flaw !== "keeps-tcp" && flaw !== "no-close-reply") transport.end();
        } else if (f.opcode < 3) {
          if (f.opcode === 0 ? message === null : message !== null) {
            if (strict) return fail(1002);
            if (message === null) continue;
          }
          if (f.opcode !== 0) message = { opcode: f.opcode, chunks: [] };
          message!.chunks.push(f.payload);
          const data = concat(message!.chunks);
          const utf8Now = flaw !== "late-utf8" && flaw !== "no-checks";
          if (message!.opcode === OP.TEXT && utf8Now && !isUtf8(data) && !isUtf8Prefix(data)) return fail(1007);
          if (!f.fin) continue;
          if (message!.opcode === OP.TEXT && flaw !== "no-checks" && !isUtf8(data)) return fail(1007);
          send(message!.opcode, data);
          message = null;
        }
      }
    },
    onEnd() {
      transport.end();
    },
    onDrain() {},
    onClose() {},
  };
}

/** Whether `data` could still become valid UTF-8 (an incomplete last character). */
function isUtf8Prefix(data: Uint8Array): boolean {
  for (let cut = 1; cut <= 3 && cut <= data.length; cut++) if (isUtf8(data.subarray(0, data.length - cut))) {
    const tail = data.subarray(data.length - cut);
    const lead = tail[0];
    const need = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc2 ? 2 : 0;
    if (need > cut && tail.subarray(1).every((b) => b >= 0x80 && b < 0xc0)) {
      // the first continuation byte's range, per lead byte (RFC 3629 §4)
      const b1 = tail[1];
      if (b1 === undefined) return true;
      if (lead === 0xe0) return b1 >= 0xa0;
      if (lead === 0xed) return b1 < 0xa0;
      if (lead === 0xf0) return b1 >= 0x90;
      if (lead === 0xf4) return b1 < 0x90;
      return lead <= 0xf4;
    }
  }
  return false;
}

/** A naive server with `flaw`, on loopback. */
async function naiveServer(flaw: Flaw) {
  const listener = await runtime.listen({ port: 0, hostname: "127.0.0.1" }, (transport) => {
    const head = new HeadReader();
    let inner: ReturnType<typeof naivePeer> | null = null;
    return {
      onData(chunk) {
        if (inner) return inner.onData(chunk);
        const request = head.push(chunk);
        if (!request) return;
        transport.write([textEncoder.encode(
          `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptFor(request.headers.get("sec-websocket-key")!)}\r\n` +
            (flaw === "no-inflate" && request.headers.get("sec-websocket-extensions")?.includes("permessage-deflate") ? "Sec-WebSocket-Extensions: permessage-deflate\r\n" : "") + "\r\n",
        )]);
        inner = naivePeer(transport, true, flaw);
        if (request.rest.length) inner.onData(request.rest);
      },
      onEnd: () => (inner ? inner.onEnd() : transport.end()),
      onDrain() {},
      onClose() {},
    };
  });
  return { url: `ws://127.0.0.1:${listener.port}/`, close: () => listener.close() };
}

/** A naive client with `flaw`: opens `url`, resolves once closed. */
function naiveClient(url: string, flaw: Flaw): Promise<void> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const head = new HeadReader();
    let inner: ReturnType<typeof naivePeer> | null = null;
    runtime.dial({ host: u.hostname, port: Number(u.port) }, (transport) => ({
      onData(chunk) {
        if (inner) return inner.onData(chunk);
        const response = head.push(chunk);
        if (!response) return;
        inner = naivePeer(transport, false, flaw);
        if (response.rest.length) inner.onData(response.rest);
      },
      onEnd: () => transport.end(),
      onDrain() {},
      onClose: () => resolve(),
    })).then((transport) => {
      transport.write([textEncoder.encode(
        `GET ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n` +
          (flaw === "no-inflate" ? "Sec-WebSocket-Extensions: permessage-deflate\r\n" : "") + "\r\n",
      )]);
    }, reject);
  });
}

const settings: Settings = { ...DEFAULT_SETTINGS, seed: 1, patience: 150, timeScale: 1, closeTimeout: 500, serverDropTimeout: 300 };

/** [flaw, case, verdict expected] */
const EXPECTATIONS: [Flaw, string, Verdict][] = [
  ["none", "1.1.6", "OK"],
  ["none", "2.10", "OK"],
  ["none", "3.2", "OK"],
  ["none", "5.6", "OK"],
  ["none", "6.4.1", "OK"],
  ["none", "7.3.6", "OK"],
  ["none", "7.9.3", "OK"],
  ["no-checks", "3.1", "FAILED"], // echoes a frame it had to reject
  ["no-checks", "4.1.1", "FAILED"], // ignores a reserved opcode: never fails the connection
  ["no-checks", "2.5", "FAILED"], // answers a 126-byte ping
  ["no-checks", "6.3.1", "FAILED"], // echoes invalid UTF-8 (itself a violation)
  ["no-checks", "5.9", "FAILED"],
  ["no-checks", "7.9.3", "FAILED"], // echoes close code 1004
  ["late-utf8", "6.4.1", "NON-STRICT"],
  ["late-utf8", "6.4.3", "NON-STRICT"],
  ["late-utf8", "6.3.1", "OK"],
  ["wrong-masking", "1.1.1", "FAILED"],
  ["no-close-reply", "7.3.3", "FAILED"],
  ["code-1011", "3.1", "NON-STRICT"], // Autobahn: WRONG CODE
  ["code-1011", "6.3.1", "NON-STRICT"],
  ["none", "12.1.1", "INFORMATIONAL"], // does not negotiate permessage-deflate (Autobahn: UNIMPLEMENTED)
  ["no-inflate", "12.2.10", "FAILED"], // binary: the echo differs
  ["no-inflate", "13.1.4", "FAILED"], // text: compressed bytes are not UTF-8
];
const SERVER_ONLY: [Flaw, string, Verdict][] = [["keeps-tcp", "1.1.1", "NON-STRICT"]]; // FAILED BY CLIENT

describe(`conformance self-test on ${runtimeName}: flawed peers get the verdicts they deserve`, () => {
  // About 5 s each: over Bun's default per-test timeout for a bare `bun test` (npm test passes 60 s).
  test("fuzzing client × naive server", { timeout: 60_000 }, async () => {
    const wrong: string[] = [];
    for (const [flaw, id, verdict] of [...EXPECTATIONS, ...SERVER_ONLY]) {
      const server = await naiveServer(flaw);
      try {
        const [r] = await runFuzzingClient(selectCases([id]).filter((c) => c.id === id), { url: server.url, settings });
        if (r.verdict !== verdict) wrong.push(`${flaw} ${id}: ${r.verdict}, expected ${verdict} — ${r.observed}`);
      } finally {
        await server.close();
      }
    }
    assert.deepEqual(wrong, []);
  });

  test("naive client × fuzzing server", { timeout: 60_000 }, async () => {
    const fuzzer = await startFuzzingServer({ cases: selectCases(EXPECTATIONS.map(([, id]) => id)), settings });
    const wrong: string[] = [];
    try {
      for (const [flaw, id, verdict] of EXPECTATIONS) {
        const c = fuzzer.cases.find((x) => x.id === id)!;
        const result: Promise<CaseResult> = fuzzer.result(flaw, id);
        await naiveClient(fuzzer.caseUrl(c, flaw), flaw);
        const r = await result;
        if (r.verdict !== verdict) wrong.push(`${flaw} ${id}: ${r.verdict}, expected ${verdict} — ${r.observed}`);
      }
    } finally {
      await fuzzer.close();
    }
    assert.deepEqual(wrong, []);
  });
});
