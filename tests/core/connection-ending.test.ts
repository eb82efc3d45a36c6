/**
 * The order at the end of a connection: events read before a protocol violation or the peer's
 * close frame are delivered, and what the owner sends in reaction to them is written before our
 * close frame (RFC 6455 §5.5.1 allows data frames until we send it; Autobahn 3.2, 4.1.3, 5.15
 * judge it strict). The owner here drives the connection as the adapters do: output polled first,
 * then events, until neither brings anything. The error or close event comes with the close
 * frame, in the poll after the events before it; what matters is the order on the wire.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { encodeFrame, Opcode, ReadyState, type Connection, type ConnectionEvent } from "../../core/mod.ts";
import { concatBytes } from "../../core/bytes.ts";
import { utf8 } from "../support/bytes.ts";
import { createPair } from "../support/core-pair.ts";
import { parseFrames } from "../support/frames.ts";

const KEY = new Uint8Array([0x12, 0x34, 0x56, 0x78]);

type Role = "server" | "client";

function open(role: Role): Connection {
  const pair = createPair();
  const conn = role === "server" ? pair.server : pair.client;
  conn.pollEvents();
  conn.pollOutput();
  return conn;
}

/** A frame as the peer writes it: masked towards a server (RFC 6455 §5.3). */
function frame(role: Role, opcode: number, payload: string | Uint8Array = "", fin = true, rsv = 0): Uint8Array {
  const bytes = typeof payload === "string" ? utf8(payload) : payload;
  return concatBytes(encodeFrame(opcode, bytes, fin, rsv, role === "server" ? KEY : null));
}

interface Seen {
  /** Events and frames written, in the order they happened, e.g. "event text hi", "out 1 hi". */
  log: string[];
  conn: Connection;
}

/** Receives `bytes` in one read and runs the owner's loop, calling `onEvent` for each event. */
function drive(role: Role, conn: Connection, bytes: Uint8Array, onEvent: (e: ConnectionEvent, conn: Connection) => void): Seen {
  const log: string[] = [];
  conn.receive(bytes);
  for (let again = true; again; ) {
    const output = conn.pollOutput();
    for (const f of parseFrames(concatBytes(output), role === "client")) {
      const payload = f.opcode === Opcode.CLOSE ? `${(f.payload[0] << 8) | f.payload[1]}` : new TextDecoder().decode(f.payload);
      log.push(`out ${f.opcode} ${payload}`);
    }
    const events = conn.pollEvents();
    for (const e of events) {
      log.push(`event ${e.type}${e.type === "text" ? ` ${e.data}` : e.type === "error" || e.type === "close" ? ` ${e.code}` : ""}`);
      onEvent(e, conn);
    }
    again = output.length !== 0 || events.length !== 0;
  }
  return { log, conn };
}

/** An echo owner, as the conformance peers are. */
const echo = (e: ConnectionEvent, conn: Connection) => {
  if (e.type === "text") conn.sendText(e.data);
};

const violations: [string, (role: Role) => Uint8Array, number][] = [
  ["RSV = 2 without an extension (Autobahn 3.2)", (role) => frame(role, Opcode.TEXT, "Hello, world!", true, 2), 1002],
  ["a reserved opcode (Autobahn 4.1.3)", (role) => frame(role, 5), 1002],
  ["a continuation with nothing to continue (Autobahn 5.15)", (role) => frame(role, Opcode.CONTINUATION, "fragment3", false), 1002],
  ["invalid UTF-8 in the next text message", (role) => frame(role, Opcode.TEXT, new Uint8Array([0xce, 0xba, 0xff])), 1007],
];

for (const role of ["server", "client"] as Role[]) {
  describe(`${role}: a message and a violation in one read`, () => {
    for (const [what, violation, code] of violations) {
      test(`${what}: the message, the owner's echo, then the close frame (${code})`, () => {
        const conn = open(role);
        const bytes = concatBytes([frame(role, Opcode.TEXT, "Hello, world!"), violation(role), frame(role, Opcode.PING, "after")]);
        const { log } = drive(role, conn, bytes, echo);
        assert.deepEqual(log, [
          "event text Hello, world!",
          "out 1 Hello, world!",
          `event error ${code}`,
          `out 8 ${code}`,
        ]);
        assert.equal(conn.readyState, ReadyState.CLOSING);
        assert.equal(conn.closeExpected, role === "server", "the server closes TCP (RFC 6455 §7.1.1)");
      });
    }

    test("a fragmented message, then a violation: the message is echoed first (Autobahn 5.15)", () => {
      const conn = open(role);
      const bytes = concatBytes([
        frame(role, Opcode.TEXT, "fragment1", false),
        frame(role, Opcode.CONTINUATION, "fragment2"),
        frame(role, Opcode.CONTINUATION, "fragment3", false),
        frame(role, Opcode.TEXT, "fragment4"),
      ]);
      const { log } = drive(role, conn, bytes, echo);
      assert.deepEqual(log, ["event text fragment1fragment2", "out 1 fragment1fragment2", "event error 1002", "out 8 1002"]);
    });

    test("the owner closes in reaction to the message: its close frame is the one sent", () => {
      const conn = open(role);
      const bytes = concatBytes([frame(role, Opcode.TEXT, "bye"), frame(role, 5)]);
      const { log } = drive(role, conn, bytes, (e, c) => e.type === "text" && c.close(4000));
      assert.deepEqual(log, ["event text bye", "out 8 4000", "event error 1002"]);
    });
  });

  describe(`${role}: a message and the peer's close frame in one read`, () => {
    test("the message is seen while OPEN, the echo goes out, then the close reply", () => {
      const conn = open(role);
      const states: number[] = [];
      const bytes = concatBytes([frame(role, Opcode.TEXT, "last words"), frame(role, Opcode.CLOSE, new Uint8Array([0x03, 0xe8]))]);
      const { log } = drive(role, conn, bytes, (e, c) => {
        states.push(c.readyState);
        echo(e, c);
      });
      assert.deepEqual(log, ["event text last words", "out 1 last words", "event close 1000", "out 8 1000"]);
      assert.deepEqual(states, [ReadyState.OPEN, ReadyState.CLOSED]);
    });

    test("sends after the owner has seen the close event are dropped (false), nothing follows the close reply", () => {
      const conn = open(role);
      const late: boolean[] = [];
      const bytes = concatBytes([frame(role, Opcode.TEXT, "m"), frame(role, Opcode.CLOSE, new Uint8Array([0x03, 0xe8]))]);
      const { log } = drive(role, conn, bytes, (e, c) => {
        if (e.type === "text") late.push(c.sendText("echo"));
        if (e.type === "close") late.push(c.sendText("too late"), c.sendBinary(new Uint8Array(2)), c.ping());
      });
      assert.deepEqual(late, [true, false, false, false]);
      assert.deepEqual(log, ["event text m", "out 1 echo", "event close 1000", "out 8 1000"]);
      assert.deepEqual(conn.pollOutput(), []);
    });

    test("an owner that writes while handling the message (polls output) can still send twice before the close reply", () => {
      const conn = open(role);
      const early: Uint8Array[] = [];
      const sent: boolean[] = [];
      const bytes = concatBytes([frame(role, Opcode.TEXT, "m"), frame(role, Opcode.CLOSE, new Uint8Array([0x03, 0xe8]))]);
      const { log } = drive(role, conn, bytes, (e, c) => {
        if (e.type !== "text") return;
        sent.push(c.sendText("one"));
        early.push(...c.pollOutput()); // as a send path that writes at once does
        sent.push(c.sendText("two"), c.ping("p"));
      });
      assert.deepEqual(sent, [true, true, true]);
      const first = parseFrames(concatBytes(early), role === "client").map((f) => new TextDecoder().decode(f.payload));
      assert.deepEqual(first, ["one"]);
      assert.deepEqual(log, ["event text m", "out 1 two", "out 9 p", "event close 1000", "out 8 1000"]);
    });

    test("a close frame alone is answered at once", () => {
      const conn = open(role);
      conn.receive(frame(role, Opcode.CLOSE, new Uint8Array([0x03, 0xe8])));
      assert.deepEqual(parseFrames(concatBytes(conn.pollOutput()), role === "client").map((f) => f.opcode), [Opcode.CLOSE]);
    });
  });
}
