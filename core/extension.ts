/**
 * The extension interface (RFC 6455 §9). A negotiated extension owns some RSV bits and
 * transforms whole message payloads in both directions, synchronously or asynchronously;
 * the connection keeps messages in order either way. permessage-deflate (RFC 7692) is one.
 */
import type { ExtensionParam } from "./extension-header.ts";

/** A payload an extension produced for sending, with the RSV bits to set on its first frame. */
export interface EncodedPayload {
  data: Uint8Array;
  rsv: number;
}

/** A negotiated extension, for one connection. */
export interface Extension {
  readonly name: string;
  /** RSV bits (0x40 = RSV1, 0x20, 0x10) it may set on the first frame of a data message. */
  readonly rsvBits: number;
  /**
   * Transforms a received message. `rsv` holds the RSV bits of its first frame. The result must
   * not exceed `maxSize` bytes: throw (or reject with) an ExtensionError(1009) before it does.
   */
  decode(payload: Uint8Array, rsv: number, maxSize: number): Uint8Array | Promise<Uint8Array>;
  /**
   * Transforms a message to send. `payload` may be a piece of a shared slab (a tuning's pooling
   * allocator): read it, or write it in place, but never transfer its buffer.
   */
  encode(payload: Uint8Array, binary: boolean): EncodedPayload | Promise<EncodedPayload>;
  /** Releases resources when the connection ends. */
  dispose?(): void;
}

/** Client side of a negotiation: what to offer, and what to make of the server's answer. */
export interface ClientExtensionFactory {
  readonly name: string;
  /** One or more offers, in order of preference, each a parameter list. */
  offers(): ExtensionParam[][];
  /** The server's accepted parameters; throw ExtensionError if they are not acceptable. */
  accept(params: ExtensionParam[]): Extension;
}

/** Server side of a negotiation. */
export interface ServerExtensionFactory {
  readonly name: string;
  /** All offers for this extension, in the client's order; null declines them all. */
  negotiate(offers: ExtensionParam[][]): { params: ExtensionParam[]; extension: Extension } | null;
}

/** An extension's failure, with the close code the connection fails with. */
export class ExtensionError extends Error {
  readonly closeCode: number;
  constructor(closeCode: number, message: string) {
    super(message);
    this.name = "ExtensionError";
    this.closeCode = closeCode;
  }
}
