import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  ClientConnection,
  type Connection,
  type ConnectionEvent,
  encodeFrame,
  type Extension,
  ExtensionError,
  type ExtensionParam,
  Opcode,
  ReadyState,
  RSV1,
  ServerConnection,
  type ServerExtensionFactory,
  createTuning,
  SlabAllocator,
  type ClientExtensionFactory,
  WebSocketError,
} from "../../core/mod.ts";
import { concatBytes, isSlabPiece } from "../../core/bytes.ts";
import { utf8 } from "../support/bytes.ts";
import { testAsciiDecoder } from "../support/core-settings.ts";
import { createPair, drainOutput, type Pair } from "../support/core-pair.ts";
import { type Frame, parseFrames } from "../support/frames.ts";
import { delay } from "../support/time.ts";
import { heldBytes } from "../fuzz/core-runner.ts";

const KEY = new Uint8Array([0x12, 0x34, 0x56, 0x78]);

type Role = "server" | "client";
const ROLES: Role[] = ["server", "client"];

/** An open connection of `role`, and a way to play its peer with raw frames. */
function open(role: Role, pair: Pair = createPair()) {
  const conn = role === "server" ? pair.server : pair.client;
  const peer = role === "server" ? pair.client : pair.server;
  const events = role === "server" ? pair.serverEvents : pair.clientEvents;
  events.length = 0;
  return {
    conn,
    peer,
    /** Feeds a frame as the peer would write it (masked towards a server). */
    frame(opcode: number, payload: Uint8Array | string = new Uint8Array(0), fin = true, rsv = 0) {
      conn.receive(rawFrame(role, opcode, payload, fin, rsv));
    },
    raw(bytes: Uint8Array) {
      conn.receive(bytes);
    },
    events(): ConnectionEvent[] {
      // Until none are left, as an owner polls: an ending held behind events comes next.
      for (let polled = conn.pollEvents(); polled.length !== 0; polled = conn.pollEvents()) events.push(...polled);
      const out = events.slice();
      events.length = 0;
      return out;
    },
    /** Frames `conn` wrote, parsed back. */
    written(): Frame[] {
      return parseFrames(drainOutput(conn), role === "client");
    },
  };
}

function rawFrame(to: Role, opcode: number, payload: Uint8Array | string, fin = true, rsv = 0): Uint8Array {
  const bytes = typeof payload === "string" ? utf8(payload) : payload;
  const chunks = encodeFrame(opcode, bytes, fin, rsv, to === "server" ? KEY : null);
  return concatBytes(chunks);
}

function closeFrameCode(frame: { opcode: number; payload: Uint8Array }): number {
  assert.equal(frame.opcode, Opcode.CLOSE);
  return (frame.payload[0] << 8) | frame.payload[1];
}

/** Asserts that the connection failed with `code`: an error event and a close frame with that code. */
function assertFailed(side: ReturnType<typeof open>, code: number, reasonPattern?: RegExp) {
  const error = side.events().find((e) => e.type === "error");
  assert.ok(error && error.type === "error", "an error event");
  assert.equal(error.code, code);
  if (reasonPattern) assert.match(error.reason, reasonPattern);
  const frames = side.written();
  assert.equal(frames.length, 1, "exactly one frame written: the close frame");
  assert.equal(closeFrameCode(frames[0]), code);
  return error;
}

for (const role of ROLES) {
  const masked = role === "server";
  describe(`${role}: receiving messages`, () => {
    test("text, binary, and empty messages", () => {
      const side = open(role);
      side.frame(Opcode.TEXT, "héllo");
      side.frame(Opcode.BINARY, new Uint8Array([0, 255]));
      side.frame(Opcode.TEXT, "");
      side.frame(Opcode.BINARY, new Uint8Array(0));
      const events = side.events();
      assert.deepEqual(events.map((e) => e.type), ["text", "binary", "text", "binary"]);
      assert.deepEqual(events[0], { type: "text", data: "héllo" });
      assert.deepEqual(events[1].type === "binary" && [...events[1].data], [0, 255]);
      assert.deepEqual(events[2], { type: "text", data: "" });
    });

    test("a BOM at the start of a text message is kept", () => {
      const side = open(role);
      side.frame(Opcode.TEXT, "\uFEFFx");
      assert.deepEqual(side.events(), [{ type: "text", data: "\uFEFFx" }]);
    });

    test("fragments are reassembled, with control frames between them", () => {
      const side = open(role);
      side.frame(Opcode.TEXT, "Hel", false);
      side.frame(Opcode.PING, "p");
      side.frame(Opcode.CONTINUATION, "l", false);
      side.frame(Opcode.PONG, "q");
      side.frame(Opcode.CONTINUATION, "o", true);
      const events = side.events();
      assert.deepEqual(events.map((e) => e.type), ["ping", "pong", "text"]);
      assert.deepEqual(events[2], { type: "text", data: "Hello" });
      const written = side.written();
      assert.equal(written.length, 1);
      assert.equal(written[0].opcode, Opcode.PONG);
      assert.deepEqual([...written[0].payload], [...utf8("p")]);
    });

    test("a continuation frame without a message to continue is a protocol error", () => {
      const side = open(role);
      side.frame(Opcode.CONTINUATION, "x");
      assertFailed(side, 1002, /continuation/);
    });

    test("a new data frame inside a fragmented message is a protocol error", () => {
      const side = open(role);
      side.frame(Opcode.TEXT, "a", false);
      side.frame(Opcode.BINARY, "b");
      assertFailed(side, 1002, /inside a fragmented message/);
    });

    test("reserved opcodes are protocol errors", () => {
      for (const opcode of [3, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf]) {
        const side = open(role);
        side.frame(opcode, "x");
        assertFailed(side, 1002, /reserved opcode/);
      }
    });

    test("RSV bits without a negotiated extension are protocol errors", () => {
      for (const rsv of [0x40, 0x20, 0x10]) {
        const side = open(role);
        side.frame(Opcode.TEXT, "x", true, rsv);
        assertFailed(side, 1002, /reserved bits/);
      }
    });

    test("masking in the wrong direction is a protocol error", () => {
      const side = open(role);
      // A server receives a frame that is not masked; a client a frame that is.
      side.raw(concatBytes(encodeFrame(Opcode.TEXT, utf8("x"), true, 0, masked ? null : KEY)));
      assertFailed(side, 1002, masked ? /not masked/ : /is masked/);
    });

    test("a 64-bit length with the most significant bit set is a protocol error", () => {
      const side = open(role);
      const header = [0x82, (masked ? 0x80 : 0) | 127, 0x80, 0, 0, 0, 0, 0, 0, 1, ...(masked ? [1, 2, 3, 4] : [])];
      side.raw(new Uint8Array(header));
      assertFailed(side, 1002, /most significant bit/);
    });

    test("a 64-bit length above 2^53 is refused as too big", () => {
      const side = open(role);
      const header = [0x82, (masked ? 0x80 : 0) | 127, 0x00, 0x40, 0, 0, 0, 0, 0, 0, ...(masked ? [1, 2, 3, 4] : [])];
      side.raw(new Uint8Array(header));
      assertFailed(side, 1009);
    });

    test("a declared 1 GiB frame is refused at its header, before any payload arrives", () => {
      const side = open(role);
      const length = 1024 ** 3;
      const header = [0x82, (masked ? 0x80 : 0) | 127, 0, 0, 0, 0, 0x40, 0, 0, 0, ...(masked ? [1, 2, 3, 4] : [])];
      assert.equal(new DataView(new Uint8Array(header).buffer).getUint32(6), length);
      side.raw(new Uint8Array(header));
      assertFailed(side, 1009, /message over/);
    });

    test("a message over maxMessageSize across fragments is refused", () => {
      const side = open(role, createPair({ server: { maxMessageSize: 10 }, client: { maxMessageSize: 10 } }));
      side.frame(Opcode.BINARY, new Uint8Array(6), false);
      assert.deepEqual(side.events(), []);
      side.frame(Opcode.CONTINUATION, new Uint8Array(5), true);
      assertFailed(side, 1009);
    });

    test("connections opened one after another with different limits each keep their own", () => {
      // Equal options are resolved into one shared object; different ones must never be mixed up.
      const strict = open(role, createPair({ server: { maxMessageSize: 10 }, client: { maxMessageSize: 10 } }));
      const lax = open(role, createPair());
      const strictAgain = open(role, createPair({ server: { maxMessageSize: 10 }, client: { maxMessageSize: 10 } }));
      lax.frame(Opcode.BINARY, new Uint8Array(11));
      assert.deepEqual(lax.events().map((e) => e.type), ["binary"]);
      strict.frame(Opcode.BINARY, new Uint8Array(11));
      assertFailed(strict, 1009, /message over 10 bytes/);
      strictAgain.frame(Opcode.BINARY, new Uint8Array(11));
      assertFailed(strictAgain, 1009, /message over 10 bytes/);
    });

    test("100,000 one-byte fragments without FIN are held in bounded memory, then the fragment limit applies", () => {
      const side = open(role);
      const fragment = rawFrame(role, Opcode.CONTINUATION, new Uint8Array([7]), false);
      side.frame(Opcode.BINARY, new Uint8Array([7]), false);
      for (let i = 1; i < 100_000; i++) side.raw(fragment.slice());
      assert.deepEqual(side.events(), [], "no event while the message is incomplete");
      side.raw(fragment.slice());
      assertFailed(side, 1009, /more than 100000 frames/);
    });

    test("a configured fragment limit is enforced", () => {
      const side = open(role, createPair({ server: { maxFragments: 3 }, client: { maxFragments: 3 } }));
      side.frame(Opcode.TEXT, "a", false);
      side.frame(Opcode.CONTINUATION, "b", false);
      side.frame(Opcode.CONTINUATION, "c", false);
      assert.deepEqual(side.events(), []);
      side.frame(Opcode.CONTINUATION, "d", true);
      assertFailed(side, 1009);
    });

    test("invalid UTF-8 fails as soon as the bad fragment arrives", () => {
      const side = open(role);
      side.frame(Opcode.TEXT, utf8("κόσμε"), false);
      assert.deepEqual(side.events(), []);
      side.frame(Opcode.CONTINUATION, new Uint8Array([0xce, 0xba, 0xed, 0xa0, 0x80]), false); // a surrogate
      assertFailed(side, 1007, /UTF-8/);
    });

    test("invalid UTF-8 split mid-character across fragments fails on the byte that breaks it", () => {
      const side = open(role);
      side.frame(Opcode.TEXT, new Uint8Array([0x61, 0xf4]), false); // F4 may start U+10xxxx
      assert.deepEqual(side.events(), []);
      side.frame(Opcode.CONTINUATION, new Uint8Array([0x90]), false); // F4 90 would be above U+10FFFF
      assertFailed(side, 1007);
    });

    test("invalid UTF-8 in a frame that arrives in pieces fails before the rest of the frame", () => {
      const side = open(role);
      const frame = rawFrame(role, Opcode.TEXT, new Uint8Array([0x61, 0x62, 0xc0, 0x80, 0x63, 0x64]));
      const headerLength = masked ? 6 : 2;
      side.raw(frame.slice(0, headerLength + 3)); // "ab" and the invalid lead byte C0
      assertFailed(side, 1007);
    });

    test("a text message ending inside a character is invalid", () => {
      const side = open(role);
      side.frame(Opcode.TEXT, new Uint8Array([0x61, 0xe2, 0x82]), false);
      side.frame(Opcode.CONTINUATION, new Uint8Array(0), true);
      assertFailed(side, 1007);
    });

    test("a valid character split across fragments is accepted", () => {
      const side = open(role);
      const euro = utf8("€"); // E2 82 AC
      side.frame(Opcode.TEXT, euro.subarray(0, 1), false);
      side.frame(Opcode.CONTINUATION, euro.subarray(1, 2), false);
      side.frame(Opcode.CONTINUATION, euro.subarray(2), true);
      assert.deepEqual(side.events(), [{ type: "text", data: "€" }]);
    });

    // Text up to the lenient-decode limit (256 by default; none on Deno) is decoded leniently and
    // checked for U+FFFD; longer text strictly. Both ways, with a 300-byte message on each side.
    for (const [size, limit] of [[8, 256], [300, 256], [300, Infinity]]) {
      const label = `${size}-byte text frame, lenient-decode limit ${limit}`;
      const tuning = createTuning({ lenientDecodeLimit: limit });
      const openTuned = () => open(role, createPair({ [role]: { tuning } }));

      test(`a whole ${label}, with bytes that are not UTF-8, fails with 1007`, () => {
        const invalid = [[0x80], [0xc0, 0x80], [0xed, 0xa0, 0x80], [0xf5, 0x80, 0x80, 0x80], [0xe2, 0x82]];
        for (const bad of invalid) {
          const side = openTuned();
          const payload = new Uint8Array(size).fill(0x61);
          payload.set(bad, size - bad.length);
          side.frame(Opcode.TEXT, payload);
          assertFailed(side, 1007, /UTF-8/);
        }
      });

      test(`a real U+FFFD in a ${label} is delivered, whole or in fragments`, () => {
        const text = "\ufffd".padEnd(size - 2, "x");
        const whole = openTuned();
        whole.frame(Opcode.TEXT, text);
        assert.deepEqual(whole.events(), [{ type: "text", data: text }]);
        const pieces = openTuned();
        const bytes = utf8(text);
        pieces.frame(Opcode.TEXT, bytes.subarray(0, 2), false); // inside the character
        pieces.frame(Opcode.CONTINUATION, bytes.subarray(2), true);
        assert.deepEqual(pieces.events(), [{ type: "text", data: text }]);
      });
    }

    test("large messages stream as fragments past streamThreshold", () => {
      const side = open(role, createPair({ server: { streamThreshold: 4 }, client: { streamThreshold: 4 } }));
      side.frame(Opcode.TEXT, "ab", false);
      side.frame(Opcode.CONTINUATION, "cd€", false); // crosses the threshold: "abcd€" so far
      side.frame(Opcode.CONTINUATION, "ef", true);
      side.frame(Opcode.BINARY, new Uint8Array([1, 2, 3, 4, 5, 6]));
      side.frame(Opcode.TEXT, "abc");
      const events = side.events();
      assert.deepEqual(events.slice(0, 2), [
        { type: "fragment", binary: false, data: "abcd€", fin: false },
        { type: "fragment", binary: false, data: "ef", fin: true },
      ]);
      assert.equal(events[2].type, "fragment");
      assert.deepEqual(events[2].type === "fragment" && [...(events[2].data as Uint8Array)], [1, 2, 3, 4, 5, 6]);
      assert.deepEqual(events[3], { type: "text", data: "abc" }, "small messages still arrive whole");
    });

    test("pings are answered with the same payload, unless autoPong is off", () => {
      const side = open(role);
      side.frame(Opcode.PING, "12345");
      assert.deepEqual(side.events().map((e) => e.type), ["ping"]);
      const [pong] = side.written();
      assert.equal(pong.opcode, Opcode.PONG);
      assert.deepEqual(new TextDecoder().decode(pong.payload), "12345");

      const quiet = open(role, createPair({ server: { autoPong: false }, client: { autoPong: false } }));
      quiet.frame(Opcode.PING, "x");
      assert.equal(quiet.events().length, 1);
      assert.deepEqual(quiet.written(), []);
    });

    test("a 125-byte ping is fine; control frames of 126 bytes or fragmented are protocol errors", () => {
      const side = open(role);
      side.frame(Opcode.PING, new Uint8Array(125));
      assert.equal(side.written()[0].payload.length, 125);
      const big = open(role);
      big.frame(Opcode.PING, new Uint8Array(126));
      assertFailed(big, 1002, /125/);
      const fragmented = open(role);
      fragmented.frame(Opcode.PING, "x", false);
      assertFailed(fragmented, 1002, /fragmented control/);
    });

    test("RSV1 on a control frame is a protocol error", () => {
      const side = open(role);
      side.frame(Opcode.PING, "x", true, RSV1);
      assertFailed(side, 1002);
    });
  });

  describe(`${role}: the closing handshake`, () => {
    test("a close from the peer is echoed, and the connection closes cleanly", () => {
      const side = open(role);
      side.frame(Opcode.CLOSE, new Uint8Array([0x03, 0xe8, ...utf8("done")]));
      assert.deepEqual(side.events(), [
        { type: "close", code: 1000, reason: "done", wasClean: true, sent: { code: 1000, reason: "" }, received: { code: 1000, reason: "done" }, initiator: "remote" },
      ]);
      const [reply] = side.written();
      assert.equal(closeFrameCode(reply), 1000);
      assert.equal(side.conn.readyState, ReadyState.CLOSED);
      // RFC 6455 §7.1.1: the server closes TCP at once; the client waits for the server to.
      assert.equal(side.conn.closeExpected, role === "server");
    });

    test("an empty close frame is answered with an empty one and reported as 1005", () => {
      const side = open(role);
      side.frame(Opcode.CLOSE);
      assert.deepEqual(side.events(), [
        { type: "close", code: 1005, reason: "", wasClean: true, sent: { code: 1005, reason: "" }, received: { code: 1005, reason: "" }, initiator: "remote" },
      ]);
      const [reply] = side.written();
      assert.equal(reply.opcode, Opcode.CLOSE);
      assert.equal(reply.payload.length, 0);
    });

    test("a 1-byte close payload is a protocol error", () => {
      const side = open(role);
      side.frame(Opcode.CLOSE, new Uint8Array([0x03]));
      assertFailed(side, 1002, /1-byte/);
    });

    test("every invalid close code is a protocol error", () => {
      for (const code of [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535]) {
        const side = open(role);
        side.frame(Opcode.CLOSE, new Uint8Array([code >> 8, code & 0xff]));
        assertFailed(side, 1002, new RegExp(`invalid close code ${code}`));
      }
    });

    test("every valid close code is echoed", () => {
      for (const code of [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999]) {
        const side = open(role);
        side.frame(Opcode.CLOSE, new Uint8Array([code >> 8, code & 0xff]));
        assert.deepEqual(side.events(), [
          { type: "close", code, reason: "", wasClean: true, sent: { code, reason: "" }, received: { code, reason: "" }, initiator: "remote" },
        ]);
        assert.equal(closeFrameCode(side.written()[0]), code);
      }
    });

    test("a close reason that is not UTF-8 is invalid payload", () => {
      const side = open(role);
      side.frame(Opcode.CLOSE, new Uint8Array([0x03, 0xe8, 0xff]));
      assertFailed(side, 1007, /reason/);
    });

    test("bytes after a close frame are ignored", () => {
      const side = open(role);
      side.raw(concatBytes([rawFrame(role, Opcode.CLOSE, new Uint8Array([0x03, 0xe8])), rawFrame(role, Opcode.TEXT, "late")]));
      side.frame(Opcode.TEXT, "later");
      assert.deepEqual(side.events().map((e) => e.type), ["close"]);
      assert.equal(side.written().length, 1);
    });

    test("closing first: CLOSING until the peer answers, messages still arrive meanwhile", () => {
      const side = open(role);
      side.conn.close(4000, "bye");
      assert.equal(side.conn.readyState, ReadyState.CLOSING);
      const [frame] = side.written();
      assert.equal(closeFrameCode(frame), 4000);
      assert.equal(new TextDecoder().decode(frame.payload.subarray(2)), "bye");
      side.frame(Opcode.TEXT, "in flight");
      side.frame(Opcode.PING, "p");
      const [pong] = side.written();
      assert.equal(pong.opcode, Opcode.PONG, "pings are still answered after our close frame (RFC 6455 §5.5.2)");
      side.frame(Opcode.CLOSE, new Uint8Array([0x0f, 0xa0]));
      assert.deepEqual(side.events().map((e) => e.type), ["text", "ping", "close"]);
      assert.equal(side.conn.readyState, ReadyState.CLOSED);
      assert.deepEqual(side.written(), [], "nothing more is sent");
    });

    test("we close first: the close event has the peer's code, our close frame and theirs, and says we initiated", () => {
      const side = open(role);
      side.conn.close(4000, "bye");
      side.written();
      side.frame(Opcode.CLOSE, new Uint8Array([0x03, 0xe8, ...utf8("ok")]));
      assert.deepEqual(side.events(), [
        { type: "close", code: 1000, reason: "ok", wasClean: true, sent: { code: 4000, reason: "bye" }, received: { code: 1000, reason: "ok" }, initiator: "local" },
      ]);
    });

    test("the peer closes first: the close event has its frame and our echo, and says it initiated", () => {
      const side = open(role);
      side.frame(Opcode.CLOSE, new Uint8Array([0x0f, 0xa1, ...utf8("later")]));
      assert.deepEqual(side.events(), [
        { type: "close", code: 4001, reason: "later", wasClean: true, sent: { code: 4001, reason: "" }, received: { code: 4001, reason: "later" }, initiator: "remote" },
      ]);
      assert.equal(closeFrameCode(side.written()[0]), 4001);
    });

    test("we fail the connection: the close event has the 1002 we sent, and no peer frame (its answer is not read)", () => {
      const side = open(role);
      side.frame(Opcode.CONTINUATION, "x");
      const error = assertFailed(side, 1002);
      // RFC 6455 §7.1.7: after failing, nothing more is read, the peer's close frame included.
      side.frame(Opcode.CLOSE, new Uint8Array([0x03, 0xe8]));
      side.conn.receiveEof();
      assert.deepEqual(side.events(), [
        { type: "close", code: 1006, reason: "", wasClean: false, sent: { code: 1002, reason: error.reason }, received: null, initiator: "local" },
      ]);
    });

    test("closing first with no answer: after closeTimeout the connection is closed uncleanly", () => {
      const side = open(role, createPair({ server: { closeTimeout: 500 }, client: { closeTimeout: 500 } }));
      side.conn.close();
      assert.equal(side.written()[0].payload.length, 0, "close() without a code sends an empty close frame");
      assert.equal(side.conn.deadline, 500);
      side.conn.tick(499);
      assert.equal(side.conn.readyState, ReadyState.CLOSING);
      side.conn.tick(500);
      assert.deepEqual(side.events(), [
        { type: "close", code: 1006, reason: "", wasClean: false, sent: { code: 1005, reason: "" }, received: null, initiator: "local" },
      ]);
      assert.equal(side.conn.closeExpected, true);
    });

    test("once closeTimeout has given up on the peer's close frame, later frames are not read (RFC 6455 §7.1.1)", () => {
      const side = open(role, createPair({ server: { closeTimeout: 30 }, client: { closeTimeout: 30 } }));
      side.conn.close(1000);
      side.written();
      side.conn.tick(30);
      assert.deepEqual(side.events(), [
        { type: "close", code: 1006, reason: "", wasClean: false, sent: { code: 1000, reason: "" }, received: null, initiator: "local" },
      ]);
      assert.equal(side.conn.readyState, ReadyState.CLOSED);
      side.frame(Opcode.TEXT, "hi");
      side.frame(Opcode.PING, "p");
      assert.deepEqual(side.events(), [], "nothing after the close event");
      assert.deepEqual(side.written(), [], "no pong either");
    });

    test("the end of the byte stream mid-message closes with 1006", () => {
      const side = open(role);
      side.frame(Opcode.TEXT, "part", false);
      side.conn.receiveEof();
      assert.deepEqual(side.events(), [{ type: "close", code: 1006, reason: "", wasClean: false, sent: null, received: null, initiator: null }]);
      assert.equal(side.conn.closeExpected, true);
    });

    test("after failing, nothing more is read and the close event follows the end of the stream", () => {
      const side = open(role);
      side.frame(Opcode.CONTINUATION, "x");
      assertFailed(side, 1002);
      assert.equal(side.conn.readyState, ReadyState.CLOSING);
      assert.equal(side.conn.closeExpected, role === "server");
      side.frame(Opcode.TEXT, "ignored");
      side.frame(Opcode.CLOSE, new Uint8Array([0x03, 0xea]));
      assert.deepEqual(side.events(), []);
      side.conn.receiveEof();
      const [close] = side.events();
      assert.ok(close.type === "close");
      assert.deepEqual([close.code, close.wasClean, close.sent?.code, close.received, close.initiator], [1006, false, 1002, null, "local"]);
    });

    test("abort() ends at once and drops unsent output", () => {
      const side = open(role);
      side.conn.sendText("never");
      side.conn.abort();
      assert.deepEqual(side.written(), []);
      assert.deepEqual(side.events(), [{ type: "close", code: 1006, reason: "", wasClean: false, sent: null, received: null, initiator: null }]);
      assert.equal(side.conn.closeExpected, true);
    });
  });

  describe(`${role}: local misuse throws typed errors`, () => {
    const code = (fn: () => void) => {
      try {
        fn();
      } catch (error) {
        assert.ok(error instanceof WebSocketError);
        return error.code;
      }
      assert.fail("expected a WebSocketError");
    };

    test("invalid close codes, long reasons, a reason without a code", () => {
      const side = open(role);
      for (const bad of [0, 999, 1004, 1005, 1006, 1015, 2999, 5000, 1000.5]) {
        assert.equal(code(() => side.conn.close(bad)), "ERR_INVALID_CLOSE_CODE");
      }
      assert.equal(code(() => side.conn.close(1000, "é".repeat(62))), "ERR_REASON_TOO_LONG"); // 124 bytes
      assert.equal(code(() => side.conn.close(undefined, "why")), "ERR_INVALID_ARGUMENT");
      assert.equal(side.conn.readyState, ReadyState.OPEN, "nothing happened");
      side.conn.close(1000, "x".repeat(123));
      assert.equal(side.written()[0].payload.length, 125);
    });

    test("control payloads over 125 bytes, text bytes that are not UTF-8", () => {
      const side = open(role);
      assert.equal(code(() => side.conn.ping(new Uint8Array(126))), "ERR_CONTROL_PAYLOAD_TOO_LONG");
      assert.equal(code(() => side.conn.pong("x".repeat(126))), "ERR_CONTROL_PAYLOAD_TOO_LONG");
      assert.equal(code(() => side.conn.sendText(new Uint8Array([0xff]))), "ERR_INVALID_UTF8");
      side.conn.sendText(utf8("ok"));
      assert.deepEqual(new TextDecoder().decode(side.written()[0].payload), "ok");
    });

    test("sending after close, and close twice", () => {
      const side = open(role);
      side.conn.close(1000);
      side.conn.close(1001); // no effect
      assert.equal(side.written().length, 1);
      assert.equal(code(() => side.conn.sendText("late")), "ERR_INVALID_STATE");
      assert.equal(code(() => side.conn.ping()), "ERR_INVALID_STATE");
    });

    test("switching message type in the middle of a fragmented send", () => {
      const side = open(role);
      side.conn.sendText("a", { fin: false });
      assert.equal(code(() => side.conn.sendBinary(new Uint8Array(1))), "ERR_INVALID_STATE");
      side.conn.sendText("b");
      const frames = side.written();
      assert.deepEqual(frames.map((f) => [f.opcode, f.fin]), [[Opcode.TEXT, false], [Opcode.CONTINUATION, true]]);
    });
  });

  describe(`${role}: sending`, () => {
    test("fragmentSize splits messages; pings may go between our own fragments", () => {
      const side = open(role, createPair({ server: { fragmentSize: 4 }, client: { fragmentSize: 4 } }));
      side.conn.sendText("abcdefghij");
      side.conn.sendBinary(new Uint8Array(4));
      const frames = side.written();
      assert.deepEqual(frames.map((f) => [f.opcode, f.fin, f.payload.length]), [
        [Opcode.TEXT, false, 4],
        [Opcode.CONTINUATION, false, 4],
        [Opcode.CONTINUATION, true, 2],
        [Opcode.BINARY, true, 4],
      ]);
    });

    test("frames are masked only by the client, with a fresh key each", () => {
      const side = open(role);
      side.conn.sendBinary(new Uint8Array(2000));
      side.conn.sendBinary(new Uint8Array(10));
      const bytes = drainOutput(side.conn);
      assert.equal((bytes[1] & 0x80) !== 0, role === "client");
      const frames = parseFrames(bytes, role === "client");
      assert.deepEqual(frames.map((f) => f.payload.every((b) => b === 0)), [true, true]);
      if (role === "client") {
        const secondKeyAt = 4 + 4 + 2000 + 2;
        assert.notDeepEqual(bytes.slice(4, 8), bytes.slice(secondKeyAt, secondKeyAt + 4));
      }
    });

    test("a large binary payload a server sends is not copied", () => {
      if (role !== "server") return;
      const side = open(role);
      const payload = new Uint8Array(100_000);
      side.conn.sendBinary(payload);
      const chunks = side.conn.pollOutput();
      assert.equal(chunks.length, 2);
      assert.equal(chunks[1], payload);
    });
  });

  describe(`${role}: time`, () => {
    test("keepalive pings after silence; an answer keeps the connection, silence fails it with 1011", () => {
      const pair = createPair({
        server: { keepaliveInterval: 1000, pongTimeout: 300 },
        client: { keepaliveInterval: 1000, pongTimeout: 300 },
      });
      const side = open(role, pair);
      assert.equal(side.conn.deadline, 1000);
      side.conn.tick(1000);
      const [ping] = side.written();
      assert.equal(ping.opcode, Opcode.PING);
      assert.equal(side.conn.deadline, 1300);
      side.conn.tick(1200);
      side.frame(Opcode.PONG);
      assert.equal(side.conn.deadline, 2200, "the next ping is due after another interval of silence");
      side.conn.tick(2200);
      assert.equal(side.written()[0].opcode, Opcode.PING);
      side.conn.tick(2500);
      const events = side.events();
      assert.deepEqual(events.find((e) => e.type === "error"), { type: "error", code: 1011, reason: "keepalive ping timeout" });
      assert.equal(closeFrameCode(side.written()[0]), 1011);
      assert.equal(side.conn.closeExpected, true);
    });

    test("idleTimeout closes with 1001 after silence in both directions", () => {
      const side = open(role, createPair({ server: { idleTimeout: 1000 }, client: { idleTimeout: 1000 } }));
      side.conn.tick(600);
      side.conn.sendText("activity");
      side.written();
      assert.equal(side.conn.deadline, 1600);
      side.conn.tick(1600);
      const [close] = side.written();
      assert.equal(closeFrameCode(close), 1001);
      assert.equal(new TextDecoder().decode(close.payload.subarray(2)), "idle timeout");
      assert.equal(side.conn.readyState, ReadyState.CLOSING);
    });

    test("no deadline unless a timeout is configured", () => {
      const side = open(role);
      assert.equal(side.conn.deadline, Infinity);
    });
  });
}

describe("server: the opening handshake", () => {
  const request = (extra = "") =>
    utf8(
      "GET /chat?room=1 HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" + extra + "\r\n",
    );

  test("an upgrade request is reported; accept() answers 101 and opens", () => {
    const server = new ServerConnection();
    server.receive(request("Origin: https://app.example\r\nSec-WebSocket-Protocol: chat, superchat\r\n"));
    const [event] = server.pollEvents();
    assert.equal(event.type, "upgrade");
    assert.ok(event.type === "upgrade");
    assert.equal(event.request.path, "/chat");
    assert.equal(event.request.query, "room=1");
    assert.equal(event.request.origin, "https://app.example");
    assert.deepEqual(event.request.protocols, ["chat", "superchat"]);
    assert.equal(server.readyState, ReadyState.CONNECTING);
    server.accept({ protocol: "superchat", headers: { "X-Extra": "1" } });
    const response = new TextDecoder().decode(drainOutput(server));
    assert.match(response, /^HTTP\/1\.1 101 /);
    assert.match(response, /\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK\+xOo=\r\n/i);
    assert.match(response, /\r\nSec-WebSocket-Protocol: superchat\r\n/i);
    assert.match(response, /\r\nX-Extra: 1\r\n/i);
    const [openEvent] = server.pollEvents();
    assert.ok(openEvent.type === "open");
    assert.equal(openEvent.protocol, "superchat");
    assert.equal(server.readyState, ReadyState.OPEN);
  });

  test("frames sent right behind the request are processed after accept()", () => {
    const server = new ServerConnection();
    server.receive(concatBytes([request(), rawFrame("server", Opcode.TEXT, "early")]));
    assert.deepEqual(server.pollEvents().map((e) => e.type), ["upgrade"]);
    server.accept();
    assert.deepEqual(server.pollEvents().map((e) => e.type), ["open", "text"]);
  });

  test("accepting a subprotocol the client did not offer throws", () => {
    const server = new ServerConnection();
    server.receive(request("Sec-WebSocket-Protocol: chat\r\n"));
    assert.throws(() => server.accept({ protocol: "other" }), WebSocketError);
  });

  test("reject() answers with the status, headers and body, and closes", () => {
    const server = new ServerConnection();
    server.receive(request());
    server.pollEvents();
    server.reject({ status: 403, headers: { "X-Why": "origin" }, body: "forbidden" });
    const response = new TextDecoder().decode(drainOutput(server));
    assert.match(response, /^HTTP\/1\.1 403 /);
    assert.match(response, /\r\nX-Why: origin\r\n/i);
    assert.match(response, /\r\n\r\nforbidden$/);
    assert.equal(server.closeExpected, true);
    assert.deepEqual(server.pollEvents().map((e) => e.type), ["handshake_failed", "close"]);
    assert.throws(() => server.accept(), (e: unknown) => e instanceof WebSocketError && e.code === "ERR_INVALID_STATE");
  });

  test("an invalid request is rejected with its status by the connection itself", () => {
    const server = new ServerConnection();
    server.receive(utf8("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n"));
    const [failed] = server.pollEvents();
    assert.ok(failed.type === "handshake_failed");
    assert.equal(failed.status, 400);
    assert.match(failed.reason, /Sec-WebSocket-Key/);
    assert.match(new TextDecoder().decode(drainOutput(server)), /^HTTP\/1\.1 400 /);
    assert.equal(server.closeExpected, true);
  });

  test("after a rejected request, later bytes are not read as frames (RFC 6455 §4.2.2)", () => {
    const server = new ServerConnection();
    server.receive(utf8("GET / HTTP/1.1\r\nHost: x\r\nBad header\r\n\r\n"));
    const events = server.pollEvents();
    assert.deepEqual(events.map((e) => e.type), ["handshake_failed", "close"]);
    assert.ok(events[0].type === "handshake_failed" && events[0].status === 400);
    assert.match(new TextDecoder().decode(drainOutput(server)), /^HTTP\/1\.1 400 /);
    // A masked empty-keyed ping "hi", then a masked text "hi".
    server.receive(new Uint8Array([0x89, 0x82, 0, 0, 0, 0, 0x68, 0x69, 0x81, 0x82, 0, 0, 0, 0, 0x68, 0x69]));
    assert.deepEqual(server.pollEvents(), [], "nothing after the close event");
    assert.equal(drainOutput(server).length, 0, "no pong");
  });

  test("a version other than 13 gets 426 with Sec-WebSocket-Version: 13", () => {
    const server = new ServerConnection();
    server.receive(utf8(new TextDecoder().decode(request()).replace("Version: 13", "Version: 8")));
    const response = new TextDecoder().decode(drainOutput(server));
    assert.match(response, /^HTTP\/1\.1 426 /);
    assert.match(response, /\r\nSec-WebSocket-Version: 13\r\n/i);
  });

  test("a slow handshake is cut at the handshake timeout with 408; an unanswered one with 503", () => {
    const slow = new ServerConnection({ handshakeTimeout: 5000, now: 100 });
    slow.receive(request().subarray(0, 10));
    assert.equal(slow.deadline, 5100);
    slow.tick(5100);
    assert.match(new TextDecoder().decode(drainOutput(slow)), /^HTTP\/1\.1 408 /);
    assert.equal(slow.closeExpected, true);

    const unanswered = new ServerConnection({ handshakeTimeout: 5000 });
    unanswered.receive(request());
    unanswered.tick(5000);
    assert.match(new TextDecoder().decode(drainOutput(unanswered)), /^HTTP\/1\.1 503 /);
  });

  test("bytes sent before accept() are held up to httpLimits.maxHeadSize, then refused with 400", () => {
    const server = new ServerConnection({ httpLimits: { maxHeadSize: 1024 } });
    server.receive(request());
    server.pollEvents();
    server.receive(new Uint8Array(1000));
    server.receive(new Uint8Array(24));
    assert.equal(server.readyState, ReadyState.CONNECTING, "1024 bytes are held");
    assert.equal(drainOutput(server).length, 0);
    server.receive(new Uint8Array(1));
    assert.match(new TextDecoder().decode(drainOutput(server)), /^HTTP\/1\.1 400 /);
    assert.deepEqual(server.pollEvents().map((e) => e.type), ["handshake_failed", "close"]);
  });

  test("reject() lets go of the bytes that arrived before it", () => {
    const server = new ServerConnection();
    server.receive(request());
    server.pollEvents();
    server.receive(rawFrame("server", Opcode.BINARY, new Uint8Array(10_000)));
    assert.ok(heldBytes(server) >= 10_000, "held until answered");
    server.reject({ status: 403 });
    drainOutput(server);
    assert.ok(heldBytes(server) < 10_000, `still holding ${heldBytes(server)} bytes`);
  });

  test("bytes piled up before accept() are bounded", () => {
    const server = new ServerConnection();
    server.receive(request());
    for (let i = 0; i < 20; i++) server.receive(new Uint8Array(64 * 1024));
    assert.equal(server.closeExpected, true);
    assert.match(new TextDecoder().decode(drainOutput(server)), /^HTTP\/1\.1 400 /);
  });
});

describe("client: the opening handshake", () => {
  function clientAndKey(options: Partial<ConstructorParameters<typeof ClientConnection>[0]> = {}) {
    const client = new ClientConnection({ host: "example.com:8080", path: "/ws?x=1", ...options });
    const request = new TextDecoder().decode(drainOutput(client));
    const key = /\r\nSec-WebSocket-Key: ([^\r]+)\r\n/i.exec(request)![1];
    return { client, request, key };
  }

  test("the request carries host, path, key, version, protocols, origin and headers", () => {
    const { request } = clientAndKey({ protocols: ["a", "b"], origin: "https://o.example", headers: [["X-Token", "t"]] });
    assert.match(request, /^GET \/ws\?x=1 HTTP\/1\.1\r\n/);
    assert.match(request, /\r\nHost: example\.com:8080\r\n/i);
    assert.match(request, /\r\nSec-WebSocket-Version: 13\r\n/i);
    assert.match(request, /\r\nSec-WebSocket-Protocol: a, b\r\n/i);
    assert.match(request, /\r\nOrigin: https:\/\/o\.example\r\n/i);
    assert.match(request, /\r\nX-Token: t\r\n/i);
  });

  test("a response is checked; frames in the same chunk as the 101 are processed", () => {
    const server = new ServerConnection();
    const { client, request } = clientAndKey();
    server.receive(utf8(request));
    server.pollEvents();
    server.accept();
    server.sendText("welcome");
    client.receive(drainOutput(server));
    assert.deepEqual(client.pollEvents().map((e) => e.type), ["open", "text"]);
  });

  test("a non-101 response is reported with status, headers and body", () => {
    const { client } = clientAndKey();
    client.receive(utf8("HTTP/1.1 403 Forbidden\r\nContent-Length: 5\r\nX-A: b\r\n\r\nnope!"));
    const [failed, close] = client.pollEvents();
    assert.ok(failed.type === "handshake_failed");
    assert.equal(failed.status, 403);
    assert.equal(failed.headers?.get("x-a"), "b");
    assert.equal(new TextDecoder().decode(failed.body), "nope!");
    assert.deepEqual(close, { type: "close", code: 1006, reason: "", wasClean: false, sent: null, received: null, initiator: null });
    assert.equal(client.closeExpected, true);
  });

  test("after a refused response, later bytes are not read as frames (RFC 6455 §4.1)", () => {
    const { client } = clientAndKey();
    client.receive(utf8("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n"));
    assert.deepEqual(client.pollEvents().map((e) => e.type), ["handshake_failed", "close"]);
    client.receive(new Uint8Array([0x89, 0x02, 0x68, 0x69, 0x81, 0x02, 0x68, 0x69]));
    assert.deepEqual(client.pollEvents(), [], "nothing after the close event");
    assert.equal(drainOutput(client).length, 0, "no pong");
  });

  test("a wrong accept key fails the handshake", () => {
    const { client } = clientAndKey();
    client.receive(utf8("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"));
    const [failed] = client.pollEvents();
    assert.ok(failed.type === "handshake_failed");
    assert.match(failed.reason, /Accept/i);
  });

  test("the end of the stream during the handshake fails it", () => {
    const { client } = clientAndKey();
    client.receive(utf8("HTTP/1.1 101 Switching"));
    client.receiveEof();
    const [failed, close] = client.pollEvents();
    assert.equal(failed.type, "handshake_failed");
    assert.equal(close.type, "close");
  });

  test("close() while connecting abandons the handshake", () => {
    const { client } = clientAndKey();
    client.close();
    assert.deepEqual(client.pollEvents().map((e) => e.type), ["handshake_failed", "close"]);
    assert.equal(client.closeExpected, true);
  });

  test("handshake timeout", () => {
    const { client } = clientAndKey({ handshakeTimeout: 1000 });
    client.tick(1000);
    const [failed] = client.pollEvents();
    assert.ok(failed.type === "handshake_failed");
    assert.match(failed.reason, /timeout/);
  });

  test("a server that accepts an extension that was not offered fails the handshake", async () => {
    const { acceptKey } = await import("../../core/handshake.ts");
    const { client, key } = clientAndKey();
    client.receive(
      utf8(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
          `Sec-WebSocket-Accept: ${acceptKey(key)}\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n`,
      ),
    );
    const [failed] = client.pollEvents();
    assert.ok(failed.type === "handshake_failed");
    assert.match(failed.reason, /not offered/);
  });
});

// ---- The extension interface, with a toy extension that owns RSV1 and flips every bit. ----

function flip(bytes: Uint8Array): Uint8Array {
  return bytes.map((b) => b ^ 0xff);
}

function flipExtension(async: boolean, log: string[] = []): Extension {
  let n = 0;
  return {
    name: "x-flip",
    rsvBits: RSV1,
    decode(payload, rsv, maxSize) {
      assert.equal(rsv, RSV1);
      const out = flip(payload);
      if (out.length > maxSize) throw new ExtensionError(1009, "flipped message too big");
      if (new TextDecoder().decode(out) === "boom") throw new ExtensionError(1007, "cannot decode boom");
      log.push("decode");
      // Later messages finish first: the connection must still deliver them in order.
      return async ? delay(20 - (n++ % 3) * 8).then(() => out) : out;
    },
    encode(payload) {
      const out = { data: flip(payload), rsv: RSV1 };
      return async ? delay(20 - (n++ % 3) * 8).then(() => out) : out;
    },
    dispose() {
      log.push("dispose");
    },
  };
}

function flipPair(async: boolean, log: string[] = [], serverOffers = true, closeTimeout?: number) {
  const serverFactory: ServerExtensionFactory = {
    name: "x-flip",
    negotiate(offers: ExtensionParam[][]) {
      assert.deepEqual(offers, [[{ name: "level", value: "1" }]]);
      return { params: [], extension: flipExtension(async, log) };
    },
  };
  const clientFactory: ClientExtensionFactory = {
    name: "x-flip",
    offers: () => [[{ name: "level", value: "1" }]],
    accept: () => flipExtension(async, log),
  };
  const wakes = { count: 0, woken: new Set<Connection>() };
  const onWake = (connection: Connection) => {
    wakes.count++;
    wakes.woken.add(connection);
  };
  const pair = createPair({
    server: { extensions: serverOffers ? [serverFactory] : [], onWake, closeTimeout },
    client: { extensions: [clientFactory], onWake },
  });
  return { pair, wakes };
}

async function settle(pair: Pair) {
  for (let i = 0; i < 20; i++) {
    await delay(25);
    pair.pump();
  }
}

describe("extensions", () => {
  test("negotiated on both sides; messages are transformed and carry RSV1 on the first frame only", () => {
    const { pair } = flipPair(false);
    assert.ok(pair.clientEvents[0].type === "open" && pair.clientEvents[0].extensions === "x-flip");
    pair.client.sendText("hello");
    const frames = parseFrames(drainOutput(pair.client), true);
    assert.equal(frames[0].rsv, RSV1);
    assert.deepEqual(frames[0].payload, flip(utf8("hello")));
    pair.server.receive(concatBytes(encodeFrame(Opcode.TEXT, flip(utf8("hello")), true, RSV1, KEY)));
    pair.server.receive(concatBytes(encodeFrame(Opcode.TEXT, utf8("plain"), true, 0, KEY)));
    assert.deepEqual(pair.server.pollEvents(), [
      { type: "text", data: "hello" },
      { type: "text", data: "plain" },
    ]);
  });

  test("a fragmented transformed message: RSV1 on the first frame, none on continuations", () => {
    const { pair } = flipPair(false);
    const data = flip(utf8("abcdef"));
    pair.server.receive(concatBytes(encodeFrame(Opcode.BINARY, data.subarray(0, 3), false, RSV1, KEY)));
    pair.server.receive(concatBytes(encodeFrame(Opcode.CONTINUATION, data.subarray(3), true, 0, KEY)));
    const [event] = pair.server.pollEvents();
    assert.ok(event.type === "binary");
    assert.equal(new TextDecoder().decode(event.data), "abcdef");
    pair.server.receive(concatBytes(encodeFrame(Opcode.BINARY, data, false, RSV1, KEY)));
    pair.server.receive(concatBytes(encodeFrame(Opcode.CONTINUATION, data, true, RSV1, KEY)));
    assert.equal(pair.server.pollEvents()[0].type, "error");
  });

  test("not negotiated when the server does not support it; RSV1 is then a protocol error", () => {
    const { pair } = flipPair(false, [], false);
    assert.ok(pair.clientEvents[0].type === "open" && pair.clientEvents[0].extensions === "");
    pair.client.sendText("x");
    assert.equal(parseFrames(drainOutput(pair.client), true)[0].rsv, 0);
    pair.server.receive(concatBytes(encodeFrame(Opcode.TEXT, utf8("x"), true, RSV1, KEY)));
    const [error] = pair.server.pollEvents();
    assert.deepEqual(error, { type: "error", code: 1002, reason: "reserved bits set without a negotiated extension that defines them" });
  });

  test("compress: false sends a message untransformed", () => {
    const { pair } = flipPair(false);
    pair.server.sendText("raw", { compress: false });
    const [frame] = parseFrames(drainOutput(pair.server), false);
    assert.equal(frame.rsv, 0);
    assert.equal(new TextDecoder().decode(frame.payload), "raw");
  });

  test("an extension's error fails the connection with its close code", () => {
    const { pair } = flipPair(false);
    pair.server.receive(concatBytes(encodeFrame(Opcode.TEXT, flip(utf8("boom")), true, RSV1, KEY)));
    const [error] = pair.server.pollEvents();
    assert.deepEqual(error, { type: "error", code: 1007, reason: "cannot decode boom" });
  });

  test("asynchronous decoding and encoding keep messages in order, with the close frame last", async () => {
    const log: string[] = [];
    const { pair, wakes } = flipPair(true, log);
    for (let i = 0; i < 6; i++) pair.client.sendText(`m${i}`);
    pair.client.ping("between");
    pair.client.sendBinary(new Uint8Array([9]));
    pair.client.close(1000, "done");
    await settle(pair);
    assert.deepEqual(pair.serverEvents.filter((e) => e.type === "text").map((e) => e.type === "text" && e.data), [
      "m0", "m1", "m2", "m3", "m4", "m5",
    ]);
    const types = pair.serverEvents.map((e) => e.type);
    assert.deepEqual(types.slice(-2), ["binary", "close"]);
    assert.ok(types.includes("ping"));
    assert.equal(pair.client.readyState, ReadyState.CLOSED);
    assert.ok(wakes.count > 0, "onWake told the owner about asynchronous results");
    // The client encoded asynchronously and the server decoded so: each was woken, with itself.
    assert.ok(wakes.woken.size === 2 && wakes.woken.has(pair.client) && wakes.woken.has(pair.server), "onWake is given its connection");
    assert.ok(log.includes("dispose"));
  });
  test("a message still being decoded when the close timeout ends the connection is not delivered after the close event", async () => {
    const { pair } = flipPair(true, [], true, 30);
    pair.server.close(1000);
    drainOutput(pair.server);
    pair.server.receive(concatBytes(encodeFrame(Opcode.TEXT, flip(utf8("late")), true, RSV1, KEY)));
    pair.server.receive(concatBytes(encodeFrame(Opcode.PING, utf8("p"), true, 0, KEY)));
    pair.server.tick(30);
    await delay(60);
    assert.deepEqual(pair.server.pollEvents(), [
      { type: "close", code: 1006, reason: "", wasClean: false, sent: { code: 1000, reason: "" }, received: null, initiator: "local" },
    ]);
  });
});

describe("prepared messages (pub/sub)", () => {
  test("framed once, the same bytes go to every server connection and arrive as messages", async () => {
    const { prepareMessage } = await import("../../core/connection.ts");
    const text = prepareMessage("to all");
    const binary = prepareMessage(new Uint8Array(5000));
    const pairs = [createPair(), createPair()];
    for (const pair of pairs) {
      pair.clientEvents.length = 0;
      pair.server.sendPrepared(text);
      pair.server.sendPrepared(binary);
      const chunks = pair.server.pollOutput();
      assert.equal(chunks[chunks.length - 1], binary.chunks[binary.chunks.length - 1], "not copied");
      pair.client.receive(concatBytes(chunks));
      const events = pair.client.pollEvents();
      assert.deepEqual(events[0], { type: "text", data: "to all" });
      assert.ok(events[1].type === "binary" && events[1].data.length === 5000);
    }
    assert.throws(() => pairs[0].client.sendPrepared(text), WebSocketError);
    assert.throws(() => prepareMessage(new Uint8Array([0xff]), false), WebSocketError);
  });
});

describe("client sending does not touch the caller's bytes", () => {
  /** A Uint8Array whose slice() is a view, as Node's Buffer is. */
  class ViewSlicing extends Uint8Array {
    override slice(start?: number, end?: number): Uint8Array<ArrayBuffer> {
      return this.subarray(start, end);
    }
  }

  test("binary and UTF-8 text payloads of every size class stay as they were", () => {
    for (const size of [10, 200, 1025, 2000, 70_000]) {
      const side = open("client");
      const payload = new ViewSlicing(size).fill(0x61);
      side.conn.sendBinary(payload);
      side.conn.sendText(payload);
      assert.ok(payload.every((b) => b === 0x61), `payload of ${size} bytes unchanged`);
      const frames = side.written();
      assert.ok(frames.every((f) => f.payload.length === size && f.payload.every((b) => b === 0x61)));
    }
  });
});

test("a tuning's lenient-decode limit is a size in bytes (or Infinity): others are refused, by createTuning and by a connection", () => {
  const refused = (error: unknown) => error instanceof WebSocketError && error.code === "ERR_INVALID_ARGUMENT";
  for (const bad of [NaN, -1]) {
    assert.throws(() => createTuning({ lenientDecodeLimit: bad }), refused);
    const tuning = { ...createTuning(), lenientDecodeLimit: bad };
    assert.throws(() => new ServerConnection({ tuning }), refused);
  }
  assert.equal(createTuning({ lenientDecodeLimit: Infinity }).lenientDecodeLimit, Infinity);
});

// The path is taken before payloads are copied out of the chunk (Tuning.payloadCopyLimit, 128 on Bun).
for (const copyLimit of [0, 128]) describe(`the ASCII decoder fast path (Tuning.asciiDecoder)${copyLimit ? ", short payloads copied" : ""}`, () => {
  /** A connection of `role` with a spying decoder installed; `ranges` lists what it was asked to decode, `buffers` from where. */
  function spied(options = {}, role: Role = "server") {
    const ranges: string[] = [];
    const buffers: Uint8Array[] = [];
    const tuning = createTuning({
      payloadCopyLimit: copyLimit,
      asciiDecoder(bytes, start, end) {
        const text = testAsciiDecoder(bytes, start, end);
        ranges.push(text);
        buffers.push(bytes);
        return text;
      },
    });
    return { side: open(role, createPair({ [role]: { ...options, tuning } })), ranges, buffers, restore: () => {} };
  }

  test("both roles: the payload is unmasked into one scratch buffer for it, and the received chunk is left as it was", () => {
    for (const role of ROLES) {
      const { side, ranges, buffers, restore } = spied({}, role);
      try {
        const chunk = concatBytes([rawFrame(role, Opcode.TEXT, "first"), rawFrame(role, Opcode.TEXT, "second one")]);
        const original = chunk.slice();
        side.raw(chunk);
        assert.deepEqual(side.events(), [{ type: "text", data: "first" }, { type: "text", data: "second one" }], role);
        assert.deepEqual(ranges, ["first", "second one"]);
        assert.deepEqual(chunk, original, `${role}: the chunk is unchanged`);
        assert.notEqual(buffers[0].buffer, chunk.buffer);
        assert.equal(buffers[0], buffers[1], "one scratch buffer, reused");
      } finally {
        restore();
      }
    }
  });

  test("a whole short ASCII text frame is decoded from the chunk by it", () => {
    const { side, ranges, restore } = spied();
    try {
      side.frame(Opcode.TEXT, "hello");
      side.frame(Opcode.TEXT, "");
      assert.deepEqual(side.events(), [{ type: "text", data: "hello" }, { type: "text", data: "" }]);
      assert.deepEqual(ranges, ["hello", ""]);
    } finally {
      restore();
    }
  });

  test("short non-ASCII text is unmasked into the scratch buffer too, and decoded there: the received chunk is left as it was", () => {
    const { side, ranges, restore } = spied();
    try {
      const chunk = concatBytes([rawFrame("server", Opcode.TEXT, "héllo wörld"), rawFrame("server", Opcode.TEXT, "\u{1f600}")]);
      const original = chunk.slice();
      side.raw(chunk);
      assert.deepEqual(side.events(), [{ type: "text", data: "héllo wörld" }, { type: "text", data: "\u{1f600}" }]);
      assert.deepEqual(chunk, original);
      assert.deepEqual(ranges, [], "not given to the ASCII decoder");
    } finally {
      restore();
    }
  });

  test("with no decoder set, short ASCII text is still decoded from the scratch buffer: the received chunk is left as it was", () => {
    {
      const side = open("server", createPair({ server: { tuning: createTuning({ payloadCopyLimit: copyLimit }) } }));
      const chunk = concatBytes([rawFrame("server", Opcode.TEXT, "hello"), rawFrame("server", Opcode.TEXT, "x".repeat(256))]);
      const original = chunk.slice();
      side.raw(chunk);
      assert.deepEqual(side.events(), [{ type: "text", data: "hello" }, { type: "text", data: "x".repeat(256) }]);
      assert.deepEqual(chunk, original);
    }
  });

  test("other text is not given to it, with the same results: non-ASCII, fragmented, long, split across reads, past streamThreshold", () => {
    const { side, ranges, restore } = spied();
    try {
      side.frame(Opcode.TEXT, "héllo");
      side.frame(Opcode.TEXT, "ab", false);
      side.frame(Opcode.CONTINUATION, "cd", true);
      const long = "x".repeat(257);
      side.frame(Opcode.TEXT, long);
      const frame = rawFrame("server", Opcode.TEXT, "split");
      side.raw(frame.slice(0, frame.length - 2));
      side.raw(frame.slice(frame.length - 2));
      assert.deepEqual(side.events(), [
        { type: "text", data: "héllo" },
        { type: "text", data: "abcd" },
        { type: "text", data: long },
        { type: "text", data: "split" },
      ]);
      assert.deepEqual(ranges, []);
    } finally {
      restore();
    }
    const streamed = spied({ streamThreshold: 2 });
    try {
      streamed.side.frame(Opcode.TEXT, "abc");
      assert.deepEqual(streamed.side.events(), [{ type: "fragment", binary: false, data: "abc", fin: true }]);
      assert.deepEqual(streamed.ranges, []);
    } finally {
      streamed.restore();
    }
  });

  test("invalid UTF-8 is never taken for ASCII: 1007 as without it, and nothing after it is read", () => {
    for (const invalid of [[0x61, 0x80], [0xc3], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80]]) {
      const { side, ranges, restore } = spied();
      try {
        side.raw(concatBytes([rawFrame("server", Opcode.TEXT, new Uint8Array(invalid)), rawFrame("server", Opcode.TEXT, "after")]));
        const events = side.events();
        assert.deepEqual(events.map((e) => e.type), ["error"], `${invalid}`);
        assert.equal(events[0].type === "error" && events[0].code, 1007);
        const frames = side.written();
        assert.equal(frames.length, 1, "one close frame");
        assert.equal(closeFrameCode(frames[0]), 1007);
        assert.deepEqual(ranges, [], `${invalid}`);
      } finally {
        restore();
      }
    }
  });
});


describe("a connection's output is its own: frames in order, never mixed with another connection's", () => {
  /** The frames in `chunks`, as opcode and text; and the chunks must each be whole frames. */
  function framesOf(chunks: readonly Uint8Array[], masked: boolean): string[] {
    return chunks.flatMap((chunk) => parseFrames(chunk, masked).map((f) => `${f.opcode}:${new TextDecoder().decode(f.payload)}`));
  }

  test("frames of connections sending in turn stay with their connection, in order, and their bytes are their own", () => {
    const a = open("server").conn;
    const b = open("client").conn;
    a.sendText("a1");
    b.sendText("b1");
    a.sendText("a2");
    a.sendBinary(utf8("a3"));
    b.sendBinary(utf8("b2"));
    a.ping("a4");
    const fromA = a.pollOutput();
    const fromB = b.pollOutput();
    assert.deepEqual(framesOf(fromA, false), ["1:a1", "1:a2", "2:a3", "9:a4"]);
    assert.deepEqual(framesOf(fromB, true), ["1:b1", "2:b2"]);
    const buffersOfA = new Set(fromA.map((chunk) => chunk.buffer));
    for (const chunk of fromB) assert.ok(!buffersOfA.has(chunk.buffer), "a chunk of B shares an ArrayBuffer with one of A");
  });

  test("two connections' outputs never mix: a send on one leaves the other's polled and unpolled output as it was", () => {
    for (const tuning of [undefined, createTuning({ allocator: new SlabAllocator() })]) {
      const a = open("server", createPair({ server: { tuning } })).conn;
      const b = open("server", createPair({ server: { tuning } })).conn;
      a.sendText("a1");
      a.sendText("a2"); // while output waits
      const beforeA = concatBytes(a.pollOutput().map((chunk) => chunk.slice()));
      a.sendText("a3");
      a.sendText("a4"); // more while output waits
      for (let i = 0; i < 50; i++) b.sendText(`b${i}`); // b sends many frames, polls none
      a.sendText("a5");
      const fromA = a.pollOutput();
      assert.deepEqual(framesOf([beforeA], false), ["1:a1", "1:a2"]);
      assert.deepEqual(framesOf(fromA, false), ["1:a3", "1:a4", "1:a5"]);
      assert.deepEqual(framesOf(b.pollOutput(), false), Array.from({ length: 50 }, (_, i) => `1:b${i}`));
    }
  });

  test("an untuned connection never gets output that shares an ArrayBuffer, while a tuned one with a slab allocator in the same process does", () => {
    const pooled = open("server", createPair({ server: { tuning: createTuning({ allocator: new SlabAllocator() }) } })).conn;
    const plain = [open("server").conn, open("client").conn];
    const plainChunks: Uint8Array[] = [];
    const pooledChunks: Uint8Array[] = [];
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 20; i++) {
        pooled.sendText(`pooled ${i}`);
        for (const conn of plain) {
          conn.sendText(`plain ${i}`);
          conn.sendBinary(utf8(`bytes ${i}`));
          conn.ping("p");
        }
        if (i % 7 === 0) for (const conn of plain) plainChunks.push(...conn.pollOutput());
      }
      pooledChunks.push(...pooled.pollOutput());
      for (const conn of plain) plainChunks.push(...conn.pollOutput());
    }
    assert.ok(pooledChunks.every(isSlabPiece), "the tuned connection's frames are slab pieces");
    assert.ok(plainChunks.length > 10);
    for (const chunk of plainChunks) assert.ok(!isSlabPiece(chunk), "a slab piece in an untuned connection's output");
    const seen = new Set<ArrayBufferLike>(pooledChunks.map((chunk) => chunk.buffer));
    for (const chunk of plainChunks) {
      assert.ok(!seen.has(chunk.buffer), "two chunks share an ArrayBuffer");
      seen.add(chunk.buffer);
    }
  });

  test("a large frame goes behind the small frames before it, and before those after it", () => {
    const { conn } = open("server");
    const large = "L".repeat(5000);
    conn.sendText("before");
    conn.sendText(large);
    conn.sendText("after");
    assert.deepEqual(framesOf([concatBytes(conn.pollOutput())], false), ["1:before", `1:${large}`, "1:after"]);
  });

  test("polled chunks are the connection's own: later frames do not change them", () => {
    const { conn } = open("server");
    conn.sendText("first");
    conn.sendText("second");
    const chunks = conn.pollOutput();
    assert.equal(chunks.length, 2);
    const copies = chunks.map((chunk) => chunk.slice());
    for (let i = 0; i < 20; i++) conn.sendText(`later ${i}`);
    const other = open("client").conn;
    other.sendText("another connection");
    other.sendText("sent by another connection");
    assert.deepEqual(chunks, copies);
    assert.deepEqual(framesOf(chunks, false), ["1:first", "1:second"]);
  });

  test("a frame sent after each poll comes out alone, each time", () => {
    const { conn } = open("client");
    for (let i = 0; i < 3; i++) {
      conn.sendBinary(utf8(`alone ${i}`));
      assert.deepEqual(framesOf(conn.pollOutput(), true), [`2:alone ${i}`]);
    }
  });

  test("abort() drops the connection's unpolled frames, and only its own", () => {
    const a = open("server").conn;
    const b = open("server").conn;
    b.sendText("kept");
    a.sendText("dropped");
    a.abort();
    assert.deepEqual(a.pollOutput(), []);
    assert.deepEqual(framesOf(b.pollOutput(), false), ["1:kept"]);
    a.abort();
    b.sendText("again");
    assert.deepEqual(framesOf(b.pollOutput(), false), ["1:again"]);
  });
});
