/**
 * The commands that send (RFC 6455 §5.4-§5.6, §6.1): messages, fragments of one, prepared
 * frames, pings, pongs and our close frame, each routed by one plan (writer.ts `planSend`) to the
 * fast path, the frame writer at once, or the extension pipeline's queue. A layer of the
 * connection (options.ts tells the layers).
 */
import { encodeUtf8, textEncoder } from "./bytes.ts";
import { WebSocketError } from "./errors.ts";
import { ReadyState } from "./events.ts";
import { ExtensionPipeline } from "./extension-pipeline.ts";
import { MAX_CONTROL_PAYLOAD, Opcode } from "./frame.ts";
import type { SendOptions } from "./options.ts";
import { decodeUtf8 } from "./utf8.ts";
import { type PreparedMessage, Send, planSend } from "./writer.ts";

/** The sender layer (options.ts tells the layers). */
export abstract class Sender extends ExtensionPipeline {
  // The message being sent with `fin: false`.
  private sendingOpcode = 0;

  /** A text message: a string, or bytes that must be valid UTF-8 (RFC 6455 §5.6). */
  protected queueText(data: string | Uint8Array, options: SendOptions | undefined): void {
    if (typeof data === "string") {
      // For ASCII the string's length is its byte length: the plan for it is the plan for the bytes.
      if (this.plan(data.length, options) === Send.SMALL && this.writeAsciiText(data)) {
        this.lastSent = this.now;
        return;
      }
      this.queueMessage(Opcode.TEXT, encodeUtf8(data, this.tuning.allocator), true, options);
      return;
    }
    if (decodeUtf8(data) === null) throw new WebSocketError("ERR_INVALID_UTF8", "text message is not valid UTF-8");
    this.queueMessage(Opcode.TEXT, data, false, options);
  }

  protected queueBinary(data: Uint8Array, options: SendOptions | undefined): void {
    this.queueMessage(Opcode.BINARY, data, false, options);
  }

  protected queuePrepared(message: PreparedMessage): void {
    if (this.sendingOpcode !== 0) throw new WebSocketError("ERR_INVALID_STATE", "a fragmented message is being sent");
    this.lastSent = this.now;
    // Nothing to wait for: written at once, without a step to queue (pub/sub sends this to many).
    if (this.outgoingImmediate) this.preparedInTurn(message);
    else this.queueOutgoing(message.size, () => this.preparedInTurn(message));
  }

  private preparedInTurn(message: PreparedMessage): void {
    if (this.closeWritten || this.state === ReadyState.CLOSED) return;
    this.writePreparedFrames(message);
  }

  /** A ping or pong (RFC 6455 §5.5.2, §5.5.3): at most 125 bytes, between the frames of messages. */
  protected queueControl(opcode: number, data: Uint8Array | string): void {
    const payload = typeof data === "string" ? textEncoder.encode(data) : data;
    if (payload.length > MAX_CONTROL_PAYLOAD) {
      throw new WebSocketError("ERR_CONTROL_PAYLOAD_TOO_LONG", "ping and pong payloads are limited to 125 bytes");
    }
    this.writeFrame(opcode, payload);
  }

  /** Queues our close frame behind the messages already being sent (RFC 6455 §5.5.1: nothing after it). */
  protected queueClose(payload: Uint8Array): void {
    this.closeQueued();
    this.runOutgoing(() => {
      if (this.state === ReadyState.CLOSED && this.transportDone) return; // aborted meanwhile
      this.writeFrame(Opcode.CLOSE, payload);
      this.closeFrameWritten(payload);
    });
  }

  /** The route of a message part of `length` bytes (writer.ts `planSend`). */
  private plan(length: number, options: SendOptions | undefined): number {
    const whole = this.sendingOpcode === 0 && (options?.fin ?? true);
    const transform = this.extensions.length !== 0 && options?.compress !== false;
    return planSend(length, whole, transform, this.outgoingImmediate, this.options.fragmentSize);
  }

  private queueMessage(opcode: number, payload: Uint8Array, owned: boolean, options: SendOptions | undefined): void {
    const fin = options?.fin ?? true;
    if (this.sendingOpcode !== 0 && this.sendingOpcode !== opcode) {
      throw new WebSocketError("ERR_INVALID_STATE", "a fragmented message of the other type is being sent");
    }
    const route = this.plan(payload.length, options);
    // RFC 6455 §5.4: the frames after the first of a fragmented message are continuations.
    const frameOpcode = this.sendingOpcode !== 0 ? Opcode.CONTINUATION : opcode;
    this.sendingOpcode = fin ? 0 : opcode;
    this.lastSent = this.now;
    if (route === Send.TRANSFORMED) {
      this.encodeOutgoing(payload, opcode === Opcode.BINARY, (encoded) =>
        this.messageInTurn(opcode, encoded.data, true, encoded.rsv, encoded.data !== payload || owned));
    } else if (route === Send.QUEUED) {
      this.queueOutgoing(payload.length, () => this.messageInTurn(frameOpcode, payload, fin, 0, owned));
    } else {
      this.messageInTurn(frameOpcode, payload, fin, 0, owned);
    }
  }

  private messageInTurn(opcode: number, payload: Uint8Array, fin: boolean, rsv: number, owned: boolean): void {
    if (this.closeWritten || this.state === ReadyState.CLOSED) return; // aborted while this waited
    this.writeMessage(opcode, payload, fin, rsv, owned);
  }
}
