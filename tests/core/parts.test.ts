/**
 * The layers of a connection on their own (options.ts tells the layers; connection.ts is the top
 * one, and the other tests drive them through it): the send plan, the message assembler's routes
 * and its fast path, the closing handshake's record and ready state, the timers' deadlines. Each
 * layer is reached through a small subclass that records its abstract calls or shows its state.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { ClosingHandshake, parseClosePayload } from "../../core/closing.ts";
import { type ConnectionEvent, ReadyState } from "../../core/events.ts";
import { MERGE_PAYLOAD_MAX, Opcode } from "../../core/frame.ts";
import { MessageAssembler } from "../../core/message.ts";
import type { ConnectionOptions } from "../../core/options.ts";
import { Due, Timers } from "../../core/timers.ts";
import { type TraceRecord } from "../../core/trace.ts";
import { utf8 } from "../support/bytes.ts";
import { Send, planSend } from "../../core/writer.ts";

describe("planSend: one route per message part", () => {
  test("extensions first, then the queue, then fragmentation, then the frame size", () => {
    // planSend(length, whole, transform, immediate, fragmentSize)
    assert.equal(planSend(10, true, true, true, Infinity), Send.TRANSFORMED);
    assert.equal(planSend(10, true, true, false, Infinity), Send.TRANSFORMED, "transformed messages wait in the pipeline's own queue");
    assert.equal(planSend(10, false, true, true, Infinity), Send.FRAME, "a part of a fragmented message is never transformed");
    assert.equal(planSend(10, true, false, false, Infinity), Send.QUEUED);
    assert.equal(planSend(10, false, false, false, 4), Send.QUEUED);
    assert.equal(planSend(10, true, false, true, 4), Send.FRAGMENTS);
    assert.equal(planSend(10, true, false, true, 10), Send.SMALL);
    assert.equal(planSend(MERGE_PAYLOAD_MAX, true, false, true, Infinity), Send.SMALL);
    assert.equal(planSend(MERGE_PAYLOAD_MAX + 1, true, false, true, Infinity), Send.FRAME);
    assert.equal(planSend(10, false, false, true, Infinity), Send.FRAME, "the fast path is for whole messages only");
  });
});

/** Records what the assembler hands on; fails as a connection would (stop, report). */
class RecordingAssembler extends MessageAssembler {
  readonly log: unknown[] = [];

  constructor(limits: ConnectionOptions) {
    super(false, limits);
  }

  protected deliver(event: ConnectionEvent): void {
    this.log.push(event);
  }

  protected fail(code: number, reason: string): boolean {
    this.log.push({ fail: code, reason });
    return false;
  }

  protected receiveControl(opcode: number, payload: Uint8Array): boolean {
    this.log.push({ control: opcode, payload: Array.from(payload) });
    return true;
  }

  protected override receiveTransformed(binary: boolean, rsv: number, payload: Uint8Array): void {
    this.log.push({ transformed: binary ? "binary" : "text", rsv, payload: Array.from(payload) });
  }

  protected wake(): void {}

  protected crash(error: unknown): void {
    throw error;
  }
}

const LIMITS = { maxMessageSize: 100, maxFragments: 3, streamThreshold: Infinity };

describe("MessageAssembler", () => {
  test("the fast path takes a whole short text frame, and only that", () => {
    const assembler = new RecordingAssembler(LIMITS);
    const log = assembler.log;
    const chunk = utf8("xxhello");
    assert.ok(assembler.onFrameStart(Opcode.TEXT, true, 0, 5));
    assert.equal(assembler.takeWholePayload(chunk, 2, 7, null), true);
    assert.deepEqual(log, [{ type: "text", data: "hello" }]);

    // Not whole (fin clear), binary, or transformed: declined, with the chunk untouched.
    for (const [opcode, fin, rsv] of [[Opcode.TEXT, false, 0], [Opcode.BINARY, true, 0], [Opcode.TEXT, true, 0x40]] as const) {
      const fresh = new RecordingAssembler(LIMITS);
      assert.ok(fresh.onFrameStart(opcode, fin, rsv, 5));
      const key = new Uint8Array([1, 2, 3, 4]);
      assert.equal(fresh.takeWholePayload(chunk, 2, 7, key), false, `${opcode} fin=${fin} rsv=${rsv}`);
      assert.deepEqual(Array.from(chunk), Array.from(utf8("xxhello")));
    }

    // Over the stream threshold: declined, so that it is streamed.
    const streaming = new RecordingAssembler({ ...LIMITS, streamThreshold: 4 });
    assert.ok(streaming.onFrameStart(Opcode.TEXT, true, 0, 5));
    assert.equal(streaming.takeWholePayload(chunk, 2, 7, null), false);
  });

  test("fragments are joined; bad UTF-8 fails at the first bad byte, before the message ends", () => {
    const assembler = new RecordingAssembler(LIMITS);
    const log = assembler.log;
    assert.ok(assembler.onFrameStart(Opcode.TEXT, false, 0, 2));
    assert.ok(assembler.onFramePayload(new Uint8Array([0xc3]), false)); // the first byte of "é"
    assert.ok(assembler.onFramePayload(new Uint8Array([0xa9]), true));
    assert.ok(assembler.onFrameStart(Opcode.CONTINUATION, true, 0, 1));
    assert.ok(assembler.onFramePayload(utf8("!"), true));
    assert.deepEqual(log, [{ type: "text", data: "é!" }]);

    log.length = 0;
    assert.ok(assembler.onFrameStart(Opcode.TEXT, false, 0, 3));
    // RFC 6455 §8.1: 0xC0 can never start a character.
    assert.equal(assembler.onFramePayload(new Uint8Array([0x61, 0xc0]), false), false);
    assert.deepEqual(log, [{ fail: 1007, reason: "invalid UTF-8 in text message" }]);
  });

  test("limits are checked on each header, before any payload is held", () => {
    const assembler = new RecordingAssembler(LIMITS);
    const log = assembler.log;
    assert.equal(assembler.onFrameStart(Opcode.BINARY, true, 0, 101), false);
    assert.deepEqual(log, [{ fail: 1009, reason: "message over 100 bytes" }]);

    const fragments = new RecordingAssembler(LIMITS);
    assert.ok(fragments.onFrameStart(Opcode.BINARY, false, 0, 0));
    assert.ok(fragments.onFramePayload(new Uint8Array(0), true));
    assert.ok(fragments.onFrameStart(Opcode.CONTINUATION, false, 0, 0));
    assert.ok(fragments.onFramePayload(new Uint8Array(0), true));
    assert.ok(fragments.onFrameStart(Opcode.CONTINUATION, false, 0, 0));
    assert.ok(fragments.onFramePayload(new Uint8Array(0), true));
    assert.equal(fragments.onFrameStart(Opcode.CONTINUATION, true, 0, 0), false);
    assert.deepEqual(fragments.log, [{ fail: 1009, reason: "message split into more than 3 frames" }]);
  });

  test("control frames and transformed messages are handed on whole", () => {
    const assembler = new RecordingAssembler(LIMITS);
    const log = assembler.log;
    assert.ok(assembler.onFrameStart(Opcode.TEXT, false, 0x40, 2));
    assert.ok(assembler.onFramePayload(new Uint8Array([1, 2]), true));
    // A ping between the fragments, its payload in two reads.
    assert.ok(assembler.onFrameStart(Opcode.PING, true, 0, 3));
    assert.ok(assembler.onFramePayload(new Uint8Array([9]), false));
    assert.ok(assembler.onFramePayload(new Uint8Array([8, 7]), true));
    assert.ok(assembler.onFrameStart(Opcode.CONTINUATION, true, 0, 1));
    assert.ok(assembler.onFramePayload(new Uint8Array([3]), true));
    assert.deepEqual(log, [
      { control: Opcode.PING, payload: [9, 8, 7] },
      { transformed: "text", rsv: 0x40, payload: [1, 2, 3] },
    ]);
  });
});

/** Shows the closing handshake's record and drives it as the connection does. */
class ClosingProbe extends ClosingHandshake {
  get readyState(): ReadyState {
    return this.state;
  }
  get changedAt(): number {
    return this.stateChangedAt;
  }
  get serverEndsTcp(): boolean {
    return this.endsTcpFirst;
  }
  open(): void {
    this.enterOpen();
  }
  received(code: number, reason: string): void {
    this.closeFrameReceived(code, reason);
  }
  queued(): void {
    this.closeQueued();
  }
  written(payload: Uint8Array): void {
    this.closeFrameWritten(payload);
  }
  closed(now: number, code: number, reason: string, wasClean: boolean): ConnectionEvent | null {
    return this.enterClosed(now, code, reason, wasClean);
  }
}

describe("ClosingHandshake", () => {
  test("records both close frames and who started, and changes readyState in order", () => {
    const trace: TraceRecord[] = [];
    const closing = new ClosingProbe(false, { trace: (record) => void trace.push(record) });
    assert.equal(closing.readyState, ReadyState.CONNECTING);
    closing.open();
    closing.received(1001, "bye");
    closing.queued();
    closing.written(new Uint8Array([0x03, 0xe9]));
    const event = closing.closed(5, 1001, "bye", true);
    assert.deepEqual(event, {
      type: "close",
      code: 1001,
      reason: "bye",
      wasClean: true,
      sent: { code: 1001, reason: "" },
      received: { code: 1001, reason: "bye" },
      initiator: "remote",
    });
    assert.equal(closing.closed(6, 1006, "", false), null, "closed once");
    assert.equal(closing.changedAt, 5);
    assert.deepEqual(trace.map((r) => r.type === "state" && r.name), ["OPEN", "CLOSED"]);
    assert.equal(closing.serverEndsTcp, true, "RFC 6455 §7.1.1: the server closes TCP first");
    assert.equal(new ClosingProbe(true, {}).serverEndsTcp, false);
  });

  test("a connection that ends without a close frame either way reports none", () => {
    const closing = new ClosingProbe(true, {});
    closing.open();
    assert.deepEqual(closing.closed(1, 1006, "", false), {
      type: "close",
      code: 1006,
      reason: "",
      wasClean: false,
      sent: null,
      received: null,
      initiator: null,
    });
  });

  test("parseClosePayload: RFC 6455 §5.5.1 and §7.4", () => {
    assert.deepEqual(parseClosePayload(new Uint8Array(0)), { code: 1005, reason: "" });
    assert.deepEqual(parseClosePayload(new Uint8Array([0x03])), { failCode: 1002, reason: "close frame with a 1-byte payload" });
    assert.deepEqual(parseClosePayload(new Uint8Array([0x03, 0xed])), { failCode: 1002, reason: "invalid close code 1005" });
    assert.deepEqual(parseClosePayload(new Uint8Array([0x0f, 0xa0, 0xff])), { failCode: 1007, reason: "close reason is not valid UTF-8" });
    assert.deepEqual(parseClosePayload(new Uint8Array([0x0f, 0xa0, 0x68, 0x69])), { code: 4000, reason: "hi" });
  });
});

/** Sets the state the deadlines depend on, and asks what is due. */
class TimersProbe extends Timers {
  set(fields: { state?: ReadyState; now?: number; lastReceived?: number; lastSent?: number; pingSentAt?: number; changedAt?: number; transportDone?: true }): this {
    if (fields.state !== undefined) this.state = fields.state;
    if (fields.now !== undefined) this.now = fields.now;
    if (fields.lastReceived !== undefined) this.lastReceived = fields.lastReceived;
    if (fields.lastSent !== undefined) this.lastSent = fields.lastSent;
    if (fields.pingSentAt !== undefined) this.pingSentAt = fields.pingSentAt;
    if (fields.changedAt !== undefined) this.stateChangedAt = fields.changedAt;
    if (fields.transportDone) this.transportDone = true;
    return this;
  }
  due(): number {
    return this.dueNow();
  }
}

describe("Timers", () => {
  const options = { handshakeTimeout: 100, idleTimeout: 1000, keepaliveInterval: 300, pongTimeout: 50, closeTimeout: 200 };

  test("each state's deadline, and what it asks for once reached", () => {
    const timers = new TimersProbe(false, options);
    assert.equal(timers.deadline, 100);
    assert.equal(new TimersProbe(false, options).set({ transportDone: true }).deadline, Infinity);
    timers.set({ now: 100 });
    assert.equal(timers.due(), Due.HANDSHAKE_TIMEOUT);

    timers.set({ state: ReadyState.OPEN, lastReceived: 100, lastSent: 100 });
    assert.equal(timers.deadline, 400, "the keepalive comes before the idle timeout");
    timers.set({ now: 399 });
    assert.equal(timers.due(), Due.NOTHING);
    timers.set({ now: 400 });
    assert.equal(timers.due(), Due.KEEPALIVE_PING);
    timers.set({ pingSentAt: 400 });
    assert.equal(timers.deadline, 450);
    timers.set({ now: 450 });
    assert.equal(timers.due(), Due.PONG_TIMEOUT);
    timers.set({ pingSentAt: -1 });

    // Idle: no frame either way (the later of the last read and the last send counts).
    const idle = new TimersProbe(false, { idleTimeout: 1000 }).set({ state: ReadyState.OPEN, lastReceived: 100, lastSent: 600 });
    assert.equal(idle.deadline, 1600);
    idle.set({ now: 1600 });
    assert.equal(idle.due(), Due.IDLE_TIMEOUT);

    timers.set({ state: ReadyState.CLOSING, changedAt: 2000 });
    assert.equal(timers.deadline, 2200);
    timers.set({ now: 2200 });
    assert.equal(timers.due(), Due.CLOSE_TIMEOUT);
    timers.set({ state: ReadyState.CLOSED, changedAt: 3000 });
    assert.equal(timers.deadline, 3200, "a client waits for the server's TCP close");
    timers.set({ now: 3200 });
    assert.equal(timers.due(), Due.TCP_CLOSE_TIMEOUT);
    timers.set({ transportDone: true });
    assert.equal(timers.deadline, Infinity);
  });
});
