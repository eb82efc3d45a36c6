/**
 * The frame writer and the output (RFC 6455 §5): frames of outgoing messages, split by
 * `fragmentSize` (§5.4), masked with a fresh key each on the client (§5.3), every frame a chunk
 * of its own (merging small writes is the session's job, adapters/shared/session.ts); automatic
 * pongs; the plan that routes each message and the one fast path it allows. A layer of the
 * connection (options.ts tells the layers).
 */
import { allocateBytes, textEncoder, unpooled } from "./bytes.ts";
import { WebSocketError } from "./errors.ts";
import { MERGE_PAYLOAD_MAX, Opcode, encodeFrame, frameHeaderSize, writeAsciiTextFrame, writeSmallFrame } from "./frame.ts";
import { Timers } from "./timers.ts";
import { TRACE_PREVIEW_BYTES } from "./trace.ts";
import { decodeUtf8 } from "./utf8.ts";

/**
 * Automatic pongs that may wait in the output, not yet polled, each answering its own ping; more
 * pings replace the last of them (`autoPong`). Enough for a burst of pings sent together to be
 * answered one by one, as peers expect (Autobahn case 2.10 sends 10).
 */
export const MAX_PENDING_PONGS = 16;

const RANDOM_POOL_SIZE = 4096;
const NO_OUTPUT: readonly Uint8Array[] = Object.freeze([]);

/**
 * How a message is sent, decided once by `planSend` for the general path and the fast path
 * alike: the fast path (`FrameWriter.writeAsciiText`) is taken only where the plan says SEND_SMALL.
 */
export const Send = {
  /** A whole message through the extensions (which may answer later). */
  TRANSFORMED: 0,
  /** Behind messages still being transformed: written in its turn. */
  QUEUED: 1,
  /** Split into frames of `fragmentSize` (RFC 6455 §5.4), written now. */
  FRAGMENTS: 2,
  /** One frame, written now: a part of a fragmented message, or a large whole one. */
  FRAME: 3,
  /** One frame holding a whole message of at most MERGE_PAYLOAD_MAX bytes, written now. */
  SMALL: 4,
} as const;

/**
 * The route of a message part of `length` payload bytes: `whole` (fin, not continuing a
 * fragmented message), `transform` (extensions negotiated and not refused for it), `immediate`
 * (nothing queued before it).
 */
export function planSend(length: number, whole: boolean, transform: boolean, immediate: boolean, fragmentSize: number): number {
  if (whole && transform) return Send.TRANSFORMED;
  if (!immediate) return Send.QUEUED;
  if (length > fragmentSize) return Send.FRAGMENTS;
  return whole && length <= MERGE_PAYLOAD_MAX ? Send.SMALL : Send.FRAME;
}

/** The frame-writer layer (options.ts tells the layers): frames out, and the output. */
export class FrameWriter extends Timers {
  // Created by the first output after a poll: an idle connection holds none.
  private output: Uint8Array[] | null = null;
  /** Automatic pongs in `output`, not yet polled, and where the last of them is (-1: none). */
  private pongCount = 0;
  private pongAt = -1;
  /** Masking keys, drawn in bulk; created by the first masked frame (a server never masks). */
  private maskKeys: MaskKeys | null = null;

  /** Bytes to write to the transport since the last call, in order. */
  pollOutput(): readonly Uint8Array[] {
    const output = this.output;
    if (output === null) return NO_OUTPUT;
    this.output = null;
    this.pongCount = 0;
    this.pongAt = -1;
    return output;
  }

  /** Drops everything not yet polled (the connection is aborted). */
  protected discardOutput(): void {
    this.output = null;
    this.pongCount = 0;
    this.pongAt = -1;
  }

  /** Bytes that are not frames (the handshake's HTTP head), or frames made elsewhere. */
  protected pushOutput(bytes: Uint8Array): void {
    (this.output ??= []).push(bytes);
  }

  /** A message framed once by `prepareMessage()`. */
  protected writePreparedFrames(message: PreparedMessage): void {
    if (this.tracer !== null) this.tracePrepared(message);
    const chunks = message.chunks;
    for (let i = 0; i < chunks.length; i++) this.pushOutput(chunks[i]);
  }

  /**
   * The fast path of `Send.SMALL` for a text message: framed straight from the string when it is
   * ASCII (one byte per character, so the plan made for its length holds). False, with nothing
   * written, for other text: the general path encodes it.
   */
  protected writeAsciiText(text: string): boolean {
    const key = this.isClient ? this.maskKey() : null; // RFC 6455 §5.3: a client masks every frame, a server none
    const size = frameHeaderSize(text.length, key !== null) + text.length;
    const frame = allocateBytes(size, this.tuning.allocator);
    if (writeAsciiTextFrame(frame, 0, text, key) < 0) return false;
    this.pushOutput(frame);
    this.tracer?.frameOut(Opcode.TEXT, true, 0, text.length, textEncoder.encode(text.slice(0, TRACE_PREVIEW_BYTES)));
    return true;
  }

  /** Writes a message's frames, split by `fragmentSize` (RFC 6455 §5.4). RSV bits go on the first frame. */
  protected writeMessage(opcode: number, payload: Uint8Array, fin: boolean, rsv: number, owned: boolean): void {
    const size = this.options.fragmentSize;
    if (payload.length <= size) {
      this.writeFrame(opcode, payload, fin, rsv, owned);
      return;
    }
    for (let offset = 0; offset < payload.length; offset += size) {
      const last = offset + size >= payload.length;
      this.writeFrame(offset === 0 ? opcode : Opcode.CONTINUATION, payload.subarray(offset, offset + size), fin && last, offset === 0 ? rsv : 0, owned);
    }
  }

  protected writeFrame(opcode: number, payload: Uint8Array, fin = true, rsv = 0, owned = false): void {
    const key = this.isClient ? this.maskKey() : null;
    this.tracer?.frameOut(opcode, fin, rsv, payload.length, payload);
    const tuning = this.tuning;
    const chunks = encodeFrame(opcode, payload, fin, rsv, key, owned, tuning.allocator, tuning.maskWordSize);
    for (const chunk of chunks) this.pushOutput(chunk);
  }

  /**
   * Answers a ping (RFC 6455 §5.5.2). Once `MAX_PENDING_PONGS` automatic pongs wait in the output,
   * the last of them is replaced by the newest one (§5.5.3 allows answering only the most recent
   * ping): a peer that pings faster than we write adds a few pongs per read, not one per ping.
   */
  protected writeAutoPong(payload: Uint8Array): void {
    if (this.pongCount < MAX_PENDING_PONGS - 1) {
      this.pongCount++;
      this.writeFrame(Opcode.PONG, payload);
      return;
    }
    const key = this.isClient ? this.maskKey() : null;
    const size = frameHeaderSize(payload.length, key !== null) + payload.length;
    this.tracer?.frameOut(Opcode.PONG, true, 0, payload.length, payload);
    if (this.pongAt < 0) {
      // The last one gets a chunk of its own, to be replaced.
      const frame = allocateBytes(size, this.tuning.allocator);
      writeSmallFrame(frame, 0, Opcode.PONG, payload, true, 0, key);
      this.pushOutput(frame);
      this.pongAt = this.output!.length - 1;
      this.pongCount++;
      return;
    }
    // Rewritten in place when the size is the same: a flood of equal pings allocates nothing.
    // Otherwise a buffer of its own, so that the replaced ones leave no slab piece pinned.
    const output = this.output!;
    let frame = output[this.pongAt];
    if (frame.length !== size) frame = output[this.pongAt] = new Uint8Array(size);
    writeSmallFrame(frame, 0, Opcode.PONG, payload, true, 0, key);
  }

  /** A fresh masking key for each frame (RFC 6455 §5.3). */
  private maskKey(): Uint8Array {
    return (this.maskKeys ??= new MaskKeys()).next(this.options.random);
  }

  private tracePrepared(message: PreparedMessage): void {
    // The first header byte (RFC 6455 §5.2): FIN, RSV1-3, opcode; the payload follows the header.
    const first = message.chunks[0][0];
    const header = frameHeaderSize(message.size, false);
    const bytes = message.chunks.length === 1 ? message.chunks[0] : concatPrefix(message.chunks, header + TRACE_PREVIEW_BYTES);
    this.tracer!.frameOut(first & 0x0f, (first & 0x80) !== 0, first & 0x70, message.size, bytes.subarray(header));
  }
}

/** Masking keys drawn from a pool of random bytes, one fetch of randomness for many frames. */
class MaskKeys {
  private readonly pool = new Uint8Array(RANDOM_POOL_SIZE);
  private offset = RANDOM_POOL_SIZE;
  /** The current key: one reused buffer, which `encodeFrame` copies into the frame header at once. */
  private readonly key = new Uint8Array(4);

  next(random: (target: Uint8Array) => void): Uint8Array {
    const pool = this.pool;
    if (this.offset + 4 > RANDOM_POOL_SIZE) {
      random(pool);
      this.offset = 0;
    }
    const at = this.offset;
    const key = this.key;
    key[0] = pool[at];
    key[1] = pool[at + 1];
    key[2] = pool[at + 2];
    key[3] = pool[at + 3];
    this.offset = at + 4;
    return key;
  }
}

function concatPrefix(chunks: readonly Uint8Array[], max: number): Uint8Array {
  const out = new Uint8Array(max);
  let at = 0;
  for (const chunk of chunks) {
    if (at >= max) break;
    const part = chunk.subarray(0, max - at);
    out.set(part, at);
    at += part.length;
  }
  return out.subarray(0, at);
}

/** A message framed once, unmasked, to be written to any number of server connections. */
export interface PreparedMessage {
  readonly chunks: readonly Uint8Array[];
  /** Payload bytes. */
  readonly size: number;
}

/** Frames a message for `sendPrepared()`; strings are text messages, bytes binary unless `binary` is false. */
export function prepareMessage(data: string | Uint8Array, binary = typeof data !== "string"): PreparedMessage {
  const payload = typeof data === "string" ? textEncoder.encode(data) : data;
  if (!binary && typeof data !== "string" && decodeUtf8(payload) === null) {
    throw new WebSocketError("ERR_INVALID_UTF8", "text message is not valid UTF-8");
  }
  // Prepared messages may be kept for long and go to many sockets: no slab piece in them.
  const chunks = encodeFrame(binary ? Opcode.BINARY : Opcode.TEXT, payload, true, 0, null).map(unpooled);
  return { chunks, size: payload.length };
}
