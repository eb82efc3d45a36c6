/**
 * Message assembly (RFC 6455 §5.4, §5.6, §8.1): the frame handler that turns frames into
 * messages. It holds the fragments of the message in progress, checks the size and fragment
 * limits on each header before any payload is held, validates text as UTF-8 as it arrives (failing
 * at the first bad byte), streams messages over `streamThreshold`, and hands control frames and
 * messages transformed by an extension to the connection whole. A layer of the connection
 * (options.ts tells the layers).
 */
import { ByteAccumulator, concatBytes } from "./bytes.ts";
import { CloseCode } from "./errors.ts";
import type { ConnectionEvent } from "./events.ts";
import { type FrameHandler, Opcode, isControlOpcode } from "./frame.ts";
import { xorBytes } from "./mask.ts";
import { Sender } from "./sender.ts";
import { Utf8Validator, decodeText, lenientDecoder } from "./utf8.ts";

/** How the current frame's payload is taken, decided once from its header (`onFrameStart`). */
const Take = {
  /** A control frame: gathered whole, then handed on. */
  CONTROL: 0,
  /** A data frame of a message an extension transformed: held until the message is whole. */
  TRANSFORMED: 1,
  /** A whole text message in one frame, under `streamThreshold`: delivered as it is. */
  WHOLE_TEXT: 2,
  /** A whole binary message in one frame, under `streamThreshold`: delivered as it is. */
  WHOLE_BINARY: 3,
  /** Anything else: one of several frames, or a payload that comes in pieces, or a streamed message. */
  PIECES: 4,
} as const;

/** Whole text frames up to this size are decoded from `TEXT_SCRATCH` (`takeWholePayload`). */
const SHORT_TEXT_MAX = 256;
/**
 * Where such a payload is unmasked to be decoded, used synchronously: one buffer for every
 * connection, with an ArrayBuffer from the start (a JavaScriptCore array gets one only when viewed).
 */
const TEXT_SCRATCH = new Uint8Array(new ArrayBuffer(SHORT_TEXT_MAX));
/** `TEXT_SCRATCH`'s first n bytes at index n, each view made once: a view per message costs. */
const textScratchViews: Uint8Array[] = [];

/** The message-assembly layer (options.ts tells the layers): the frame handler the parser calls. */
export abstract class MessageAssembler extends Sender implements FrameHandler {
  // The message being received.
  private messageOpcode = 0; // 0: none in progress
  private messageRsv = 0;
  private messageSize = 0;
  private messageFragments = 0;
  // Created by the first message that needs them (one in several pieces; text validated as it
  // arrives): a connection that is idle or gets whole messages holds neither.
  private messageBytes: ByteAccumulator | null = null;
  private messageUtf8: Utf8Validator | null = null;
  private streamDecoder: TextDecoder | null = null; // set while a message is streamed
  // The frame being received.
  private frameOpcode = 0;
  private frameFin = false;
  private take: number = Take.PIECES;
  private controlBytes: Uint8Array[] | null = null; // a control frame's payload split across reads

  /** A whole control frame (RFC 6455 §5.5). False stops the parser. */
  protected abstract receiveControl(opcode: number, payload: Uint8Array): boolean;

  onFrameStart(opcode: number, fin: boolean, rsv: number, length: number): boolean {
    this.frameOpcode = opcode;
    if (isControlOpcode(opcode)) {
      this.take = Take.CONTROL;
      return true;
    }
    // RFC 6455 §5.4: fragments of one message arrive in order, not interleaved with another.
    const continuation = opcode === Opcode.CONTINUATION;
    if (continuation) {
      if (this.messageOpcode === 0) return this.fail(CloseCode.PROTOCOL_ERROR, "continuation frame without a message to continue");
    } else {
      if (this.messageOpcode !== 0) return this.fail(CloseCode.PROTOCOL_ERROR, "new data frame inside a fragmented message");
      this.messageOpcode = opcode;
      this.messageRsv = rsv;
    }
    this.frameFin = fin;
    const limits = this.options;
    if (++this.messageFragments > limits.maxFragments) {
      return this.fail(CloseCode.MESSAGE_TOO_BIG, `message split into more than ${limits.maxFragments} frames`);
    }
    // Checked on the declared length, before any of it is held.
    if (this.messageSize + length > limits.maxMessageSize) {
      return this.fail(CloseCode.MESSAGE_TOO_BIG, `message over ${limits.maxMessageSize} bytes`);
    }
    if (this.messageRsv !== 0) this.take = Take.TRANSFORMED;
    else if (!fin || continuation || length > limits.streamThreshold) this.take = Take.PIECES;
    else this.take = opcode === Opcode.TEXT ? Take.WHOLE_TEXT : Take.WHOLE_BINARY;
    return true;
  }

  onFramePayload(data: Uint8Array, frameEnd: boolean): boolean {
    switch (this.take) {
      case Take.CONTROL:
        return this.controlPayload(data, frameEnd);
      case Take.TRANSFORMED:
        // Only the whole message can be decoded.
        this.messageSize += data.length;
        this.heldBytes().push(data);
        if (frameEnd && this.frameFin) this.transformedMessage();
        return true;
      case Take.WHOLE_TEXT:
      case Take.WHOLE_BINARY:
        if (frameEnd) return this.wholeMessage(data);
        this.take = Take.PIECES; // its payload arrives in pieces
    }
    return this.piece(data, frameEnd);
  }

  /**
   * The fast path of `Take.WHOLE_TEXT` (FrameHandler): a whole text message of at most 256 bytes
   * whose payload is all in `chunk`, unmasked into a scratch buffer as it is checked for ASCII.
   * ASCII, valid UTF-8 as it is (RFC 6455 §8.1), goes to the tuning's `asciiDecoder` if it has
   * one; other text is decoded and checked by TextDecoder (§8.1: invalid UTF-8 fails with 1007).
   */
  takeWholePayload(chunk: Uint8Array, start: number, end: number, key: Uint8Array | null): boolean {
    const length = end - start;
    if (this.take !== Take.WHOLE_TEXT || length > SHORT_TEXT_MAX) return false;
    const decode = this.tuning.asciiDecoder;
    const ascii = xorBytes(chunk, start, TEXT_SCRATCH, 0, length, key, 0) < 0x80;
    const text =
      ascii && decode !== null
        ? decode(TEXT_SCRATCH, 0, length)
        : decodeText((textScratchViews[length] ??= TEXT_SCRATCH.subarray(0, length)), this.tuning.lenientDecodeLimit);
    if (text === null) {
      this.fail(CloseCode.INVALID_PAYLOAD, "invalid UTF-8 in text message");
      return true; // taken: the connection failed on it
    }
    this.endMessage();
    this.deliver({ type: "text", data: text });
    return true;
  }

  onFrameError(closeCode: number, reason: string): void {
    this.fail(closeCode, reason);
  }

  /** A whole message in one piece, delivered as that piece (text is decoded and checked at once). */
  private wholeMessage(data: Uint8Array): boolean {
    const text = this.take === Take.WHOLE_TEXT;
    this.endMessage();
    if (!text) {
      this.deliver({ type: "binary", data });
      return true;
    }
    const decoded = decodeText(data, this.tuning.lenientDecodeLimit);
    if (decoded === null) return this.fail(CloseCode.INVALID_PAYLOAD, "invalid UTF-8 in text message");
    this.deliver({ type: "text", data: decoded });
    return true;
  }

  /** A piece of a message that arrives in several: held, or streamed, with its text validated as it comes. */
  private piece(data: Uint8Array, frameEnd: boolean): boolean {
    const messageEnd = frameEnd && this.frameFin;
    this.messageSize += data.length;
    const text = this.messageOpcode === Opcode.TEXT;
    const streaming = this.streamDecoder !== null || this.messageSize > this.options.streamThreshold;
    if (text) {
      // RFC 6455 §8.1: fail as soon as the bytes cannot be UTF-8, even mid-character.
      const utf8 = (this.messageUtf8 ??= new Utf8Validator());
      if (!utf8.push(data)) return this.fail(CloseCode.INVALID_PAYLOAD, "invalid UTF-8 in text message");
      if (messageEnd && !utf8.complete) {
        return this.fail(CloseCode.INVALID_PAYLOAD, "invalid UTF-8 in text message");
      }
    }
    if (streaming) {
      this.streamPiece(data, messageEnd);
      return true;
    }
    const held = this.heldBytes();
    held.push(data);
    if (!messageEnd) return true;
    const payload = held.take();
    this.endMessage();
    // Validated piece by piece above.
    this.deliver(text ? { type: "text", data: lenientDecoder.decode(payload) } : { type: "binary", data: payload });
    return true;
  }

  private streamPiece(data: Uint8Array, fin: boolean): void {
    const binary = this.messageOpcode === Opcode.BINARY;
    if (this.streamDecoder === null) {
      // The message just crossed the threshold: what was held goes out first.
      this.streamDecoder = new TextDecoder("utf-8", { ignoreBOM: true });
      const held = this.heldBytes();
      held.push(data);
      data = held.take();
    }
    const decoder = this.streamDecoder;
    if (fin) this.endMessage();
    if (binary) this.deliver({ type: "fragment", binary: true, data, fin });
    else this.deliver({ type: "fragment", binary: false, data: decoder.decode(data, { stream: !fin }), fin });
  }

  private controlPayload(data: Uint8Array, frameEnd: boolean): boolean {
    const held = this.controlBytes;
    if (frameEnd && held === null) return this.receiveControl(this.frameOpcode, data);
    if (data.length !== 0) (this.controlBytes ??= []).push(data);
    if (!frameEnd) return true;
    this.controlBytes = null;
    return this.receiveControl(this.frameOpcode, concatBytes(held!));
  }

  private transformedMessage(): void {
    const binary = this.messageOpcode === Opcode.BINARY;
    const rsv = this.messageRsv;
    const payload = this.heldBytes().take();
    this.endMessage();
    this.receiveTransformed(binary, rsv, payload);
  }

  private endMessage(): void {
    this.messageOpcode = 0;
    this.messageRsv = 0;
    this.messageSize = 0;
    this.messageFragments = 0;
    this.messageUtf8?.reset();
    this.streamDecoder = null;
  }

  /** The received parts of the message in progress. */
  private heldBytes(): ByteAccumulator {
    return (this.messageBytes ??= new ByteAccumulator());
  }
}
