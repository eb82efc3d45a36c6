/**
 * adapters/shared/session.ts: the deadlines of many sessions share one runtime timer. Each
 * session here drives a real ServerConnection that never gets an upgrade request, so its
 * deadline is the handshake timeout, answered with 408 (RFC 7231 §6.5.7) and the end of the
 * transport; the transport is an in-memory one that records when that happened. And the
 * session as the one layer that merges small writes: what one tick produced, as one write.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { ClientConnection, prepareMessage, ServerConnection } from "../../core/mod.ts";
import { concatBytes } from "../../core/bytes.ts";
import { COALESCE_LIMIT, Session, SessionHost, type SessionOwner } from "../../adapters/shared/session.ts";
import type { Transport } from "../../adapters/shared/transport.ts";
import { decodeLatin1 } from "../../core/http.ts";
import { delay } from "../support/time.ts";

/** A session of `host` whose connection's handshake times out after `timeout` ms; `ended` lists the order. */
function sessionTimingOut(host: SessionHost, name: string, timeout: number, ended: string[]) {
  const connection = new ServerConnection({ handshakeTimeout: timeout, now: performance.now(), onWake: host.wake });
  const owner: SessionOwner = { onEvent() {}, onDrain() {}, onTransportClose() {} };
  const session = new Session(host, connection, owner);
  const written: string[] = [];
  const transport: Transport = {
    write(chunks) {
      for (const chunk of chunks) written.push(decodeLatin1(chunk));
      return true;
    },
    bufferedAmount: 0,
    highWaterMark: 65536,
    releasesChunks: true,
    end() {
      ended.push(name);
      session.onClose();
    },
    destroy() {
      session.onClose();
    },
    pause() {},
    resume() {},
    remoteAddress: "",
    remotePort: 0,
  };
  session.bind(transport);
  return { session, written };
}

describe("session deadlines", () => {
  test("many sessions' deadlines are reached in order, each once; a closed session's never", async () => {
    const ended: string[] = [];
    const host = new SessionHost();
    const c = sessionTimingOut(host, "c", 90, ended);
    const a = sessionTimingOut(host, "a", 30, ended);
    const gone = sessionTimingOut(host, "gone", 45, ended);
    const b = sessionTimingOut(host, "b", 60, ended);
    const alsoA = sessionTimingOut(host, "a2", 30, ended);
    gone.session.onClose(); // the peer went away first: its deadline is dropped
    const deadline = performance.now() + 5000;
    while (ended.length < 4 && performance.now() < deadline) await delay(10);
    assert.deepEqual(ended, ["a", "a2", "b", "c"]);
    for (const s of [a, alsoA, b, c]) {
      assert.equal(s.written.length, 1, "one response each");
      assert.match(s.written[0], /^HTTP\/1\.1 408 /);
    }
    assert.deepEqual(gone.written, []);
    await delay(120);
    assert.deepEqual(ended, ["a", "a2", "b", "c"], "no deadline fires twice");
  });

  test("a deadline that goes away leaves the timer be; the next is still reached, not before its time", async () => {
    const ended: string[] = [];
    const host = new SessionHost();
    const started = performance.now();
    const early = sessionTimingOut(host, "early", 20, ended);
    const late = sessionTimingOut(host, "late", 80, ended);
    early.session.onClose(); // the timer stays due at 20 ms: it fires, finds nothing due, re-arms
    const deadline = performance.now() + 5000;
    while (ended.length < 1 && performance.now() < deadline) await delay(10);
    assert.deepEqual(ended, ["late"]);
    assert.ok(performance.now() - started >= 79, "the handshake timeout of 80 ms was not cut short");
    assert.match(late.written[0], /^HTTP\/1\.1 408 /);
  });

  test("connections that come and go in order set one runtime timer, and the last one clears it", () => {
    const realSet = globalThis.setTimeout;
    const realClear = globalThis.clearTimeout;
    let sets = 0;
    let clears = 0;
    globalThis.setTimeout = ((...args: Parameters<typeof setTimeout>) => (sets++, realSet(...args))) as typeof setTimeout;
    globalThis.clearTimeout = ((id?: Parameters<typeof clearTimeout>[0]) => (clears++, realClear(id))) as typeof clearTimeout;
    try {
      const host = new SessionHost();
      const sessions = Array.from({ length: 100 }, (_, i) => sessionTimingOut(host, `s${i}`, 10_000 + i, []));
      // Each closes while its deadline is the earliest: moving the timer later is left to the timer.
      for (const { session } of sessions) session.onClose();
    } finally {
      globalThis.setTimeout = realSet;
      globalThis.clearTimeout = realClear;
    }
    assert.equal(sets, 1, "one timer for 100 connections");
    assert.equal(clears, 1, "cleared when the last deadline went away");
  });
});

describe("session read limit", () => {
  test("reading stops while more than readLimit waits to be written (pongs included), and resumes at drain", async () => {
    const server = new ServerConnection({ handshakeTimeout: 0, now: performance.now() });
    const client = new ClientConnection({ host: "example.com", handshakeTimeout: 0 });
    const calls: string[] = [];
    let buffered = 0;
    const transport: Transport = {
      write(chunks) {
        for (const chunk of chunks) {
          buffered += chunk.length;
          client.receive(chunk.slice());
        }
        return buffered <= 1024; // the transport's high-water mark
      },
      get bufferedAmount() {
        return buffered;
      },
      highWaterMark: 1024,
      releasesChunks: true,
      end() {},
      destroy() {},
      pause: () => void calls.push("pause"),
      resume: () => void calls.push("resume"),
      remoteAddress: "",
      remotePort: 0,
    };
    const owner: SessionOwner = {
      onEvent: (event) => event.type === "upgrade" && server.accept(),
      onDrain: () => void calls.push("drain"),
      onTransportClose() {},
      onReadLimit: () => void calls.push("read limit"),
    };
    const session = new Session(new SessionHost(), server, owner);
    session.readLimit = 4096;
    session.bind(transport);
    session.onData(concatBytes(client.pollOutput()));
    await Promise.resolve(); // the session writes at the end of the tick
    assert.equal(client.readyState, 1, "open");
    let reads = 0;
    while (calls.length === 0 && reads < 1000) {
      client.ping("x".repeat(125)); // one ping a read: one pong each
      session.onData(concatBytes(client.pollOutput()));
      await Promise.resolve();
      reads++;
    }
    assert.deepEqual(calls, ["pause", "read limit"]);
    assert.ok(buffered > 4096 && buffered <= 4096 + 127, `stopped once over the limit (${buffered} buffered)`);
    buffered = 0;
    session.onDrain();
    assert.deepEqual(calls, ["pause", "read limit", "resume", "drain"]);
    session.onClose();
  });
});

/** An open server session over an in-memory transport that records each write() and what the client got. */
async function openSession(releasesChunks: boolean, host = new SessionHost()) {
  const server = new ServerConnection({ handshakeTimeout: 0, now: performance.now() });
  const client = new ClientConnection({ host: "example.com", handshakeTimeout: 0 });
  const writes: Uint8Array[][] = [];
  let buffered = 0;
  const transport: Transport = {
    write(chunks) {
      writes.push([...chunks]);
      for (const chunk of chunks) client.receive(chunk.slice());
      return true;
    },
    get bufferedAmount() {
      return buffered;
    },
    highWaterMark: 1 << 30,
    releasesChunks,
    end() {},
    destroy() {},
    pause() {},
    resume() {},
    remoteAddress: "",
    remotePort: 0,
  };
  const owner: SessionOwner = { onEvent: (event) => event.type === "upgrade" && server.accept(), onDrain() {}, onTransportClose() {} };
  const session = new Session(host, server, owner);
  session.bind(transport);
  session.onData(concatBytes(client.pollOutput()));
  await Promise.resolve();
  assert.equal(client.readyState, 1, "open");
  writes.length = 0;
  const texts = () => client.pollEvents().filter((e) => e.type === "text").map((e) => (e as { data: string }).data);
  return { server, client, session, writes, texts, setBuffered: (n: number) => void (buffered = n) };
}

describe("session write coalescing", () => {
  test("what one tick sends reaches the transport as one write, small frames in one chunk, in order", async () => {
    const { server, session, writes, texts } = await openSession(false);
    for (let i = 0; i < 50; i++) {
      server.sendText(`message ${i}`);
      session.write();
    }
    assert.equal(writes.length, 0, "nothing written before the end of the tick");
    assert.ok(session.bufferedAmount > 0, "the waiting bytes count in bufferedAmount");
    await Promise.resolve();
    assert.equal(writes.length, 1, "one write for the tick");
    assert.equal(writes[0].length, 1, "one chunk");
    assert.deepEqual(texts(), Array.from({ length: 50 }, (_, i) => `message ${i}`));
    assert.equal(session.bufferedAmount, 0);
  });

  test("a chunk too large to merge goes as it is; the small ones around it are merged", async () => {
    const { server, session, writes } = await openSession(false);
    const big = new Uint8Array(COALESCE_LIMIT + 1).fill(7);
    server.sendText("before");
    server.sendBinary(big);
    server.sendText("after");
    session.flush();
    await Promise.resolve();
    const chunks = writes.flat();
    assert.ok(chunks.some((c) => c === big), "the large payload, uncopied");
    assert.ok(chunks.every((c) => c === big || c.length < COALESCE_LIMIT));
  });

  test("merge buffers are reused only once the transport holds nothing, and never for one that keeps chunks", async () => {
    for (const releases of [true, false]) {
      const { server, session, writes, setBuffered } = await openSession(releases);
      const send = async () => {
        for (let i = 0; i < 8; i++) server.sendBinary(new Uint8Array(4000).fill(i));
        session.flush();
        await Promise.resolve();
        return writes.at(-1)![0];
      };
      setBuffered(1); // the transport still holds the first write
      const first = await send();
      const copy = first.slice();
      const second = await send();
      assert.notEqual(second.buffer, first.buffer, "not reused while the transport holds it");
      assert.deepEqual(first, copy, "the first write's bytes are untouched");
      setBuffered(0);
      const third = await send();
      if (releases) assert.equal(third.buffer === first.buffer || third.buffer === second.buffer, true, "reused once released");
      else assert.ok(third.buffer !== first.buffer && third.buffer !== second.buffer, "a transport that keeps chunks gets fresh ones");
    }
  });

  test("sockets sent the same frames in one turn each get all of them; one's released merge buffer never holds another's bytes", async () => {
    const host = new SessionHost();
    const a = await openSession(true, host);
    const b = await openSession(true, host);
    const binaries = (client: ClientConnection) =>
      client.pollEvents().filter((e) => e.type === "binary").map((e) => (e as { data: Uint8Array }).data[0]);
    /** `count` messages of `size` bytes (filled with `first`, `first + 1`, …), framed once, to both sockets in one turn. */
    const publish = async (first: number, count: number, size: number) => {
      for (let i = 0; i < count; i++) {
        const message = prepareMessage(new Uint8Array(size).fill(first + i));
        for (const s of [a, b]) {
          s.server.sendPrepared(message);
          s.session.write();
        }
      }
      await Promise.resolve(); // the host's task hands both sessions' output out
    };
    for (const [size, merged] of [[100, "small"], [4000, "large"]] as const) {
      a.setBuffered(0); // a's transport has sent everything at once...
      b.setBuffered(1); // ...b's still holds what it was given
      a.writes.length = b.writes.length = 0;
      await publish(0, 8, size);
      assert.deepEqual(binaries(a.client), [0, 1, 2, 3, 4, 5, 6, 7], `${merged} merges: a got every message in order`);
      assert.deepEqual(binaries(b.client), [0, 1, 2, 3, 4, 5, 6, 7], `${merged} merges: b got every message in order`);
      const held = b.writes[0][0];
      const copy = held.slice();
      await publish(100, 8, size); // a merges again, into a buffer its transport released
      assert.deepEqual(binaries(a.client), [100, 101, 102, 103, 104, 105, 106, 107]);
      assert.deepEqual(binaries(b.client), [100, 101, 102, 103, 104, 105, 106, 107]);
      assert.deepEqual(held, copy, `${merged} merges: what b's transport holds is untouched`);
    }
  });
});

