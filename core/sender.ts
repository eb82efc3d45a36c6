/**
 * The commands that send (RFC 6455 §5.4-§5.6, §6.1): messages, fragments of one, prepared
 * frames, pings, pongs and our close frame, each routed by one plan (writer.ts `planSend`) to the
 * fast path, the frame writer at once, or the extension pipeline's queue.
 */
import { encodeUtf8, textEncoder } from "./bytes.ts";
import type { ClosingHandshake } from "./closing.ts";
import { WebSocketError } from "./errors.ts";
import { ReadyState } from "./events.ts";
import { type ExtensionPipeline, extensionFailure } from "./extension-pipeline.ts";
import { MAX_CONTROL_PAYLOAD, Opcode } from "./frame.ts";
import type { SendOptions } from "./options.ts";
import type { Timers } from "./timers.ts";
import type { ByteAllocator } from "./tuning.ts";
import { decodeUtf8 } from "./utf8.ts";
import { type FrameWriter, type PreparedMessage, Send, planSend } from "./writer.ts";

export class Sender {
  // The message being sent with `fin: false`.
  private sendingOpcode = 0;
  private readonly writer: FrameWriter;
  private readonly closing: ClosingHandshake;
  private readonly pipeline: ExtensionPipeline;
  private readonly timers: Timers;
  private readonly fragmentSize: number;
  private readonly allocator: ByteAllocator | null;
  /** Fails the connection (an extension failed on a message to send). */
  private readonly fail: (code: number, reason: string) => void;

  constructor(
    writer: FrameWriter,
    closing: ClosingHandshake,
    pipeline: ExtensionPipeline,
    timers: Timers,
    fragmentSize: number,
    allocator: ByteAllocator | null,
    fail: (code: number, reason: string) => void,
  ) {
    this.writer = writer;
    this.closing = closing;
    this.pipeline = pipeline;
    this.timers = timers;
    this.fragmentSize = fragmentSize;
    this.allocator = allocator;
    this.fail = fail;
  }

  /** A text message: a string, or bytes that must be valid UTF-8 (RFC 6455 §5.6). */
  text(data: string | Uint8Array, options: SendOptions | undefined): void {
    if (typeof data === "string") {
      // For ASCII the string's length is its byte length: the plan for it is the plan for the bytes.
      if (this.plan(data.length, options) === Send.SMALL && this.writer.asciiText(data)) {
        this.timers.lastSent = this.timers.now;
        return;
      }
      this.message(Opcode.TEXT, encodeUtf8(data, this.allocator), true, options);
      return;
    }
    if (decodeUtf8(data) === null) throw new WebSocketError("ERR_INVALID_UTF8", "text message is not valid UTF-8");
    this.message(Opcode.TEXT, data, false, options);
  }

  binary(data: Uint8Array, options: SendOptions | undefined): void {
    this.message(Opcode.BINARY, data, false, options);
  }

  prepared(message: PreparedMessage): void {
    if (this.sendingOpcode !== 0) throw new WebSocketError("ERR_INVALID_STATE", "a fragmented message is being sent");
    this.timers.lastSent = this.timers.now;
    // Nothing to wait for: written at once, without a step to queue (pub/sub sends this to many).
    if (this.pipeline.outgoingImmediate) this.writePrepared(message);
    else this.pipeline.queueOutgoing(message.size, () => this.writePrepared(message));
  }

  private writePrepared(message: PreparedMessage): void {
    if (this.closing.closeWritten || this.closing.state === ReadyState.CLOSED) return;
    this.writer.prepared(message);
  }

  /** A ping or pong (RFC 6455 §5.5.2, §5.5.3): at most 125 bytes, between the frames of messages. */
  control(opcode: number, data: Uint8Array | string): void {
    const payload = typeof data === "string" ? textEncoder.encode(data) : data;
    if (payload.length > MAX_CONTROL_PAYLOAD) {
      throw new WebSocketError("ERR_CONTROL_PAYLOAD_TOO_LONG", "ping and pong payloads are limited to 125 bytes");
    }
    this.writer.frame(opcode, payload);
  }

  /** Queues our close frame behind the messages already being sent (RFC 6455 §5.5.1: nothing after it). */
  close(payload: Uint8Array): void {
    const c = this.closing;
    c.closeQueued();
    this.pipeline.runOutgoing(() => {
      if (c.state === ReadyState.CLOSED && c.transportDone) return; // aborted meanwhile
      this.writer.frame(Opcode.CLOSE, payload);
      c.closeFrameWritten(payload);
    });
  }

  /** The route of a message part of `length` bytes (writer.ts `planSend`). */
  private plan(length: number, options: SendOptions | undefined): number {
    const whole = this.sendingOpcode === 0 && (options?.fin ?? true);
    const transform = this.pipeline.extensions.length !== 0 && options?.compress !== false;
    return planSend(length, whole, transform, this.pipeline.outgoingImmediate, this.fragmentSize);
  }

  private message(opcode: number, payload: Uint8Array, owned: boolean, options: SendOptions | undefined): void {
    const fin = options?.fin ?? true;
    if (this.sendingOpcode !== 0 && this.sendingOpcode !== opcode) {
      throw new WebSocketError("ERR_INVALID_STATE", "a fragmented message of the other type is being sent");
    }
    const route = this.plan(payload.length, options);
    // RFC 6455 §5.4: the frames after the first of a fragmented message are continuations.
    const frameOpcode = this.sendingOpcode !== 0 ? Opcode.CONTINUATION : opcode;
    this.sendingOpcode = fin ? 0 : opcode;
    this.timers.lastSent = this.timers.now;
    if (route === Send.TRANSFORMED) {
      this.pipeline.encode(
        payload,
        opcode === Opcode.BINARY,
        (encoded) => this.write(opcode, encoded.data, true, encoded.rsv, encoded.data !== payload || owned),
        (error) => {
          const { code, reason } = extensionFailure(error);
          this.fail(code, reason);
        },
      );
    } else if (route === Send.QUEUED) {
      this.pipeline.queueOutgoing(payload.length, () => this.write(frameOpcode, payload, fin, 0, owned));
    } else {
      this.write(frameOpcode, payload, fin, 0, owned);
    }
  }

  private write(opcode: number, payload: Uint8Array, fin: boolean, rsv: number, owned: boolean): void {
    if (this.closing.closeWritten || this.closing.state === ReadyState.CLOSED) return; // aborted while this waited
    this.writer.message(opcode, payload, fin, rsv, owned);
  }
}
