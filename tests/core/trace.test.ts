/**
 * The trace hook (`ConnectionOptions.trace`): a record of each frame read and written, with a
 * short preview of its payload and close codes named, and of each ready-state change, in the
 * order they happen; and the same events and bytes with or without a hook.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  type Connection,
  type ConnectionEvent,
  formatTraceRecord,
  Opcode,
  ReadyState,
  type TraceRecord,
} from "../../core/mod.ts";
import { concatBytes } from "../../core/bytes.ts";
import { createPair } from "../support/core-pair.ts";

/** A deterministic source of "random" bytes, so that two runs write the same masked frames. */
function counting(): (target: Uint8Array) => void {
  let n = 0;
  return (target) => {
    for (let i = 0; i < target.length; i++) target[i] = n++ & 0xff;
  };
}

function tracedPair(trace = true) {
  const records: { who: "client" | "server"; record: TraceRecord; connection: Connection }[] = [];
  const hook = (who: "client" | "server") =>
    trace ? (record: TraceRecord, connection: Connection) => records.push({ who, record, connection }) : undefined;
  const pair = createPair({
    server: { trace: hook("server") },
    client: { trace: hook("client"), random: counting() },
  });
  return { pair, records };
}

const lines = (records: { who: string; record: TraceRecord }[], who: string) =>
  records.filter((r) => r.who === who).map((r) => formatTraceRecord(r.record));

describe("trace hook", () => {
  test("records frames in and out and state changes, in order, with previews and named close codes", () => {
    const { pair, records } = tracedPair();
    const { client, server } = pair;
    client.sendText("hello");
    client.sendBinary(new Uint8Array(40).map((_, i) => i));
    client.ping("are you there");
    pair.pump();
    server.sendText("a".repeat(100));
    pair.pump();
    client.close(4001, "done for now");
    pair.pump();

    assert.deepEqual(lines(records, "client"), [
      "state OPEN",
      '> text fin len=5 "hello"',
      "> binary fin len=40 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f…",
      "> ping fin len=13 61726520796f75207468657265",
      "< pong fin len=13 61726520796f75207468657265",
      `< text fin len=100 "${"a".repeat(32)}"…`,
      '> close fin len=14 4001 PRIVATE "done for now"',
      "state CLOSING",
      "< close fin len=2 4001 PRIVATE",
      "state CLOSED",
    ]);
    assert.deepEqual(lines(records, "server"), [
      "state OPEN",
      '< text fin len=5 "hello"',
      "< binary fin len=40 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f…",
      "< ping fin len=13 61726520796f75207468657265",
      "> pong fin len=13 61726520796f75207468657265",
      `> text fin len=100 "${"a".repeat(32)}"…`,
      '< close fin len=14 4001 PRIVATE "done for now"',
      "> close fin len=2 4001 PRIVATE",
      "state CLOSED",
    ]);
    // Each record comes with the connection it is about.
    for (const r of records) assert.equal(r.connection, r.who === "client" ? client : server);
    assert.equal(client.readyState, ReadyState.CLOSED);
  });

  test("a frame record's fields", () => {
    const { pair, records } = tracedPair();
    pair.client.sendText("x", { fin: false });
    pair.client.sendText("y");
    pair.pump();
    const inbound = records.filter((r) => r.who === "server" && r.record.type === "frame").map((r) => r.record);
    assert.deepEqual(inbound, [
      { type: "frame", direction: "in", opcode: Opcode.TEXT, kind: "text", fin: false, rsv: 0, length: 1, preview: '"x"' },
      { type: "frame", direction: "in", opcode: Opcode.CONTINUATION, kind: "continuation", fin: true, rsv: 0, length: 1, preview: '"y"' },
    ]);
    const state = records.find((r) => r.who === "server" && r.record.type === "state")!.record;
    assert.deepEqual(state, { type: "state", from: ReadyState.CONNECTING, to: ReadyState.OPEN, name: "OPEN" });
  });

  test("a protocol error: the offending frame, then our close frame with its code named", () => {
    for (const [bytes, expected] of [
      // RFC 6455 §5.4: a continuation frame with no message to continue; the header is read, then refused.
      [[0x80, 0x82, 0, 0, 0, 0, 1, 2], ["< continuation fin len=2 …", '> close fin len=50 1002 PROTOCOL_ERROR "continuation frame without a message to continue"']],
      // RFC 6455 §5.2: a reserved opcode fails in the parser, before any frame is reported.
      [[0x83, 0x82, 0, 0, 0, 0, 1, 2], ['> close fin len=19 1002 PROTOCOL_ERROR "reserved opcode 3"']],
    ] as const) {
      const { pair, records } = tracedPair();
      pair.server.receive(new Uint8Array(bytes));
      pair.server.pollEvents();
      assert.deepEqual(lines(records, "server"), ["state OPEN", ...expected, "state CLOSING"]);
    }
  });

  test("the same events and bytes with and without a hook", () => {
    const run = (trace: boolean) => {
      const { pair } = tracedPair(trace);
      const out: string[] = [];
      const events: ConnectionEvent[] = [];
      const step = (conn: Connection, peer: Connection) => {
        const bytes = concatBytes(conn.pollOutput());
        out.push(Array.from(bytes, (b) => b.toString(16)).join(""));
        if (bytes.length) peer.receive(bytes);
        events.push(...peer.pollEvents());
      };
      const { client, server } = pair;
      for (const text of ["short", "é ünïcode", "z".repeat(300)]) client.sendText(text);
      client.sendBinary(new Uint8Array(2000).fill(7));
      client.ping();
      step(client, server);
      step(server, client);
      server.sendText("bye", { fin: false });
      server.sendText("!", { fin: true });
      server.close(1000);
      step(server, client);
      step(client, server);
      return { out, events: JSON.stringify(events, (_, v) => (v instanceof Uint8Array ? Array.from(v) : v)) };
    };
    assert.deepEqual(run(true), run(false));
  });
});
