/**
 * What a peer's control frames may make the core queue (a ping flood is answered by a bounded
 * number of pongs per poll, RFC 6455 §5.5.3; a close is answered once), and sends that race with the peer's close:
 * dropped and reported, never thrown. Sends after our own close() still throw.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { encodeFrame, Opcode, ReadyState, WebSocketError } from "../../core/mod.ts";
import { MAX_PENDING_PONGS } from "../../core/connection.ts";
import { concatBytes } from "../../core/bytes.ts";
import { utf8 } from "../support/bytes.ts";
import { createPair } from "../support/core-pair.ts";
import { parseFrames } from "../support/frames.ts";

const KEY = new Uint8Array([0x12, 0x34, 0x56, 0x78]);

type Role = "server" | "client";

/** An open connection of `role`, fed raw frames as its peer would write them. */
function open(role: Role, options: { closeTimeout?: number; idleTimeout?: number } = {}) {
  const pair = createPair({ server: options, client: options });
  const conn = role === "server" ? pair.server : pair.client;
  conn.pollEvents();
  return {
    conn,
    /** A frame as the peer writes it: masked towards a server (RFC 6455 §5.3). */
    frame(opcode: number, payload: Uint8Array | string = new Uint8Array(0)): Uint8Array {
      const bytes = typeof payload === "string" ? utf8(payload) : payload;
      return concatBytes(encodeFrame(opcode, bytes, true, 0, role === "server" ? KEY : null));
    },
    /** What `conn` wrote since the last call, parsed back. */
    written() {
      return parseFrames(concatBytes(conn.pollOutput()), role === "client");
    },
  };
}

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

function errorCode(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof WebSocketError, `a WebSocketError, got ${error}`);
    return error.code;
  }
  assert.fail("expected a WebSocketError");
}

for (const role of ["server", "client"] as Role[]) {
  describe(`${role}: a ping flood`, () => {
    const pongPayloads = (frames: { opcode: number; payload: Uint8Array }[]) =>
      frames.map((f) => (f.opcode === Opcode.PONG ? text(f.payload) : `(opcode ${f.opcode}) ${text(f.payload)}`));

    test("a burst of pings read together is answered ping by ping, as peers expect (Autobahn 2.10)", () => {
      const side = open(role);
      const burst = Array.from({ length: 10 }, (_, i) => side.frame(Opcode.PING, `payload-${i}`));
      side.conn.receive(concatBytes(burst));
      assert.deepEqual(pongPayloads(side.written()), Array.from({ length: 10 }, (_, i) => `payload-${i}`));
    });

    test(`past ${MAX_PENDING_PONGS} pongs waiting to be polled, the last one is replaced by the latest ping's`, () => {
      const side = open(role);
      const pings: Uint8Array[] = [];
      for (let i = 0; i < 1000; i++) pings.push(side.frame(Opcode.PING, `ping ${i} `.padEnd(125, "x")));
      side.conn.receive(concatBytes(pings.slice(0, 500))); // one read
      for (const ping of pings.slice(500)) side.conn.receive(ping); // then one read each
      assert.equal(side.conn.pollEvents().filter((e) => e.type === "ping").length, 1000, "every ping is reported");
      const expected = [...Array.from({ length: MAX_PENDING_PONGS - 1 }, (_, i) => i), 999].map((i) => `ping ${i} `.padEnd(125, "x"));
      assert.deepEqual(pongPayloads(side.written()), expected);
    });

    test("the replaced pong keeps its place among the frames sent around it", () => {
      const side = open(role);
      side.conn.sendText("before");
      for (let i = 0; i < MAX_PENDING_PONGS; i++) side.conn.receive(side.frame(Opcode.PING, `a${i}`));
      side.conn.sendText("between");
      side.conn.receive(side.frame(Opcode.PING, "b"));
      side.conn.sendText("after");
      const firsts = Array.from({ length: MAX_PENDING_PONGS - 1 }, (_, i) => `a${i}`);
      assert.deepEqual(pongPayloads(side.written()), ["(opcode 1) before", ...firsts, "b", "(opcode 1) between", "(opcode 1) after"]);
    });

    test("pongs already polled are not touched: after a poll, pings are answered one by one again", () => {
      const side = open(role);
      for (let i = 0; i <= MAX_PENDING_PONGS; i++) side.conn.receive(side.frame(Opcode.PING, `first ${i}`));
      const polled = side.conn.pollOutput();
      const before = concatBytes(polled);
      side.conn.receive(side.frame(Opcode.PING, "second"));
      side.conn.receive(side.frame(Opcode.PING, "third"));
      assert.deepEqual(concatBytes(polled), before, "the polled chunks are unchanged");
      const firsts = [...Array.from({ length: MAX_PENDING_PONGS - 1 }, (_, i) => `first ${i}`), `first ${MAX_PENDING_PONGS}`];
      assert.deepEqual(pongPayloads(parseFrames(before, role === "client")), firsts);
      assert.deepEqual(pongPayloads(side.written()), ["second", "third"]);
    });

    test("a pong we send ourselves is never replaced, nor counted", () => {
      const side = open(role);
      side.conn.pong("mine");
      for (let i = 0; i < 20; i++) side.conn.receive(side.frame(Opcode.PING, `theirs ${i}`));
      const theirs = [...Array.from({ length: MAX_PENDING_PONGS - 1 }, (_, i) => `theirs ${i}`), "theirs 19"];
      assert.deepEqual(pongPayloads(side.written()), ["mine", ...theirs]);
    });

    test("a pong flood costs no output and leaves nothing pending", () => {
      const side = open(role);
      const pongs: Uint8Array[] = [];
      for (let i = 0; i < 1000; i++) pongs.push(side.frame(Opcode.PONG, "x".repeat(125)));
      side.conn.receive(concatBytes(pongs));
      assert.equal(side.conn.pollEvents().length, 1000);
      assert.deepEqual(side.written(), []);
      assert.equal(side.conn.pendingBytes, 0);
    });
  });

  describe(`${role}: a close flood`, () => {
    test("close frames in one read and in later reads are answered by one close frame", () => {
      const side = open(role);
      const close = side.frame(Opcode.CLOSE, new Uint8Array([0x03, 0xe8]));
      side.conn.receive(concatBytes(Array.from({ length: 100 }, () => close)));
      for (let i = 0; i < 100; i++) side.conn.receive(close);
      assert.deepEqual(side.written().map((f) => f.opcode), [Opcode.CLOSE]);
      assert.deepEqual(side.conn.pollEvents().map((e) => e.type), ["close"]);
      side.conn.receive(close);
      assert.deepEqual(side.written(), [], "nothing more, ever");
    });

    test("after our own close, the peer's close frames are answered by nothing", () => {
      const side = open(role);
      side.conn.close(1000);
      assert.equal(side.written().length, 1);
      const close = side.frame(Opcode.CLOSE, new Uint8Array([0x03, 0xe8]));
      for (let i = 0; i < 100; i++) side.conn.receive(close);
      assert.deepEqual(side.written(), []);
    });
  });

  describe(`${role}: a send that races with the end of the connection is dropped, not thrown`, () => {
    test("open: every send returns true", () => {
      const side = open(role);
      assert.equal(side.conn.sendText("t"), true);
      assert.equal(side.conn.sendBinary(new Uint8Array(1)), true);
      assert.equal(side.conn.ping("p"), true);
      assert.equal(side.conn.pong("q"), true);
      assert.equal(side.written().length, 4);
    });

    test("after the peer's close frame: sends return false and nothing is written after the close reply", () => {
      const side = open(role);
      side.conn.receive(concatBytes([side.frame(Opcode.TEXT, "bye soon"), side.frame(Opcode.CLOSE, new Uint8Array([0x03, 0xe8]))]));
      // The close takes effect once the message read before it was polled (RFC 6455 §5.5.1).
      assert.deepEqual(side.conn.pollEvents().map((e) => e.type), ["text"]);
      assert.equal(side.conn.sendText("reply"), true, "a reply to the message goes out before the close reply");
      assert.deepEqual(side.conn.pollEvents().map((e) => e.type), ["close"]);
      assert.equal(side.conn.sendText("late"), false);
      assert.equal(side.conn.sendText("x".repeat(2000)), false);
      assert.equal(side.conn.sendBinary(new Uint8Array(3)), false);
      assert.equal(side.conn.ping(), false);
      assert.equal(side.conn.pong(), false);
      if (role === "server") {
        // Prepared messages (pub/sub) race the same way.
        assert.equal(side.conn.sendPrepared({ chunks: [new Uint8Array([0x81, 0])], size: 0 }), false);
      }
      assert.deepEqual(side.written().map((f) => f.opcode), [Opcode.TEXT, Opcode.CLOSE]);
    });

    test("after the end of the stream (no close frame): sends return false", () => {
      const side = open(role);
      side.conn.receiveEof();
      assert.equal(side.conn.readyState, ReadyState.CLOSED);
      assert.equal(side.conn.sendText("late"), false);
      assert.equal(side.conn.sendBinary(new Uint8Array(1)), false);
      assert.equal(side.conn.ping(), false);
      assert.deepEqual(side.written(), []);
    });

    test("after the peer's protocol error failed the connection: sends return false", () => {
      const side = open(role);
      side.conn.receive(side.frame(Opcode.CONTINUATION, "no message to continue"));
      assert.equal(side.conn.readyState, ReadyState.CLOSING);
      assert.equal(side.conn.sendText("late"), false);
      assert.equal(side.conn.pong(), false);
      assert.deepEqual(side.written().map((f) => f.opcode), [Opcode.CLOSE]);
    });

    test("after an idle timeout closed it: sends return false", () => {
      const side = open(role, { idleTimeout: 100 });
      side.conn.tick(100);
      assert.equal(side.conn.readyState, ReadyState.CLOSING);
      assert.equal(side.conn.sendText("late"), false);
      assert.deepEqual(side.written().map((f) => f.opcode), [Opcode.CLOSE]);
    });

    test("after our own close(), or abort(), a send is misuse and throws", () => {
      const side = open(role);
      assert.equal(side.conn.sendText("last"), true);
      side.conn.close(1000);
      assert.equal(errorCode(() => side.conn.sendText("late")), "ERR_INVALID_STATE");
      assert.equal(errorCode(() => side.conn.sendBinary(new Uint8Array(1))), "ERR_INVALID_STATE");
      assert.equal(errorCode(() => side.conn.ping()), "ERR_INVALID_STATE");
      // Our close was first: the peer's answer does not turn a late send into a race.
      side.conn.receive(side.frame(Opcode.CLOSE, new Uint8Array([0x03, 0xe8])));
      assert.equal(side.conn.readyState, ReadyState.CLOSED);
      assert.equal(errorCode(() => side.conn.sendText("later")), "ERR_INVALID_STATE");

      const aborted = open(role);
      assert.equal(aborted.conn.ping(), true);
      aborted.conn.abort();
      assert.equal(errorCode(() => aborted.conn.sendText("late")), "ERR_INVALID_STATE");
    });
  });
}
