/**
 * The extension pipeline (RFC 6455 §9): which extensions a handshake agrees on, and how a whole
 * message goes through them: encoders in the order negotiated, decoders in reverse (RFC 6455
 * §9.1: the order of the header is the order in which they operate). An extension may answer at
 * once or with a promise; the connection's queues keep messages in order either way. A layer of
 * the connection (options.ts tells the layers).
 */
import { SerialQueue } from "./bytes.ts";
import { CloseCode } from "./errors.ts";
import { type ClientExtensionFactory, type EncodedPayload, type Extension, ExtensionError, type ServerExtensionFactory } from "./extension.ts";
import type { ExtensionOffer } from "./extension-header.ts";
import type { ConnectionEvent } from "./events.ts";
import { decodeUtf8 } from "./utf8.ts";
import { FrameWriter } from "./writer.ts";

/** What most connections negotiate: one shared empty list. */
export const NO_EXTENSIONS: readonly Extension[] = Object.freeze([]);

export interface NegotiatedExtension {
  offer: ExtensionOffer;
  extension: Extension;
}

/**
 * The extension-pipeline layer (options.ts tells the layers): the negotiated extensions and the
 * two queues that keep received and sent messages in order while an extension works on one (its
 * codec may answer at once or later). The queues are created when something asynchronous first
 * has to be waited for: until then every step runs at once, and a connection (most of a
 * server's) holds neither.
 */
export abstract class ExtensionPipeline extends FrameWriter {
  protected extensions: readonly Extension[] = NO_EXTENSIONS;
  private inQueue: SerialQueue | null = null;
  private outQueue: SerialQueue | null = null;
  /** Payload bytes of messages accepted for sending and not yet written (being encoded, or queued). */
  protected pending = 0;

  /** Asynchronous extension work produced something to poll: tell the owner. */
  protected abstract wake(): void;
  /** A bug, not the peer's fault: an event handler or extension threw where it must not. */
  protected abstract crash(error: unknown): void;
  /** A message, or a part of a streamed one, to report in order. */
  protected abstract deliver(event: ConnectionEvent): void;
  /** The peer broke a rule: fail the connection with `code` (RFC 6455 §7.1.7). Returns false. */
  protected abstract fail(code: number, reason: string): boolean;

  /** Nothing received waits: a step on received data would run at once. */
  protected get incomingImmediate(): boolean {
    return this.inQueue?.immediate ?? true;
  }

  /** Nothing to send waits: a frame written now keeps its order. */
  protected get outgoingImmediate(): boolean {
    return this.outQueue?.immediate ?? true;
  }

  /** Runs `step` after the received messages still being decoded. */
  protected runIncoming(step: () => void): void {
    if (this.inQueue === null) step();
    else this.inQueue.run(step);
  }

  /** Runs `step` after the messages to send still being encoded. */
  protected runOutgoing(step: () => void): void {
    if (this.outQueue === null) step();
    else this.outQueue.run(step);
  }

  /** Runs `step` in its turn among the messages to send, counting `size` bytes as pending until then. */
  protected queueOutgoing(size: number, step: () => void): void {
    this.pending += size;
    this.runOutgoing(() => {
      this.pending -= size;
      step();
    });
  }

  /**
   * A whole received message whose first frame has RSV bits `rsv`, for the extensions to decode
   * (`decodeMessage`): then checked against `maxMessageSize` and, if text, for UTF-8
   * (RFC 6455 §8.1), and reported in order: the message event, or the failure.
   */
  protected receiveTransformed(binary: boolean, rsv: number, payload: Uint8Array): void {
    const maxSize = this.options.maxMessageSize;
    let result: Uint8Array | Promise<Uint8Array>;
    try {
      result = decodeMessage(this.extensions, payload, rsv, maxSize);
    } catch (error) {
      this.extensionFailed(error);
      return;
    }
    (this.inQueue ??= this.queue()).await(
      result,
      (decoded) => {
        if (decoded.length > maxSize) {
          this.fail(CloseCode.MESSAGE_TOO_BIG, `message over ${maxSize} bytes`);
        } else if (binary) {
          this.deliver({ type: "binary", data: decoded });
        } else {
          const text = decodeUtf8(decoded);
          if (text === null) this.fail(CloseCode.INVALID_PAYLOAD, "invalid UTF-8 in text message");
          else this.deliver({ type: "text", data: text });
        }
      },
      (error) => this.extensionFailed(error),
    );
  }

  /** Encodes a whole message to send (`encodeMessage`) and passes the result on in order. */
  protected encodeOutgoing(payload: Uint8Array, binary: boolean, then: (encoded: EncodedPayload) => void): void {
    let result: EncodedPayload | Promise<EncodedPayload>;
    try {
      result = encodeMessage(this.extensions, payload, binary);
    } catch (error) {
      this.extensionFailed(error);
      return;
    }
    const size = payload.length;
    this.pending += size; // until written, or failed
    (this.outQueue ??= this.queue()).await(
      result,
      (encoded) => {
        this.pending -= size;
        then(encoded);
      },
      (error) => {
        this.pending -= size;
        this.extensionFailed(error);
      },
    );
  }

  /** The connection ended: the extensions release what they hold. */
  protected disposeExtensions(): void {
    for (const extension of this.extensions) extension.dispose?.();
  }

  /** Fails the connection with the extension's own close code, or 1011 (RFC 6455 §7.4.1). */
  private extensionFailed(error: unknown): void {
    if (error instanceof ExtensionError) this.fail(error.closeCode, error.message);
    else this.fail(CloseCode.INTERNAL_ERROR, "extension failed");
  }

  private queue(): SerialQueue {
    return new SerialQueue(() => this.wake(), (error) => this.crash(error));
  }
}

/** The RSV bits the negotiated extensions own (RFC 6455 §5.2: others must be 0). */
export function rsvBitsOf(extensions: readonly Extension[]): number {
  return extensions.reduce((bits, e) => bits | e.rsvBits, 0);
}

/** Server: lets each supported extension, in the server's order, pick among the client's offers. */
export function negotiateExtensions(
  factories: readonly ServerExtensionFactory[],
  offers: readonly ExtensionOffer[],
): NegotiatedExtension[] {
  const chosen: NegotiatedExtension[] = [];
  let rsvTaken = 0;
  for (const factory of factories) {
    const params = offers.filter((o) => o.name === factory.name).map((o) => o.params);
    if (params.length === 0) continue;
    const result = factory.negotiate(params);
    if (result === null || (result.extension.rsvBits & rsvTaken) !== 0) continue;
    rsvTaken |= result.extension.rsvBits;
    chosen.push({ offer: { name: factory.name, params: result.params }, extension: result.extension });
  }
  return chosen;
}

/**
 * Client: the extensions the server's answer names, or why the answer fails the handshake
 * (RFC 6455 §4.1, step 5 of the response checks: only offered extensions, once each).
 */
export function acceptExtensions(factories: readonly ClientExtensionFactory[], answers: ExtensionOffer[]): Extension[] | string {
  const extensions: Extension[] = [];
  let rsvTaken = 0;
  for (const answer of answers) {
    const factory = factories.find((f) => f.name === answer.name);
    if (!factory) return `server accepted extension "${answer.name}", which was not offered`;
    if (extensions.some((e) => e.name === answer.name)) return `server accepted extension "${answer.name}" twice`;
    let extension: Extension;
    try {
      extension = factory.accept(answer.params);
    } catch (error) {
      return `server's ${answer.name} parameters are not acceptable: ${(error as Error).message}`;
    }
    if ((extension.rsvBits & rsvTaken) !== 0) return `extension "${answer.name}" uses reserved bits already taken`;
    rsvTaken |= extension.rsvBits;
    extensions.push(extension);
  }
  return extensions;
}

/** Runs a message to send through every extension, in the order negotiated. May throw. */
export function encodeMessage(
  extensions: readonly Extension[],
  payload: Uint8Array,
  binary: boolean,
): EncodedPayload | Promise<EncodedPayload> {
  let result: EncodedPayload | Promise<EncodedPayload> = { data: payload, rsv: 0 };
  for (const extension of extensions) {
    result = isPromiseLike(result)
      ? result.then((r) => mergeRsv(r.rsv, extension.encode(r.data, binary)))
      : mergeRsv(result.rsv, extension.encode(result.data, binary));
  }
  return result;
}

/**
 * Runs a received message through the extensions whose RSV bits its first frame has, in reverse
 * order of negotiation; none may produce more than `maxSize` bytes. May throw.
 */
export function decodeMessage(
  extensions: readonly Extension[],
  payload: Uint8Array,
  rsv: number,
  maxSize: number,
): Uint8Array | Promise<Uint8Array> {
  let result: Uint8Array | Promise<Uint8Array> = payload;
  for (let i = extensions.length - 1; i >= 0; i--) {
    const extension = extensions[i];
    if ((extension.rsvBits & rsv) === 0) continue;
    result = isPromiseLike(result)
      ? result.then((bytes) => extension.decode(bytes, rsv, maxSize))
      : extension.decode(result, rsv, maxSize);
  }
  return result;
}

function isPromiseLike<T>(value: T | Promise<T>): value is Promise<T> {
  return typeof (value as { then?: unknown } | null)?.then === "function";
}

function mergeRsv(rsv: number, next: EncodedPayload | Promise<EncodedPayload>): EncodedPayload | Promise<EncodedPayload> {
  if (isPromiseLike(next)) return next.then((r) => ({ data: r.data, rsv: rsv | r.rsv }));
  return { data: next.data, rsv: rsv | next.rsv };
}
