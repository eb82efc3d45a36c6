/**
 * The case catalogue: Autobahn|Testsuite's sections 1–7, 9, 10, 12 and 13, re-derived from
 * RFC 6455 (the Autobahn case numbers are kept, so that reports can be compared), plus a few
 * cases of our own, marked "(anyws)" and numbered where Autobahn has none: masking (1.3.x),
 * the close codes registered since Autobahn was written (7.7.14–16, 7.9.10), every 6.5–6.23
 * payload again in 1-byte frames ("/frames") and as one frame written byte by byte
 * ("/bytes"), and auto-fragmentation by the peer under test (10.1.2–10.1.5).
 *
 * Each case is written once and runs in both roles: the fuzzer is the client (against a server
 * under test) or the server (against a client under test); only masking differs.
 */
import {
  type CaseContext,
  type CaseDef,
  type CaseResult,
  ev,
  type ExpectedClose,
  type RxEvent,
} from "./session.ts";
import { type DataKind, payloadOf } from "./deflate.ts";
import { type ByteSource, bytes, closePayload, concat, equalBytes, fromHex, frameBytes, isUtf8, OP, rawHeader, repeatTo } from "./wire.ts";

const NORMAL = 1000;
const PROTOCOL_ERROR = 1002;
const INVALID_PAYLOAD = 1007;

const closeNormal: ExpectedClose = { closedByMe: true, closeCode: [NORMAL], requireClean: true };
const failWith = (...codes: number[]): ExpectedClose => ({ closedByMe: false, closeCode: codes, requireClean: false });
const failUtf8: ExpectedClose = { closedByMe: false, closeCode: [INVALID_PAYLOAD], requireClean: false, closedByWrongEndpointIsFatal: true };

const KiB = 1024;
const MiB = 1024 * 1024;

/** Sections, as Autobahn names them. */
export const SECTIONS: Record<number, string> = {
  1: "Framing",
  2: "Pings/Pongs",
  3: "Reserved Bits",
  4: "Opcodes",
  5: "Fragmentation",
  6: "UTF-8 Handling",
  7: "Close Handling",
  9: "Limits/Performance",
  10: "Auto-Fragmentation",
  12: "Compression (payloads)",
  13: "Compression (parameters)",
};

const cases: CaseDef[] = [];

function add(c: CaseDef): void {
  cases.push(c);
}

/** Autobahn's 7.x rule: a wrong close code in the peer's answer fails the case. */
function wrongCodeFails(_ctx: CaseContext, r: CaseResult): void {
  if (r.behaviorClose === "WRONG CODE") r.behavior = "FAILED";
}

// ---- 1 Framing --------------------------------------------------------------------------------

const LENGTHS = [0, 125, 126, 127, 128, 65535, 65536];

for (const [sub, binary] of [[1, false], [2, true]] as const) {
  const kind = binary ? "binary" : "text";
  const fill = binary ? [0xfe] : "*";
  LENGTHS.forEach((length, i) => {
    add({
      id: `1.${sub}.${i + 1}`,
      section: 1,
      description: `Send a ${kind} message with a payload of length ${length}.`,
      expectation: `The ${kind} message is echoed. Clean close with normal code.`,
      run(ctx) {
        const payload = repeatTo(fill, length);
        ctx.expect({ OK: [binary ? ev.binary(payload) : ev.text(payload)] }, closeNormal);
        void ctx.sendFrame({ opcode: binary ? OP.BINARY : OP.TEXT, payload });
        ctx.killAfter(length > 1000 ? 10_000 : 1000);
      },
    });
  });
  add({
    id: `1.${sub}.8`,
    section: 1,
    description: `Send a ${kind} message with a payload of length 65536, written in chops of 997 octets.`,
    expectation: `The ${kind} message is echoed. Clean close with normal code.`,
    run(ctx) {
      const payload = repeatTo(fill, 65536);
      ctx.expect({ OK: [binary ? ev.binary(payload) : ev.text(payload)] }, closeNormal);
      void ctx.sendFrame({ opcode: binary ? OP.BINARY : OP.TEXT, payload, chop: 997 });
      ctx.killAfter(10_000);
    },
  });
}

for (const [i, key] of [[1, [0, 0, 0, 0]], [2, [0xff, 0xff, 0xff, 0xff]]] as const) {
  add({
    id: `1.3.${i}`,
    section: 1,
    description: `(anyws) Send a text message whose masking key is 0x${key.map((b) => b.toString(16).padStart(2, "0")).join("")} (as a client; a fuzzing server sends it unmasked).`,
    expectation: "The message is echoed: any key is valid (RFC 6455 §5.3). Clean close with normal code.",
    run(ctx) {
      const payload = "Hello, masking key!";
      ctx.expect({ OK: [ev.text(payload)] }, closeNormal);
      void ctx.sendFrame({ opcode: OP.TEXT, payload, mask: ctx.role === "client" ? Uint8Array.from(key) : null });
      ctx.killAfter(1000);
    },
  });
}

add({
  id: "1.3.3",
  section: 1,
  description: "(anyws) Send a text message masked the wrong way for the role: unmasked from a client, masked from a server.",
  expectation: "The connection is failed immediately (1002): a server MUST close on an unmasked frame, a client on a masked one (RFC 6455 §5.1).",
  run(ctx) {
    ctx.expect({ OK: [] }, failWith(PROTOCOL_ERROR));
    void ctx.sendFrame({ opcode: OP.TEXT, payload: "wrongly masked", mask: ctx.role === "client" ? null : Uint8Array.of(1, 2, 3, 4) });
    ctx.killAfter(1000);
  },
});

add({
  id: "1.3.4",
  section: 1,
  description: "(anyws) Send a frame header whose 64-bit payload length has its most significant bit set.",
  expectation: "The connection is failed (RFC 6455 §5.2: the most significant bit MUST be 0); 1002 (1009, too big, is accepted).",
  run(ctx) {
    ctx.expect({ OK: [] }, failWith(PROTOCOL_ERROR, 1009));
    const mask = ctx.role === "client" ? Uint8Array.of(9, 8, 7, 6) : null;
    void ctx.sendRaw(concat([rawHeader(OP.BINARY, true, [127, 0x80, 0, 0, 0, 0, 0, 0, 16], mask), new Uint8Array(16)]));
    ctx.killAfter(1000);
  },
});

// ---- 2 Pings/Pongs ------------------------------------------------------------------------------

function pingCase(id: string, description: string, payload: ByteSource, chop?: number): void {
  add({
    id,
    section: 2,
    description,
    expectation: "A pong with the ping's payload. Clean close with normal code.",
    run(ctx) {
      ctx.expect({ OK: [ev.pong(payload)] }, closeNormal);
      void ctx.sendFrame({ opcode: OP.PING, payload, chop });
      ctx.closeAfter(chop ? 2000 : 1000);
    },
  });
}

pingCase("2.1", "Send a ping without payload.", "");
pingCase("2.2", "Send a ping with a small text payload.", "Hello, world!");
pingCase("2.3", "Send a ping with a small binary (non UTF-8) payload.", [0x00, 0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0x00, 0xff]);
pingCase("2.4", "Send a ping with a binary payload of 125 octets.", repeatTo([0xfe], 125));
add({
  id: "2.5",
  section: 2,
  description: "Send a ping with a binary payload of 126 octets.",
  expectation: "The connection is failed immediately (1002): control frames carry at most 125 octets (RFC 6455 §5.5).",
  run(ctx) {
    ctx.expect({ OK: [] }, failWith(PROTOCOL_ERROR));
    void ctx.sendFrame({ opcode: OP.PING, payload: repeatTo([0xfe], 126) });
    ctx.killAfter(1000);
  },
});
pingCase("2.6", "Send a ping with a binary payload of 125 octets, written in octet-wise chops.", repeatTo([0xfe], 125), 1);
for (const [id, payload] of [["2.7", ""], ["2.8", "unsolicited pong payload"]] as const) {
  add({
    id,
    section: 2,
    description: `Send an unsolicited pong${payload ? " with payload" : " without payload"}, then close.`,
    expectation: "Nothing in reply to the pong (RFC 6455 §5.5.3). Clean close with normal code.",
    run(ctx) {
      ctx.expect({ OK: [] }, closeNormal);
      void ctx.sendFrame({ opcode: OP.PONG, payload });
      void ctx.sendClose(NORMAL);
      ctx.closeAfter(1000);
    },
  });
}
add({
  id: "2.9",
  section: 2,
  description: "Send an unsolicited pong with payload, then a ping with payload.",
  expectation: "Nothing in reply to the pong, a pong with the ping's payload. Clean close with normal code.",
  run(ctx) {
    ctx.expect({ OK: [ev.pong("ping payload")] }, closeNormal);
    void ctx.sendFrame({ opcode: OP.PONG, payload: "unsolicited pong payload" });
    void ctx.sendFrame({ opcode: OP.PING, payload: "ping payload" });
    ctx.closeAfter(1000);
  },
});
for (const [id, chop] of [["2.10", undefined], ["2.11", 1]] as const) {
  add({
    id,
    section: 2,
    description: `Send 10 pings with payload${chop ? ", written in octet-wise chops" : ""}.`,
    expectation: "A pong for each ping, with its payload, in order (not required by the RFC, which lets a pong answer only the latest ping, but expected). Clean close with normal code.",
    run(ctx) {
      const payloads = Array.from({ length: 10 }, (_, i) => `payload-${i}`);
      ctx.expect({ OK: payloads.map((p) => ev.pong(p)) }, closeNormal);
      for (const p of payloads) void ctx.sendFrame({ opcode: OP.PING, payload: p, chop });
      ctx.closeAfter(3000);
    },
  });
}

// ---- 3 Reserved bits ----------------------------------------------------------------------------

const HELLO = "Hello, world!";

function rsvCase(n: number, description: string, send: (ctx: CaseContext) => void, echoFirst: boolean): void {
  add({
    id: `3.${n}`,
    section: 3,
    description,
    expectation: `${echoFirst ? "The first message is echoed, then the" : "The"} connection is failed immediately (1002): RSV bits MUST be 0 when no extension defines them (RFC 6455 §5.2).${echoFirst ? " No pong." : ""}`,
    run(ctx) {
      ctx.expect(echoFirst ? { OK: [ev.text(HELLO)], "NON-STRICT": [] } : { OK: [] }, failWith(PROTOCOL_ERROR));
      send(ctx);
      ctx.killAfter(1000);
    },
  });
}

rsvCase(1, "Send a small text message with RSV = 1.", (ctx) => void ctx.sendFrame({ opcode: OP.TEXT, payload: HELLO, rsv: 1 }), false);
// Chops as Autobahn writes them, not waited for (`paced: false`): a peer that reads the message
// and the violation together must still echo the message before it fails the connection.
for (const [n, how, extra] of [[2, "", {}], [3, " Frames are written in frame-wise chops.", { sync: true, paced: false }], [4, " Octets are written in octet-wise chops.", { chop: 1, paced: false }]] as const) {
  rsvCase(
    n,
    `Send a small text message, then again with RSV = ${n}, then a ping.${how}`,
    (ctx) => {
      void ctx.sendFrame({ opcode: OP.TEXT, payload: HELLO, ...extra });
      void ctx.sendFrame({ opcode: OP.TEXT, payload: HELLO, rsv: n, ...extra });
      void ctx.sendFrame({ opcode: OP.PING, ...extra });
    },
    true,
  );
}
rsvCase(5, "Send a small binary message with RSV = 5.", (ctx) => void ctx.sendFrame({ opcode: OP.BINARY, payload: [0x00, 0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0x00, 0xff], rsv: 5 }), false);
rsvCase(6, "Send a ping with RSV = 6.", (ctx) => void ctx.sendFrame({ opcode: OP.PING, payload: HELLO, rsv: 6 }), false);
rsvCase(7, "Send a close frame with RSV = 7.", (ctx) => void ctx.sendFrame({ opcode: OP.CLOSE, rsv: 7 }), false);

// ---- 4 Opcodes --------------------------------------------------------------------------------

function opcodeCases(group: number, opcodes: number[]): void {
  const kind = group === 1 ? "non-control" : "control";
  opcodes.forEach((opcode, i) => {
    const n = i + 1;
    const payload = n === 1 ? "" : n === 2 ? "reserved opcode payload" : HELLO;
    const alone = n <= 2;
    const chop = n === 5 ? 1 : undefined;
    add({
      id: `4.${group}.${n}`,
      section: 4,
      description: alone
        ? `Send a frame with the reserved ${kind} opcode ${opcode}${payload ? " and a non-empty payload" : ""}.`
        : `Send a small text message, then a frame with the reserved ${kind} opcode ${opcode}${payload && n > 3 ? " and a non-empty payload" : ""}, then a ping.${chop ? " Octets are written in octet-wise chops." : ""}`,
      expectation: `${alone ? "The" : "The message is echoed, then the"} connection is failed immediately (1002): reserved opcodes (RFC 6455 §5.2).${alone ? "" : " No pong."}`,
      run(ctx) {
        ctx.expect(alone ? { OK: [] } : { OK: [ev.text(HELLO)], "NON-STRICT": [] }, failWith(PROTOCOL_ERROR));
        // Octet-wise chops as in 3.4: not waited for (`paced: false`).
        const paced = chop === undefined;
        if (!alone) void ctx.sendFrame({ opcode: OP.TEXT, payload: HELLO, chop, paced });
        void ctx.sendFrame({ opcode, payload: n === 3 ? "" : payload, chop, paced });
        if (!alone) void ctx.sendFrame({ opcode: OP.PING, chop, paced });
        ctx.killAfter(1000);
      },
    });
  });
}

opcodeCases(1, [3, 4, 5, 6, 7]);
opcodeCases(2, [11, 12, 13, 14, 15]);

// ---- 5 Fragmentation ------------------------------------------------------------------------------

type F = { opcode: number; fin: boolean; payload: string };
const f = (opcode: number, fin: boolean, payload: string): F => ({ opcode, fin, payload });
const CHOPS = { one: {}, frame: { sync: true }, octet: { chop: 1 } } as const;
const CHOP_WORDS = { one: "in one chop", frame: "in frame-wise chops", octet: "in octet-wise chops" } as const;

function fragCase(
  id: string,
  description: string,
  expectation: string,
  frames: F[],
  outcomes: Partial<Record<"OK" | "NON-STRICT", RxEvent[]>>,
  close: ExpectedClose,
  how: keyof typeof CHOPS = "one",
): void {
  add({
    id,
    section: 5,
    description,
    expectation,
    run(ctx) {
      ctx.expect(outcomes, close);
      for (const fr of frames) void ctx.sendFrame({ ...fr, ...CHOPS[how] });
      if (close.closedByMe) ctx.closeAfter(how === "octet" ? 2000 : 1000);
      else ctx.killAfter(1000);
    },
  });
}

const NO_FRAGMENTED_CONTROL = "The connection is failed immediately (1002): control frames MUST NOT be fragmented (RFC 6455 §5.4).";
fragCase("5.1", "Send a ping fragmented into 2 fragments.", NO_FRAGMENTED_CONTROL, [f(OP.PING, false, "fragment1"), f(OP.CONT, true, "fragment2")], { OK: [] }, failWith(PROTOCOL_ERROR));
fragCase("5.2", "Send a pong fragmented into 2 fragments.", NO_FRAGMENTED_CONTROL, [f(OP.PONG, false, "fragment1"), f(OP.CONT, true, "fragment2")], { OK: [] }, failWith(PROTOCOL_ERROR));
(["one", "frame", "octet"] as const).forEach((how, i) => {
  fragCase(
    `5.${3 + i}`,
    `Send a text message fragmented into 2 fragments, ${CHOP_WORDS[how]}.`,
    "The message is reassembled and echoed.",
    [f(OP.TEXT, false, "fragment1"), f(OP.CONT, true, "fragment2")],
    { OK: [ev.text("fragment1fragment2")] },
    closeNormal,
    how,
  );
  fragCase(
    `5.${6 + i}`,
    `Send a text message fragmented into 2 fragments, with a ping with payload in between, ${CHOP_WORDS[how]}.`,
    "A pong first (control frames may be injected between fragments, RFC 6455 §5.4), then the echoed message.",
    [f(OP.TEXT, false, "fragment1"), f(OP.PING, true, "ping payload"), f(OP.CONT, true, "fragment2")],
    { OK: [ev.pong("ping payload"), ev.text("fragment1fragment2")] },
    closeNormal,
    how,
  );
});
const NOTHING_TO_CONTINUE = "The connection is failed immediately (1002): there is no message to continue (RFC 6455 §5.4).";
(["one", "frame", "octet"] as const).forEach((how, i) => {
  fragCase(
    `5.${9 + i}`,
    `Send a continuation frame with FIN = true where there is nothing to continue, then an unfragmented text message, ${CHOP_WORDS[how]}.`,
    NOTHING_TO_CONTINUE,
    [f(OP.CONT, true, "non-continuation payload"), f(OP.TEXT, true, HELLO)],
    { OK: [] },
    failWith(PROTOCOL_ERROR),
    how,
  );
  fragCase(
    `5.${12 + i}`,
    `Send a continuation frame with FIN = false where there is nothing to continue, then an unfragmented text message, ${CHOP_WORDS[how]}.`,
    NOTHING_TO_CONTINUE,
    [f(OP.CONT, false, "non-continuation payload"), f(OP.TEXT, true, HELLO)],
    { OK: [] },
    failWith(PROTOCOL_ERROR),
    how,
  );
});
fragCase(
  "5.15",
  "Send a text message fragmented into 2 fragments, then a continuation frame with FIN = false where there is nothing to continue, then an unfragmented text message, in one chop.",
  "The first message is echoed, then the connection is failed immediately (1002): there is no message to continue.",
  [f(OP.TEXT, false, "fragment1"), f(OP.CONT, true, "fragment2"), f(OP.CONT, false, "fragment3"), f(OP.TEXT, true, "fragment4")],
  { OK: [ev.text("fragment1fragment2")], "NON-STRICT": [] },
  failWith(PROTOCOL_ERROR),
);
for (const [id, fin] of [["5.16", false], ["5.17", true]] as const) {
  const frames = [f(OP.CONT, fin, "fragment1"), f(OP.TEXT, false, "fragment2"), f(OP.CONT, true, "fragment3")];
  fragCase(
    id,
    `Repeated 2x: a continuation frame with FIN = ${fin} (where there is nothing to continue), then a text message fragmented into 2 fragments.`,
    NOTHING_TO_CONTINUE,
    [...frames, ...frames],
    { OK: [] },
    failWith(PROTOCOL_ERROR),
  );
}
fragCase(
  "5.18",
  "Send a text message fragmented into 2 fragments, with both frame opcodes set to text, in one chop.",
  "The connection is failed immediately (1002): the frames after the first of a message MUST be continuation frames (RFC 6455 §5.4).",
  [f(OP.TEXT, false, "fragment1"), f(OP.TEXT, true, "fragment2")],
  { OK: [] },
  failWith(PROTOCOL_ERROR),
);
for (const [id, sync] of [["5.19", false], ["5.20", true]] as const) {
  add({
    id,
    section: 5,
    description: `A text message in 5 fragments: after the first 2, a ping; then a wait; then 2 more fragments, another ping and the last fragment.${sync ? " Frames are written in frame-wise chops." : ""} Everything is legal.`,
    expectation: "The first ping is answered before the message is complete; both pongs carry their pings' payloads; the message is echoed.",
    async run(ctx) {
      const fr = ["fragment1", "fragment2", "fragment3", "fragment4", "fragment5"];
      const pings = ["pongme 1!", "pongme 2!"];
      ctx.expect({ OK: [ev.pong(pings[0]), ev.pong(pings[1]), ev.text(fr.join(""))] }, closeNormal);
      void ctx.sendFrame({ opcode: OP.TEXT, fin: false, payload: fr[0], sync });
      void ctx.sendFrame({ opcode: OP.CONT, fin: false, payload: fr[1], sync });
      await ctx.sendFrame({ opcode: OP.PING, payload: pings[0], sync });
      await ctx.wait(ctx.settings.patience);
      if (ctx.received.length !== 1) ctx.note("the first ping was not answered before the message was complete");
      void ctx.sendFrame({ opcode: OP.CONT, fin: false, payload: fr[2], sync });
      void ctx.sendFrame({ opcode: OP.CONT, fin: false, payload: fr[3], sync });
      void ctx.sendFrame({ opcode: OP.PING, payload: pings[1], sync });
      void ctx.sendFrame({ opcode: OP.CONT, fin: true, payload: fr[4], sync });
      ctx.closeAfter(1000);
    },
    judge(_ctx, r) {
      // The pong order alone does not show it: a peer that answered the first ping only once
      // the message was complete is not wrong (RFC 6455 §5.4 MAY), but later than possible.
      if (r.behavior === "OK" && r.notes.some((n) => n.startsWith("the first ping was not answered"))) r.behavior = "NON-STRICT";
    },
  });
}

// ---- 6 UTF-8 handling -----------------------------------------------------------------------------

const KOSME = fromHex("cebae1bdb9cf83cebcceb5"); // "κόσμε"
const utf8Message = (ctx: CaseContext, payload: Uint8Array) => ctx.expect({ OK: [ev.text(payload)] }, closeNormal);

add({
  id: "6.1.1",
  section: 6,
  description: "Send a text message of length 0.",
  expectation: "The empty message is echoed.",
  run(ctx) {
    utf8Message(ctx, new Uint8Array(0));
    void ctx.sendFrame({ opcode: OP.TEXT });
    ctx.closeAfter(1000);
  },
});
add({
  id: "6.1.2",
  section: 6,
  description: "Send a fragmented text message: 3 fragments, each of length 0.",
  expectation: "The empty message is echoed.",
  run(ctx) {
    utf8Message(ctx, new Uint8Array(0));
    void ctx.sendFrame({ opcode: OP.TEXT, fin: false });
    void ctx.sendFrame({ opcode: OP.CONT, fin: false });
    void ctx.sendFrame({ opcode: OP.CONT, fin: true });
    ctx.closeAfter(1000);
  },
});
add({
  id: "6.1.3",
  section: 6,
  description: "Send a fragmented text message: 3 fragments, the first and last of length 0, the middle one not.",
  expectation: "The message (the middle fragment's payload) is echoed.",
  run(ctx) {
    utf8Message(ctx, bytes("middle frame payload"));
    void ctx.sendFrame({ opcode: OP.TEXT, fin: false });
    void ctx.sendFrame({ opcode: OP.CONT, fin: false, payload: "middle frame payload" });
    void ctx.sendFrame({ opcode: OP.CONT, fin: true });
    ctx.closeAfter(1000);
  },
});
const HELLO_UTF8 = "Hello-µ@ßöäüàá-UTF-8!!";
add({
  id: "6.2.1",
  section: 6,
  description: `Send a valid UTF-8 text message in one fragment: "${HELLO_UTF8}".`,
  expectation: "The message is echoed.",
  run(ctx) {
    utf8Message(ctx, bytes(HELLO_UTF8));
    void ctx.sendMessage(HELLO_UTF8);
    ctx.closeAfter(1000);
  },
});
add({
  id: "6.2.2",
  section: 6,
  description: "Send a valid UTF-8 text message in two fragments, split on a code point boundary.",
  expectation: "The message is echoed.",
  run(ctx) {
    utf8Message(ctx, bytes(HELLO_UTF8));
    void ctx.sendFrame({ opcode: OP.TEXT, fin: false, payload: "Hello-µ@ßöä" });
    void ctx.sendFrame({ opcode: OP.CONT, fin: true, payload: "üàá-UTF-8!!" });
    ctx.closeAfter(1000);
  },
});
for (const [id, payload] of [["6.2.3", bytes(HELLO_UTF8)], ["6.2.4", KOSME]] as const) {
  add({
    id,
    section: 6,
    description: `Send a valid UTF-8 text message (0x${Array.from(payload, (b) => b.toString(16).padStart(2, "0")).join("")}) in fragments of 1 octet, most of them ending inside a code point.`,
    expectation: "The message is echoed.",
    run(ctx) {
      utf8Message(ctx, payload);
      void ctx.sendMessage(payload, { fragmentSize: 1 });
      ctx.closeAfter(1000);
    },
  });
}
const INVALID_631 = concat([KOSME, fromHex("eda080"), bytes("edited")]);
for (const [id, fragmentSize] of [["6.3.1", undefined], ["6.3.2", 1]] as const) {
  add({
    id,
    section: 6,
    description: `Send an invalid UTF-8 text message (κόσμε, a surrogate, "edited")${fragmentSize ? " in fragments of 1 octet" : " unfragmented"}.`,
    expectation: "The connection is failed immediately (1007): the payload is not valid UTF-8 (RFC 6455 §8.1).",
    run(ctx) {
      ctx.expect({ OK: [] }, failUtf8);
      void ctx.sendMessage(INVALID_631, { fragmentSize });
      ctx.killAfter(1000);
    },
  });
}

/** 6.4.x: the invalid octet arrives in the second of three parts, after a wait. */
const FAIL_FAST = concat([KOSME, fromHex("f4908080"), bytes("edited")]); // 0xf4 0x90: above U+10FFFF, invalid at byte 12
for (const n of [1, 2, 3, 4]) {
  const asFrames = n <= 2;
  const parts = n % 2 === 1
    ? [FAIL_FAST.subarray(0, 11), FAIL_FAST.subarray(11, 15), FAIL_FAST.subarray(15)]
    : [FAIL_FAST.subarray(0, 12), FAIL_FAST.subarray(12, 13), FAIL_FAST.subarray(13)];
  add({
    id: `6.4.${n}`,
    section: 6,
    description: `Send an invalid UTF-8 text message in 3 ${asFrames ? "fragments (frames)" : "chops of one frame"}, with a wait after each: the first part is valid, the second ${n % 2 === 1 ? "holds 0xf4908080 (a code point above U+10FFFF)" : "is only the octet that makes the payload invalid (0x90)"}, the third is the rest.`,
    expectation: "The first part is accepted (the first wait runs out). The connection is failed (1007) as soon as the second part arrives, before the second wait runs out (fail-fast, RFC 6455 §8.1); failing only once the message is complete is NON-STRICT.",
    async run(ctx) {
      ctx.expect({ OK: [ev.timeout("A")], "NON-STRICT": [ev.timeout("A"), ev.timeout("B")] }, failUtf8);
      let chops = parts;
      if (asFrames) {
        await ctx.sendFrame({ opcode: OP.TEXT, fin: false, payload: parts[0] });
      } else {
        const mask = ctx.role === "client" ? Uint8Array.of(0x37, 0xfa, 0x21, 0x3d) : null;
        const frame = frameBytes(OP.TEXT, FAIL_FAST, true, 0, mask);
        const cut1 = frame.length - FAIL_FAST.length + parts[0].length;
        const cut2 = cut1 + parts[1].length;
        chops = [frame.subarray(0, cut1), frame.subarray(cut1, cut2), frame.subarray(cut2)];
        await ctx.sendRaw(chops[0]);
      }
      await ctx.wait(ctx.settings.patience);
      if (!ctx.isOpen) return;
      ctx.received.push(ev.timeout("A"));
      await (asFrames ? ctx.sendFrame({ opcode: OP.CONT, fin: false, payload: parts[1] }) : ctx.sendRaw(chops[1]));
      await ctx.wait(ctx.settings.patience);
      if (!ctx.isOpen) return;
      ctx.received.push(ev.timeout("B"));
      await (asFrames ? ctx.sendFrame({ opcode: OP.CONT, fin: true, payload: parts[2] }) : ctx.sendRaw(chops[2]));
      ctx.killAfter(1000);
    },
  });
}

/**
 * 6.5–6.23: the sequences of Markus Kuhn's UTF-8 decoder stress test, as Autobahn groups them.
 * Each is [valid?, bytes]; validity is stated, and checked against the runtime's decoder.
 */
function utf8Sequences(): { title: string; items: [boolean, Uint8Array][] }[] {
  const h = fromHex;
  const groups: { title: string; items: [boolean, Uint8Array][] }[] = [];
  const group = (title: string, items: [boolean, Uint8Array][]) => groups.push({ title, items });
  group("Some valid UTF-8 sequences", [
    [true, concat([bytes("hello"), h("24"), bytes("world")])],
    [true, concat([bytes("hello"), h("c2a2"), bytes("world")])],
    [true, concat([bytes("hello"), h("e282ac"), bytes("world")])],
    [true, concat([bytes("hello"), h("f0a4ada2"), bytes("world")])],
    [true, KOSME],
  ]);
  group("All prefixes of a valid UTF-8 string that contains multi-byte code points",
    Array.from({ length: KOSME.length }, (_, i) => [isUtf8(KOSME.subarray(0, i + 1)), KOSME.slice(0, i + 1)]));
  group("First possible sequence of a certain length", [[true, h("00")], [true, h("c280")], [true, h("e0a080")], [true, h("f0908080")]]);
  group("First possible sequence length 5/6 (invalid codepoints)", [[false, h("f888808080")], [false, h("fc8480808080")]]);
  group("Last possible sequence of a certain length", [[true, h("7f")], [true, h("dfbf")], [true, h("efbfbf")], [true, h("f48fbfbf")]]);
  group("Last possible sequence length 4/5/6 (invalid codepoints)", [[false, h("f7bfbfbf")], [false, h("fbbfbfbfbf")], [false, h("fdbfbfbfbfbf")]]);
  group("Other boundary conditions", [[true, h("ed9fbf")], [true, h("ee8080")], [true, h("efbfbd")], [true, h("f48fbfbf")], [false, h("f4908080")]]);
  const continuation = Uint8Array.from({ length: 0xbf - 0x80 }, (_, i) => 0x80 + i);
  group("Unexpected continuation bytes", [
    [false, h("80")], [false, h("bf")], [false, h("80bf")], [false, h("80bf80")], [false, h("80bf80bf")],
    [false, h("80bf80bf80")], [false, h("80bf80bf80bf")], [false, continuation],
  ]);
  group("Lonely start characters", ([[0xc0, 0xdf], [0xe0, 0xef], [0xf0, 0xf7], [0xf8, 0xfb], [0xfc, 0xfd]] as const).map(([from, to]) => {
    const out: number[] = [];
    for (let b = from; b < to; b++) out.push(b, 0x20);
    return [false, Uint8Array.from(out)] as [boolean, Uint8Array];
  }));
  const missing = ["c0", "e080", "f08080", "f8808080", "fc80808080", "df", "efbf", "f7bfbf", "fbbfbfbf", "fdbfbfbfbf"].map(h);
  group("Sequences with last continuation byte missing", missing.map((m) => [false, m]));
  group("Concatenation of incomplete sequences", [[false, concat(missing)]]);
  group("Impossible bytes", [[false, h("fe")], [false, h("ff")], [false, h("fefeffff")]]);
  group("Examples of an overlong ASCII character", ["c0af", "e080af", "f08080af", "f8808080af", "fc80808080af"].map((x) => [false, h(x)]));
  group("Maximum overlong sequences", ["c1bf", "e09fbf", "f08fbfbf", "f887bfbfbf", "fc83bfbfbfbf"].map((x) => [false, h(x)]));
  group("Overlong representation of the NUL character", ["c080", "e08080", "f0808080", "f880808080", "fc8080808080"].map((x) => [false, h(x)]));
  group("Single UTF-16 surrogates", ["eda080", "edadbf", "edae80", "edafbf", "edb080", "edbe80", "edbfbf"].map((x) => [false, h(x)]));
  group("Paired UTF-16 surrogates", [
    "eda080edb080", "eda080edbfbf", "edadbfedb080", "edadbfedbfbf", "edae80edb080", "edae80edbfbf", "edafbfedb080", "edafbfedbfbf",
  ].map((x) => [false, h(x)]));
  const nonCharacters: [boolean, Uint8Array][] = [[true, h("efbfbe")], [true, h("efbfbf")]];
  for (const z1 of [0xf0, 0xf1, 0xf2, 0xf3, 0xf4]) {
    for (const z2 of [0x8f, 0x9f, 0xaf, 0xbf]) {
      if (z1 === 0xf4 && z2 !== 0x8f) continue; // above U+10FFFF
      for (const z3 of [0xbe, 0xbf]) {
        if (z1 === 0xf0 && z2 === 0x8f) continue; // overlong
        nonCharacters.push([true, Uint8Array.of(z1, z2, 0xbf, z3)]);
      }
    }
  }
  group("Non-character code points (valid UTF-8)", nonCharacters);
  group("Unicode specials (i.e. replacement char)", ["efbfb9", "efbfba", "efbfbb", "efbfbc", "efbfbd", "efbfbe", "efbfbf"].map((x) => [true, h(x)]));
  for (const g of groups) {
    for (const [valid, data] of g.items) {
      if (valid !== isUtf8(data)) throw new Error(`catalogue bug: ${g.title}: 0x${Array.from(data, (b) => b.toString(16)).join("")}`);
    }
  }
  return groups;
}

/** Titles of the 6.5–6.23 groups, by sub-section. */
export const UTF8_GROUPS: Record<string, string> = {};

utf8Sequences().forEach((g, gi) => {
  const sub = 5 + gi;
  UTF8_GROUPS[`6.${sub}`] = g.title;
  g.items.forEach(([valid, payload], i) => {
    const hex = Array.from(payload, (b) => b.toString(16).padStart(2, "0")).join("");
    const variants = [
      { suffix: "", how: "in one frame", send: (ctx: CaseContext) => ctx.sendMessage(payload) },
      { suffix: "/frames", how: "(anyws) in frames of 1 octet each", send: (ctx: CaseContext) => ctx.sendMessage(payload, { fragmentSize: 1 }) },
      { suffix: "/bytes", how: "(anyws) in one frame written octet by octet", send: (ctx: CaseContext) => ctx.sendMessage(payload, { chop: 1 }) },
    ];
    for (const v of variants) {
      add({
        id: `6.${sub}.${i + 1}${v.suffix}`,
        section: 6,
        description: `${g.title}: send a text message whose payload is ${valid ? "valid" : "not valid"} UTF-8, ${v.how}: 0x${hex}.`,
        expectation: valid ? "The message is echoed." : "The connection is failed immediately (1007): the payload is not valid UTF-8 (RFC 6455 §8.1).",
        run(ctx) {
          if (valid) ctx.expect({ OK: [ev.text(payload)] }, closeNormal);
          else ctx.expect({ OK: [] }, failUtf8);
          void v.send(ctx);
          ctx.killAfter(1000);
        },
      });
    }
  });
});

// ---- 7 Close handling ------------------------------------------------------------------------------

function closeCase(id: string, description: string, expectation: string, run: (ctx: CaseContext) => void, extra: Partial<CaseDef> = {}): void {
  add({ id, section: 7, description, expectation, run, judge: wrongCodeFails, ...extra });
}

closeCase("7.1.1", "Send a message, then close.", "The message is echoed. Clean close with normal code.", (ctx) => {
  ctx.expect({ OK: [ev.text("Hello World!")] }, closeNormal);
  void ctx.sendFrame({ opcode: OP.TEXT, payload: "Hello World!" });
  ctx.killAfter(1000);
});
closeCase("7.1.2", "Send two close frames.", "Clean close with normal code; the second close frame is ignored.", (ctx) => {
  ctx.suppressClose = true;
  ctx.expect({ OK: [] }, closeNormal);
  void ctx.sendClose(NORMAL);
  void ctx.sendFrame({ opcode: OP.CLOSE });
  ctx.killAfter(1000);
});
closeCase("7.1.3", "Send a ping after the close frame.", "Clean close with normal code; no pong (nothing after a close frame is processed, RFC 6455 §5.5.1).", (ctx) => {
  ctx.suppressClose = true;
  ctx.expect({ OK: [] }, closeNormal);
  void ctx.sendClose(NORMAL);
  void ctx.sendFrame({ opcode: OP.PING });
  ctx.killAfter(1000);
});
closeCase("7.1.4", "Send a text message after the close frame.", "Clean close with normal code; the message is ignored.", (ctx) => {
  ctx.suppressClose = true;
  ctx.expect({ OK: [] }, closeNormal);
  void ctx.sendClose(NORMAL);
  void ctx.sendFrame({ opcode: OP.TEXT, payload: "Hello World!" });
  ctx.killAfter(1000);
});
closeCase("7.1.5", "Send the first fragment of a message, then close, then the last fragment.", "Clean close with normal code.", (ctx) => {
  ctx.suppressClose = true;
  ctx.expect({ OK: [] }, closeNormal);
  void ctx.sendFrame({ opcode: OP.TEXT, fin: false, payload: "fragment1" });
  void ctx.sendClose(NORMAL);
  void ctx.sendFrame({ opcode: OP.CONT, fin: true, payload: "fragment2" });
  ctx.killAfter(1000);
});
const BIG_71_6 = repeatTo("BAsd7&jh23", 256 * KiB);
closeCase(
  "7.1.6",
  "Send a 256 KiB text message, a small one, a close frame and a ping, back to back.",
  "Implementation-defined (INFORMATIONAL): the messages are echoed before the close if the peer processes them first.",
  (ctx) => {
    ctx.suppressClose = true;
    ctx.expect({ OK: [ev.text(BIG_71_6), ev.text("Hello World!")], "NON-STRICT": [] }, closeNormal);
    void ctx.sendFrame({ opcode: OP.TEXT, payload: BIG_71_6 });
    void ctx.sendFrame({ opcode: OP.TEXT, payload: "Hello World!" });
    void ctx.sendClose(NORMAL);
    void ctx.sendFrame({ opcode: OP.PING });
    ctx.killAfter(2000);
  },
  {
    judge(_ctx, r) {
      const seen = r.behavior === "OK" ? "the messages were echoed before the close" : r.behavior === "NON-STRICT" ? "the close was processed before the messages were echoed" : `received ${r.received}`;
      r.observed = `${seen}; ${r.observed}`;
      r.behavior = "INFORMATIONAL";
      r.behaviorClose = "INFORMATIONAL";
    },
  },
);

closeCase("7.3.1", "Send a close frame with payload length 0 (no code, no reason).", "Clean close with normal code (or none).", (ctx) => {
  ctx.expect({ OK: [] }, closeNormal);
  void ctx.sendClose();
  ctx.killAfter(1000);
});
closeCase("7.3.2", "Send a close frame with payload length 1.", "Close with protocol error (1002) or a dropped TCP connection (RFC 6455 §5.5.1: a body starts with a 2-byte code).", (ctx) => {
  ctx.expect({ OK: [] }, { closedByMe: true, closeCode: [PROTOCOL_ERROR], requireClean: false });
  void ctx.sendCloseRaw(bytes("a"));
  ctx.killAfter(1000);
});
closeCase("7.3.3", "Send a close frame with payload length 2 (a code, no reason).", "Clean close with normal code.", (ctx) => {
  ctx.expect({ OK: [] }, closeNormal);
  void ctx.sendClose(NORMAL);
  ctx.killAfter(1000);
});
closeCase("7.3.4", "Send a close frame with a code and a reason.", "Clean close with normal code.", (ctx) => {
  ctx.expect({ OK: [] }, closeNormal);
  void ctx.sendClose(NORMAL, "Hello World!");
  ctx.killAfter(1000);
});
closeCase("7.3.5", "Send a close frame with a code and a reason of the maximum length, 123 octets.", "Clean close with normal code.", (ctx) => {
  ctx.expect({ OK: [] }, closeNormal);
  void ctx.sendClose(NORMAL, "*".repeat(123));
  ctx.killAfter(1000);
});
closeCase("7.3.6", "Send a close frame with a code and a reason that is too long, 124 octets (a 126-octet control frame).", "Close with protocol error (1002) or a dropped TCP connection (RFC 6455 §5.5).", (ctx) => {
  ctx.expect({ OK: [] }, { closedByMe: true, closeCode: [PROTOCOL_ERROR], requireClean: false });
  void ctx.sendCloseRaw(closePayload(NORMAL, "*".repeat(124)));
  ctx.killAfter(1000);
});
closeCase("7.5.1", "Send a close frame whose reason is not valid UTF-8.", "Close with protocol error (1002) or invalid payload (1007), or a dropped TCP connection (RFC 6455 §5.5.1, §8.1).", (ctx) => {
  ctx.expect({ OK: [] }, { closedByMe: true, closeCode: [PROTOCOL_ERROR, INVALID_PAYLOAD], requireClean: false });
  void ctx.sendCloseRaw(closePayload(NORMAL, INVALID_631));
  ctx.killAfter(1000);
});

const VALID_CODES = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999, 1012, 1013, 1014];
VALID_CODES.forEach((code, i) => {
  const extra = i >= 13 ? "(anyws) " : "";
  closeCase(`7.7.${i + 1}`, `${extra}Send a close frame with the valid close code ${code}.`, "Clean close with normal or echoed code (RFC 6455 §7.4).", (ctx) => {
    ctx.expect({ OK: [] }, { closedByMe: true, closeCode: [NORMAL, code], requireClean: true });
    void ctx.sendClose(code);
    ctx.killAfter(1000);
  });
});
const INVALID_CODES = [0, 999, 1004, 1005, 1006, 1016, 1100, 2000, 2999, 1015];
INVALID_CODES.forEach((code, i) => {
  const extra = i >= 9 ? "(anyws) " : "";
  closeCase(`7.9.${i + 1}`, `${extra}Send a close frame with the invalid close code ${code}.`, "Close with protocol error (1002) or a dropped TCP connection (RFC 6455 §7.4.1: reserved or never sent on the wire).", (ctx) => {
    ctx.expect({ OK: [] }, { closedByMe: true, closeCode: [PROTOCOL_ERROR], requireClean: false });
    void ctx.sendCloseRaw(closePayload(code));
    ctx.killAfter(1000);
  });
});
for (const [i, code] of [[1, 5000], [2, 65535]] as const) {
  closeCase(`7.13.${i}`, `Send a close frame with the close code ${code}.`, "Undefined by the RFC (INFORMATIONAL): codes above 4999 are in no range of RFC 6455 §7.4.2.", (ctx) => {
    ctx.suppressClose = true;
    ctx.expect({ OK: [] }, { closedByMe: true, closeCode: [NORMAL, code, PROTOCOL_ERROR], requireClean: false });
    void ctx.sendCloseRaw(closePayload(code));
    ctx.killAfter(1000);
  }, {
    judge(_ctx, r) {
      r.behavior = "INFORMATIONAL";
      r.behaviorClose = "INFORMATIONAL";
    },
  });
}

// ---- 9 Limits/Performance ----------------------------------------------------------------------

/** A section-9 case: the peer echoes each message sent; the case reports its time. */
function perfCase(
  id: string,
  label: string,
  description: string,
  messageSize: number,
  send: (ctx: CaseContext) => void,
  expected: () => { binary: boolean; data: Uint8Array },
  count = 1,
  next?: (ctx: CaseContext) => void,
): void {
  // Per connection: a case may run on several connections at once (a fuzzing server, many agents).
  const state = new WeakMap<CaseContext, { want: { binary: boolean; data: Uint8Array }; got: number }>();
  add({
    id,
    section: 9,
    description,
    expectation: "Each message is echoed (the time taken is reported, not judged).",
    messageSize,
    label,
    timed: true,
    timeout: 120_000,
    run(ctx) {
      state.set(ctx, { want: expected(), got: 0 });
      ctx.result = "no echo arrived";
      ctx.behavior = "FAILED";
      ctx.expect({}, closeNormal);
      send(ctx);
      ctx.closeAfter(100_000);
    },
    onEvent(ctx, e) {
      if (e.type !== "message") return false;
      const s = state.get(ctx)!;
      const w = s.want;
      if (e.binary !== w.binary || !equalBytes(e.data, w.data)) {
        ctx.behavior = "FAILED";
        ctx.result = `echo ${s.got + 1} differs: got ${e.binary ? "binary" : "text"} of ${e.data.length} B, expected ${w.binary ? "binary" : "text"} of ${w.data.length} B`;
        void ctx.sendClose(NORMAL);
      } else if (++s.got < count) {
        next?.(ctx);
      } else {
        ctx.behavior = "OK";
        ctx.result = `${count === 1 ? "echo" : `${count} echoes`} received`;
        void ctx.sendClose(NORMAL);
      }
      return true;
    },
  });
}

const SIZES_91 = [64 * KiB, 256 * KiB, 1 * MiB, 4 * MiB, 8 * MiB, 16 * MiB];
const sizeName = (n: number) => (n >= MiB ? `${n / MiB} MiB` : n >= KiB ? `${n / KiB} KiB` : `${n}`);
for (const [sub, binary] of [[1, false], [2, true]] as const) {
  SIZES_91.forEach((size, i) => {
    const pattern = binary ? [0x00, 0xfe, 0x23, 0xfa, 0xf0] : "BAsd7&jh23";
    let payload: Uint8Array | null = null;
    const get = () => (payload ??= repeatTo(pattern, size));
    perfCase(`9.${sub}.${i + 1}`, sizeName(size), `Send a ${binary ? "binary" : "text"} message of ${sizeName(size)}.`, size, (ctx) => {
      void ctx.sendFrame({ opcode: binary ? OP.BINARY : OP.TEXT, payload: get() });
    }, () => ({ binary, data: get() }));
  });
}
const FRAGMENT_SIZES = [64, 256, 1 * KiB, 4 * KiB, 16 * KiB, 64 * KiB, 256 * KiB, 1 * MiB, 4 * MiB];
for (const [sub, binary] of [[3, false], [4, true]] as const) {
  FRAGMENT_SIZES.forEach((fragmentSize, i) => {
    let payload: Uint8Array | null = null;
    const get = () => (payload ??= repeatTo(binary ? [0xfe] : "*", 4 * MiB));
    perfCase(`9.${sub}.${i + 1}`, `frames of ${sizeName(fragmentSize)}`, `Send a ${binary ? "binary" : "text"} message of 4 MiB in fragments of ${sizeName(fragmentSize)}.`, 4 * MiB, (ctx) => {
      void ctx.sendMessage(get(), { binary, fragmentSize });
    }, () => ({ binary, data: get() }));
  });
}
const CHOP_SIZES = [64, 128, 256, 512, 1024, 2048];
for (const [sub, binary] of [[5, false], [6, true]] as const) {
  CHOP_SIZES.forEach((chop, i) => {
    let payload: Uint8Array | null = null;
    const get = () => (payload ??= repeatTo(binary ? [0x00, 0xfe, 0x23, 0xfa, 0xf0] : "BAsd7&jh23", 1 * MiB));
    perfCase(`9.${sub}.${i + 1}`, `chops of ${chop}`, `Send a ${binary ? "binary" : "text"} message of 1 MiB, written in chops of ${chop} octets.`, 1 * MiB, (ctx) => {
      void ctx.sendFrame({ opcode: binary ? OP.BINARY : OP.TEXT, payload: get(), chop });
    }, () => ({ binary, data: get() }));
  });
}
const ROUND_TRIP_SIZES = [0, 16, 64, 256, 1024, 4096];
for (const [sub, binary] of [[7, false], [8, true]] as const) {
  ROUND_TRIP_SIZES.forEach((size, i) => {
    const payload = repeatTo(binary ? [0xfe] : "*", size);
    const one = (ctx: CaseContext) => void ctx.sendFrame({ opcode: binary ? OP.BINARY : OP.TEXT, payload });
    perfCase(`9.${sub}.${i + 1}`, `1000 × ${size} B`, `Send 1000 ${binary ? "binary" : "text"} messages of ${size} octets, one after the echo of the other (round-trip time).`, size, one, () => ({ binary, data: payload }), 1000, one);
  });
}

// ---- 10 Auto-fragmentation ---------------------------------------------------------------------

add({
  id: "10.1.1",
  section: 10,
  description: "Send a text message of 65536 octets, auto-fragmented by the fuzzer into frames of 1300 octets.",
  expectation: "The message is echoed. Clean close with normal code.",
  run(ctx) {
    const payload = repeatTo("*", 65536);
    ctx.expect({ OK: [ev.text(payload)] }, closeNormal);
    void ctx.sendMessage(payload, { fragmentSize: 1300 });
    ctx.killAfter(10_000);
  },
});

const PEER_FRAGMENT_SIZE = 1300;

/** Checks that the peer sent each echoed message in frames of its configured fragment size. */
function judgeFragments(messages: Uint8Array[]) {
  return (ctx: CaseContext, r: CaseResult) => {
    const frames = ctx.rxDataFrames;
    const shape = frames.length > 12 ? `${frames.length} data frames` : `data frames of ${frames.map((x) => x[1]).join(", ")} octets`;
    const size = ctx.peerFragmentSize;
    if (size === undefined) {
      r.behavior = "INFORMATIONAL";
      r.behaviorClose = "INFORMATIONAL";
      r.observed = `the peer was not configured with a fragment size: it sent ${shape}; ${r.observed}`;
      return;
    }
    if (r.behavior !== "OK") return;
    const want: number[] = [];
    for (const m of messages) {
      if (m.length === 0) want.push(0);
      for (let offset = 0; offset < m.length; offset += size) want.push(Math.min(size, m.length - offset));
    }
    const got = frames.map((x) => x[1]);
    if (got.length !== want.length || got.some((n, i) => n !== want[i])) {
      r.behavior = "FAILED";
      r.observed = `with a fragment size of ${size}, expected ${want.length} data frames (${want.slice(0, 6).join(", ")}${want.length > 6 ? ", …" : ""} octets), got ${shape}; ${r.observed}`;
    }
  };
}

function peerFragmentCase(id: string, description: string, messages: { binary: boolean; data: Uint8Array }[]): void {
  add({
    id,
    section: 10,
    description: `(anyws) ${description} The peer under test echoes with its fragment size set to ${PEER_FRAGMENT_SIZE} (INFORMATIONAL for a peer without one).`,
    expectation: `The messages are echoed, each in frames of at most ${PEER_FRAGMENT_SIZE} payload octets (the last one shorter, none empty), as RFC 6455 §5.4 allows.`,
    peerFragmentSize: PEER_FRAGMENT_SIZE,
    run(ctx) {
      ctx.expect({ OK: messages.map((m) => (m.binary ? ev.binary(m.data) : ev.text(m.data))) }, closeNormal);
      for (const m of messages) void ctx.sendFrame({ opcode: m.binary ? OP.BINARY : OP.TEXT, payload: m.data });
      ctx.killAfter(10_000);
    },
    judge: judgeFragments(messages.map((m) => m.data)),
  });
}

peerFragmentCase("10.1.2", "Send a text message of 65536 octets.", [{ binary: false, data: repeatTo("*", 65536) }]);
peerFragmentCase("10.1.3", "Send a binary message of 65536 octets.", [{ binary: true, data: repeatTo([0x00, 0xfe, 0x23, 0xfa, 0xf0], 65536) }]);
peerFragmentCase("10.1.4", "Send a text message of 8000 3-octet characters (€), so that fragment boundaries fall inside characters.", [{ binary: false, data: bytes("€".repeat(8000)) }]);
peerFragmentCase("10.1.5", "Send text messages of 0, 1300 and 2600 octets (no empty trailing fragment).", [0, 1300, 2600].map((n) => ({ binary: false, data: repeatTo("x", n) })));

// ---- 12, 13 permessage-deflate ------------------------------------------------------------------------

const DEFLATE_SIZES: [number, number][] = [
  [16, 0], [64, 0], [256, 0], [1024, 0], [4096, 0], [8192, 0], [16384, 0], [32768, 0], [65536, 0], [131072, 0],
  [8192, 256], [16384, 256], [32768, 256], [65536, 256], [131072, 256], [131072, 1024], [131072, 4096], [131072, 32768],
];
const DEFLATE_DATA: [DataKind, boolean, string][] = [
  ["json", false, "JSON data (text)"],
  ["bitmap", true, "a 512×512 bitmap (binary)"],
  ["faust", true, "human-readable text, in the style of Goethe's Faust I (binary)"],
  ["html", false, "HTML (text)"],
  ["pdf", true, "PDF-like data: text and incompressible streams (binary)"],
];
/** 13.x: Autobahn's (no_context_takeover, max_window_bits) tuples, what the fuzzer asks of the peer. */
const DEFLATE_PARAMS: [boolean, number][][] = [
  [[false, 0]],
  [[true, 0]],
  [[false, 8]],
  [[false, 15]],
  [[true, 8]],
  [[true, 15]],
  [[true, 8], [true, 0], [false, 0]],
];
const describeRequest = ([nct, bits]: [boolean, number]) =>
  nct || bits ? [nct ? "no_context_takeover" : "", bits ? `max_window_bits=${bits}` : ""].filter(Boolean).join(" + ") : "(nothing)";

function deflateCase(id: string, section: number, description: string, requests: [boolean, number][], kind: DataKind, binary: boolean, size: number, frag: number): void {
  add({
    id,
    section,
    description,
    expectation: "Each message is echoed (compressed or not, as the peer chooses: RFC 7692 §6). Clean close with normal code.",
    deflate: { requests: requests.map(([noContextTakeover, maxWindowBits]) => ({ noContextTakeover, maxWindowBits })) },
    // The give-up timer is killAfter below, which grows with ANYWS_CONFORMANCE_DEFLATE_MESSAGES.
    timeout: 600_000,
    run(ctx) {
      if (!ctx.deflate) {
        ctx.behavior = "INFORMATIONAL";
        ctx.result = "the peer did not negotiate permessage-deflate (UNIMPLEMENTED in Autobahn's terms)";
        ctx.expect({}, closeNormal);
        void ctx.sendClose(NORMAL);
        ctx.killAfter(1000);
        return;
      }
      const count = ctx.settings.deflateMessages;
      const messages = Array.from({ length: count }, (_, i) => payloadOf(kind, size, i));
      ctx.expect({ OK: messages.map((m) => (binary ? ev.binary(m) : ev.text(m))) }, closeNormal);
      for (const m of messages) void ctx.sendMessage(m, { binary, fragmentSize: frag || undefined, compress: true });
      ctx.killAfter(Math.max(10_000, count * (size / 1024) * 2));
    },
    onEvent(ctx, e) {
      // A wrong echo decides the case: close now rather than wait for the rest until the kill.
      const i = ctx.received.length;
      const want = binary ? ev.binary(payloadOf(kind, size, i)) : ev.text(payloadOf(kind, size, i));
      const same = e.type === "message" && e.binary === binary && equalBytes(e.data, (want as { data: Uint8Array }).data);
      if (!same && ctx.isOpen) {
        ctx.note(`echo ${i + 1} differs from message ${i + 1}: closing`);
        void ctx.sendClose(NORMAL);
      }
      return false;
    },
  });
}

/** Sub-section titles of 12 and 13. */
export const DEFLATE_GROUPS: Record<string, string> = {};
DEFLATE_DATA.forEach(([kind, binary, data], d) => {
  DEFLATE_GROUPS[`12.${d + 1}`] = data;
  DEFLATE_SIZES.forEach(([size, frag], i) => {
    deflateCase(
      `12.${d + 1}.${i + 1}`,
      12,
      `Send compressed messages of ${size} octets of ${data}, ${frag ? `in frames of ${frag} compressed octets` : "unfragmented"}; permessage-deflate with the default offer (Autobahn: 1000 messages; here ANYWS_CONFORMANCE_DEFLATE_MESSAGES, default 10).`,
      [[false, 0]],
      kind,
      binary,
      size,
      frag,
    );
  });
});
DEFLATE_PARAMS.forEach((requests, p) => {
  const params = requests.map(describeRequest).join(", ");
  DEFLATE_GROUPS[`13.${p + 1}`] = `asks ${params}`;
  DEFLATE_SIZES.forEach(([size, frag], i) => {
    deflateCase(
      `13.${p + 1}.${i + 1}`,
      13,
      `Send compressed messages of ${size} octets of JSON data, ${frag ? `in frames of ${frag} compressed octets` : "unfragmented"}; permessage-deflate, the fuzzer asking the peer for ${params} (a fuzzing client offers ${requests.length > 1 ? "these as three offers, " : ""}server_no_context_takeover / server_max_window_bits, and client_max_window_bits; a fuzzing server answers the first offer with client_no_context_takeover / client_max_window_bits if the client offered it${requests.length > 1 ? ", asking for the first tuple" : ""}).`,
      requests,
      "json",
      false,
      size,
      frag,
    );
  });
});

/** Orders case ids numerically, component by component; a variant ("/frames") after its base. */
function compareIds(a: string, b: string): number {
  const [baseA, variantA = ""] = a.split("/");
  const [baseB, variantB = ""] = b.split("/");
  const x = baseA.split(".").map(Number);
  const y = baseB.split(".").map(Number);
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    if ((x[i] ?? -1) !== (y[i] ?? -1)) return (x[i] ?? -1) - (y[i] ?? -1);
  }
  const order = ["", "frames", "bytes"];
  return order.indexOf(variantA) - order.indexOf(variantB);
}

/** Every case, in order. */
export const CASES: readonly CaseDef[] = cases.sort((a, b) => compareIds(a.id, b.id));

/** The cases whose id matches one of the patterns ("6.4.1", "6.4", "6.*", "9", "*"). */
export function selectCases(patterns: readonly string[] = ["*"]): CaseDef[] {
  const match = (id: string, p: string) => {
    if (p === "*") return true;
    const base = id.split("/")[0];
    const q = p.endsWith(".*") ? p.slice(0, -2) : p;
    return id === q || base === q || base.startsWith(`${q}.`);
  };
  return cases.filter((c) => patterns.some((p) => match(c.id, p)));
}

/** Sub-section titles of section 9, for the timing tables. */
export const TIMED_GROUPS: Record<string, string> = {
  "9.1": "text message",
  "9.2": "binary message",
  "9.3": "4 MiB text message, fragmented",
  "9.4": "4 MiB binary message, fragmented",
  "9.5": "1 MiB text message, written in chops",
  "9.6": "1 MiB binary message, written in chops",
  "9.7": "text round trips",
  "9.8": "binary round trips",
};
