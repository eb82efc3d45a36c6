/**
 * permessage-deflate (RFC 7692): the negotiation in both roles, and the Extension that
 * compresses and decompresses whole messages. The DEFLATE engine itself is injected as a
 * `DeflateCodec` (adapters/zlib/codec.ts is one on node:zlib): the core does no compression
 * and has no runtime dependency. What lives here is the RFC: parameters, the 4-byte tail,
 * RSV1, the threshold, window sizes, context takeover per direction, the size limit's close code.
 *
 * Negotiation choices (RFC 7692 §5, §7.1), in short:
 * - Server: each offer is judged in the client's order; the first valid one is accepted (an
 *   offer with an unknown, duplicate or malformed parameter is declined, §5). The response
 *   echoes `server_no_context_takeover`, `client_no_context_takeover` and the
 *   `*_max_window_bits` the client asked for, lowered to the server's own limits.
 * - Client: one offer, built from the options. The response must be a valid answer to it
 *   (§5, §7.1), or the handshake fails.
 * - Window bits 8: zlib cannot compress with a 256-byte window (raw windowBits 8 is refused, and
 *   node:zlib silently turns it into 9, which would break the agreement). When we must compress
 *   with at most 8 bits, we compress with 9 bits and Huffman coding only: no back-references at
 *   all, so the 256-byte limit holds (§7.1.2.1, §7.1.2.2 bound the window the compressor uses;
 *   using none of it is allowed). Decompression always uses at least 9 bits: a window larger than
 *   the peer's is always safe (§7.1.2), and it also accepts peers whose zlib used 9 for 8.
 */
import { CloseCode, WebSocketError } from "./errors.ts";
import {
  type ClientExtensionFactory,
  type EncodedPayload,
  type Extension,
  ExtensionError,
  type ServerExtensionFactory,
} from "./extension.ts";
import type { ExtensionParam } from "./extension-header.ts";
import { RSV1 } from "./frame.ts";

export const PERMESSAGE_DEFLATE = "permessage-deflate";

// ---- The injected codec -----------------------------------------------------------------------

/** Makes the raw-DEFLATE engines of one connection (one per direction). */
export interface DeflateCodec {
  createCompressor(options: CompressorOptions): Compressor;
  createDecompressor(options: DecompressorOptions): Decompressor;
}

export interface CompressorOptions {
  /** Raw DEFLATE window size, 9..15 (never 8: see the module comment). */
  windowBits: number;
  /** zlib memLevel, 1..9. */
  memLevel: number;
  /** zlib level, -1 (default, 6) or 0..9. */
  level: number;
  /** Literals only, no back-references (Z_HUFFMAN_ONLY). */
  huffmanOnly: boolean;
  /** Forget the window after each message (no context takeover). */
  resetAfterMessage: boolean;
}

export interface DecompressorOptions {
  /** Raw DEFLATE window size, 9..15. */
  windowBits: number;
  /** Forget the window after each message (the peer does not take over its context). */
  resetAfterMessage: boolean;
}

/** A compressor for one direction of one connection. */
export interface Compressor {
  /**
   * Compresses one message and flushes with Z_SYNC_FLUSH, so the output ends with the empty
   * stored block `00 00 ff ff`. Calls may overlap: they run one after another, in call order
   * (the sliding window carries over from one message to the next). A codec may finish at once
   * and return the bytes (or throw); otherwise it returns a promise.
   */
  compress(data: Uint8Array): Uint8Array | Promise<Uint8Array>;
  /** Frees the engine; pending and later calls reject. */
  close(): void;
}

/** A decompressor for one direction of one connection. */
export interface Decompressor {
  /**
   * Inflates `chunks` as one message, in call order like `compress`. Rejects with a
   * `DecompressedSizeError` as soon as the output passes `maxSize` bytes (checked chunk by
   * chunk, so at most one output chunk beyond it is ever held), and with any other error for
   * invalid data. After an error the decompressor rejects every later call. When the data ends
   * the DEFLATE stream (a block with BFINAL=1), the next message starts with an empty window.
   * Like `compress`, it may finish at once: the bytes are returned, or the error thrown.
   */
  decompress(chunks: readonly Uint8Array[], maxSize: number): Uint8Array | Promise<Uint8Array>;
  /** Frees the engine; pending and later calls reject. */
  close(): void;
}

/** A decompressor's rejection: the message inflates to more than `maxSize` bytes. */
export class DecompressedSizeError extends Error {
  readonly maxSize: number;
  /** Bytes inflated when decompression was stopped: past `maxSize` by at most one output chunk. */
  readonly inflated: number;
  constructor(maxSize: number, inflated: number) {
    super(`message over ${maxSize} bytes once decompressed`);
    this.name = "DecompressedSizeError";
    this.maxSize = maxSize;
    this.inflated = inflated;
  }
}

// ---- Options ----------------------------------------------------------------------------------

/**
 * permessage-deflate settings. The `*NoContextTakeover` and `*MaxWindowBits` names are the
 * RFC 7692 parameters; what each does depends on the role:
 *
 * | option                   | client (offers)                                   | server (answers)                                   |
 * | ------------------------ | ------------------------------------------------- | -------------------------------------------------- |
 * | serverNoContextTakeover  | asks the server to reset its window per message   | resets its window per message, always              |
 * | clientNoContextTakeover  | resets its own window per message, and says so    | asks every client to reset its window per message  |
 * | serverMaxWindowBits      | asks the server for at most this window (8..15)   | uses at most this window (8..15; 8: Huffman only)  |
 * | clientMaxWindowBits      | true (default): lets the server limit our window; | limits the client's window to this (8..15), when   |
 * |                          | n: uses at most n; false: offers no such support  | the client supports the parameter (else: accepted, |
 * |                          |                                                   | the client's window unlimited, as python-websockets)|
 *
 * Memory per connection is mostly its two zlib streams (a compressor and a decompressor, each
 * made on first use); smaller windowBits and memLevel shrink them (figures in bench/NOTES.md).
 */
export interface PerMessageDeflateOptions {
  serverNoContextTakeover?: boolean;
  clientNoContextTakeover?: boolean;
  serverMaxWindowBits?: number;
  clientMaxWindowBits?: number | boolean;
  /** Messages shorter than this many bytes are sent uncompressed. Default 1024 (as in ws). */
  threshold?: number;
  /** zlib compression level, -1 or 0..9. Default -1 (zlib's default, 6). */
  level?: number;
  /** zlib memLevel, 1..9: memory for the compressor's state, against speed and ratio. Default 8. */
  memLevel?: number;
  /** The DEFLATE engine. The adapters default to the node:zlib codec. */
  codec?: DeflateCodec;
}

const DEFAULT_THRESHOLD = 1024;
const DEFAULT_LEVEL = -1;
const DEFAULT_MEM_LEVEL = 8;
const MAX_WINDOW_BITS = 15;

interface Settings {
  codec: DeflateCodec;
  serverNoContextTakeover: boolean;
  clientNoContextTakeover: boolean;
  serverMaxWindowBits: number | undefined;
  clientMaxWindowBits: number | boolean;
  threshold: number;
  level: number;
  memLevel: number;
}

function invalid(message: string): never {
  throw new WebSocketError("ERR_INVALID_ARGUMENT", `permessage-deflate: ${message}`);
}

function isWindowBits(value: unknown): value is number {
  return Number.isInteger(value) && (value as number) >= 8 && (value as number) <= MAX_WINDOW_BITS;
}

function settings(options: PerMessageDeflateOptions, role: "client" | "server"): Settings {
  const codec = options.codec;
  if (codec === undefined) invalid("a codec is required (the adapters pass the node:zlib one)");
  const s: Settings = {
    codec,
    serverNoContextTakeover: options.serverNoContextTakeover === true,
    clientNoContextTakeover: options.clientNoContextTakeover === true,
    serverMaxWindowBits: options.serverMaxWindowBits,
    clientMaxWindowBits: options.clientMaxWindowBits ?? (role === "client"),
    threshold: options.threshold ?? DEFAULT_THRESHOLD,
    level: options.level ?? DEFAULT_LEVEL,
    memLevel: options.memLevel ?? DEFAULT_MEM_LEVEL,
  };
  if (s.serverMaxWindowBits !== undefined && !isWindowBits(s.serverMaxWindowBits)) {
    invalid("serverMaxWindowBits must be an integer from 8 to 15");
  }
  const client = s.clientMaxWindowBits;
  if (typeof client !== "boolean" && !isWindowBits(client)) invalid("clientMaxWindowBits must be a boolean or an integer from 8 to 15");
  if (!(s.threshold >= 0)) invalid("threshold must be a number of bytes, 0 or more");
  if (!Number.isInteger(s.level) || s.level < -1 || s.level > 9) invalid("level must be an integer from -1 to 9");
  if (!Number.isInteger(s.memLevel) || s.memLevel < 1 || s.memLevel > 9) invalid("memLevel must be an integer from 1 to 9");
  return s;
}

// ---- Parameters (RFC 7692 §7.1) ----------------------------------------------------------------

/** The parameters of one offer or response, checked. */
interface Params {
  serverNoContextTakeover: boolean;
  clientNoContextTakeover: boolean;
  serverMaxWindowBits: number | undefined;
  /** `true`: present without a value (allowed in offers only, §7.1.2.2). */
  clientMaxWindowBits: number | true | undefined;
}

/** §7.1.2.1: "a decimal integer value without leading zeroes between 8 to 15, inclusive". */
const WINDOW_BITS_VALUE = /^(?:8|9|1[0-5])$/;

/**
 * Checks a parameter list (§5, §7.1): only the four parameters, each at most once, the
 * `*_no_context_takeover` ones without a value, window bits 8..15 written without leading zeroes.
 * Returns why it is invalid, as a string, or the parameters.
 */
function parseParams(params: readonly ExtensionParam[], isOffer: boolean): Params | string {
  const p: Params = {
    serverNoContextTakeover: false,
    clientNoContextTakeover: false,
    serverMaxWindowBits: undefined,
    clientMaxWindowBits: undefined,
  };
  const seen = new Set<string>();
  for (const { name, value } of params) {
    if (seen.has(name)) return `duplicate parameter ${name}`;
    seen.add(name);
    switch (name) {
      case "server_no_context_takeover": // §7.1.1.1
      case "client_no_context_takeover": // §7.1.1.2
        if (value !== true) return `parameter ${name} takes no value`;
        if (name === "server_no_context_takeover") p.serverNoContextTakeover = true;
        else p.clientNoContextTakeover = true;
        break;
      case "server_max_window_bits": // §7.1.2.1: always with a value
        if (value === true || !WINDOW_BITS_VALUE.test(value)) return `invalid value for ${name}: ${String(value)}`;
        p.serverMaxWindowBits = Number(value);
        break;
      case "client_max_window_bits": // §7.1.2.2: without a value in an offer only
        if (value === true) {
          if (!isOffer) return `parameter ${name} needs a value in a response`;
          p.clientMaxWindowBits = true;
        } else {
          if (!WINDOW_BITS_VALUE.test(value)) return `invalid value for ${name}: ${value}`;
          p.clientMaxWindowBits = Number(value);
        }
        break;
      default:
        return `unknown parameter ${name}`;
    }
  }
  return p;
}

function formatParams(p: Params): ExtensionParam[] {
  const out: ExtensionParam[] = [];
  if (p.serverNoContextTakeover) out.push({ name: "server_no_context_takeover", value: true });
  if (p.clientNoContextTakeover) out.push({ name: "client_no_context_takeover", value: true });
  if (p.serverMaxWindowBits !== undefined) out.push({ name: "server_max_window_bits", value: String(p.serverMaxWindowBits) });
  if (p.clientMaxWindowBits !== undefined) {
    out.push({ name: "client_max_window_bits", value: p.clientMaxWindowBits === true ? true : String(p.clientMaxWindowBits) });
  }
  return out;
}

/** What one connection agreed on, from our side: "local" is what we send, "remote" what the peer sends. */
export interface DeflateAgreement {
  localNoContextTakeover: boolean;
  localMaxWindowBits: number;
  remoteNoContextTakeover: boolean;
  remoteMaxWindowBits: number;
}

// ---- Server ------------------------------------------------------------------------------------

/** The server side of permessage-deflate, for `ServerConnectionOptions.extensions`. */
export function perMessageDeflateServer(options: PerMessageDeflateOptions): ServerExtensionFactory {
  const s = settings(options, "server");
  const clientLimit = typeof s.clientMaxWindowBits === "number" ? s.clientMaxWindowBits : undefined;
  return {
    name: PERMESSAGE_DEFLATE,
    negotiate(offers) {
      // §5.1: the server accepts one of the offers; we take the first valid one.
      for (const offer of offers) {
        const p = parseParams(offer, true);
        if (typeof p === "string") continue; // §5: decline an invalid offer
        // §7.1.2.1: answer with the offered value or a smaller one; we may set one unasked.
        let serverBits = p.serverMaxWindowBits;
        if (s.serverMaxWindowBits !== undefined) serverBits = Math.min(serverBits ?? MAX_WINDOW_BITS, s.serverMaxWindowBits);
        // §7.1.2.2: only when the client supports it; an offered value is a hint we may lower.
        let clientBits: number | undefined;
        if (p.clientMaxWindowBits !== undefined) {
          const offered = p.clientMaxWindowBits === true ? MAX_WINDOW_BITS : p.clientMaxWindowBits;
          if (clientLimit !== undefined) clientBits = Math.min(offered, clientLimit);
          else if (p.clientMaxWindowBits !== true) clientBits = offered;
        }
        const response: Params = {
          // §7.1.1.1: an offered server_no_context_takeover must be accepted.
          serverNoContextTakeover: p.serverNoContextTakeover || s.serverNoContextTakeover,
          // §7.1.1.2: the client's hint is acknowledged; we may also ask for it unasked.
          clientNoContextTakeover: p.clientNoContextTakeover || s.clientNoContextTakeover,
          serverMaxWindowBits: serverBits,
          clientMaxWindowBits: clientBits,
        };
        const agreement: DeflateAgreement = {
          localNoContextTakeover: response.serverNoContextTakeover,
          localMaxWindowBits: serverBits ?? MAX_WINDOW_BITS,
          remoteNoContextTakeover: response.clientNoContextTakeover,
          remoteMaxWindowBits: clientBits ?? MAX_WINDOW_BITS,
        };
        return { params: formatParams(response), extension: new PerMessageDeflate(agreement, s) };
      }
      return null;
    },
  };
}

// ---- Client ------------------------------------------------------------------------------------

/** The client side of permessage-deflate, for `ClientConnectionOptions.extensions`. */
export function perMessageDeflateClient(options: PerMessageDeflateOptions): ClientExtensionFactory {
  const s = settings(options, "client");
  const offer: Params = {
    serverNoContextTakeover: s.serverNoContextTakeover,
    clientNoContextTakeover: s.clientNoContextTakeover,
    serverMaxWindowBits: s.serverMaxWindowBits,
    clientMaxWindowBits: s.clientMaxWindowBits === false ? undefined : s.clientMaxWindowBits,
  };
  const offered = formatParams(offer);
  return {
    name: PERMESSAGE_DEFLATE,
    offers: () => [offered.map((p) => ({ ...p }))],
    accept(params) {
      const p = parseParams(params, false);
      const fail = (reason: string): never => {
        throw new ExtensionError(CloseCode.PROTOCOL_ERROR, reason);
      };
      if (typeof p === "string") fail(p);
      const r = p as Params;
      // §7.1.1.1: asked for, it must be accepted; unasked, the server may still declare it.
      if (offer.serverNoContextTakeover && !r.serverNoContextTakeover) fail("server_no_context_takeover was not accepted");
      // §7.1.2.1: an offered server_max_window_bits is accepted with the same or a smaller value.
      if (offer.serverMaxWindowBits !== undefined) {
        if (r.serverMaxWindowBits === undefined) fail("server_max_window_bits was not accepted");
        if (r.serverMaxWindowBits! > offer.serverMaxWindowBits) fail(`server_max_window_bits=${r.serverMaxWindowBits} is above the ${offer.serverMaxWindowBits} offered`);
      }
      // §7.1.2.2: only if offered; with an offered value, the same or a smaller one.
      if (r.clientMaxWindowBits !== undefined) {
        if (offer.clientMaxWindowBits === undefined) fail("client_max_window_bits in the response, but not in the offer");
        if (typeof offer.clientMaxWindowBits === "number" && (r.clientMaxWindowBits as number) > offer.clientMaxWindowBits) {
          fail(`client_max_window_bits=${r.clientMaxWindowBits} is above the ${offer.clientMaxWindowBits} offered`);
        }
      }
      const ownLimit = typeof offer.clientMaxWindowBits === "number" ? offer.clientMaxWindowBits : MAX_WINDOW_BITS;
      const agreement: DeflateAgreement = {
        localNoContextTakeover: r.clientNoContextTakeover || s.clientNoContextTakeover,
        localMaxWindowBits: Math.min(ownLimit, (r.clientMaxWindowBits as number | undefined) ?? MAX_WINDOW_BITS),
        remoteNoContextTakeover: r.serverNoContextTakeover,
        remoteMaxWindowBits: r.serverMaxWindowBits ?? MAX_WINDOW_BITS,
      };
      return new PerMessageDeflate(agreement, s);
    },
  };
}

// ---- The extension (RFC 7692 §6, §7.2) ----------------------------------------------------------

/** §7.2.1: the empty stored block a sync flush ends with, removed before sending. */
const TAIL = new Uint8Array([0x00, 0x00, 0xff, 0xff]);

/** permessage-deflate on one connection. */
export class PerMessageDeflate implements Extension {
  readonly name = PERMESSAGE_DEFLATE;
  /** §6: RSV1 marks a compressed message, on its first frame only (the connection sees to that). */
  readonly rsvBits = RSV1;
  readonly agreement: DeflateAgreement;
  private readonly settings: Settings;
  private compressor: Compressor | null = null; // made on first use: idle connections cost nothing
  private decompressor: Decompressor | null = null;
  private disposed = false;

  constructor(agreement: DeflateAgreement, s: Settings) {
    this.agreement = agreement;
    this.settings = s;
  }

  /** §7.2.1: compress, flush with an empty stored block, remove its last 4 bytes. */
  encode(payload: Uint8Array): EncodedPayload | Promise<EncodedPayload> {
    // Short messages are not worth it; an uncompressed message simply has RSV1 clear (§6).
    if (payload.length < this.settings.threshold || this.disposed) return { data: payload, rsv: 0 };
    // §7.2.3.6: an empty message is one empty stored block, 0x00 once the tail is removed. (zlib
    // would write nothing at all for it right after a flush.)
    if (payload.length === 0) return { data: Uint8Array.of(0x00), rsv: RSV1 };
    this.compressor ??= this.makeCompressor();
    let result: Uint8Array | Promise<Uint8Array>;
    try {
      result = this.compressor.compress(payload);
    } catch (error) {
      throw this.compressionError(error);
    }
    if (result instanceof Uint8Array) return stripTail(result);
    return Promise.resolve(result).then(stripTail, (error) => {
      throw this.compressionError(error);
    });
  }

  /** §7.2.2: append `00 00 ff ff`, inflate. Also takes data that ends with a BFINAL=1 block (§7.2.3.4). */
  decode(payload: Uint8Array, _rsv: number, maxSize: number): Uint8Array | Promise<Uint8Array> {
    // No DEFLATE block at all: nothing to inflate, and the tail alone would leave the
    // decompressor inside a stored block's header.
    if (payload.length === 0) return new Uint8Array(0); // delivered: not the core's shared empty buffer
    if (this.disposed) return Promise.reject(new ExtensionError(CloseCode.INTERNAL_ERROR, "the connection has ended"));
    this.decompressor ??= this.makeDecompressor();
    let result: Uint8Array | Promise<Uint8Array>;
    try {
      result = this.decompressor.decompress([payload, TAIL], maxSize);
    } catch (error) {
      throw decompressionError(error);
    }
    if (result instanceof Uint8Array) return result;
    return Promise.resolve(result).catch((error) => {
      throw decompressionError(error);
    });
  }

  private compressionError(error: unknown): unknown {
    return this.disposed ? error : new ExtensionError(CloseCode.INTERNAL_ERROR, `compression failed: ${describe(error)}`);
  }

  dispose(): void {
    this.disposed = true;
    this.compressor?.close();
    this.decompressor?.close();
    this.compressor = this.decompressor = null;
  }

  private makeCompressor(): Compressor {
    const bits = this.agreement.localMaxWindowBits;
    const s = this.settings;
    return s.codec.createCompressor({
      windowBits: Math.max(bits, 9),
      huffmanOnly: bits < 9,
      memLevel: s.memLevel,
      level: s.level,
      resetAfterMessage: this.agreement.localNoContextTakeover, // §7.1.1
    });
  }

  private makeDecompressor(): Decompressor {
    return this.settings.codec.createDecompressor({
      windowBits: Math.max(this.agreement.remoteMaxWindowBits, 9),
      // §7.2.2: "MAY decompress ... using an LZ77 sliding window initialized empty".
      resetAfterMessage: this.agreement.remoteNoContextTakeover,
    });
  }
}

function stripTail(data: Uint8Array): EncodedPayload {
  const n = data.length;
  if (n < 4 || data[n - 4] !== 0 || data[n - 3] !== 0 || data[n - 2] !== 0xff || data[n - 1] !== 0xff) {
    throw new ExtensionError(CloseCode.INTERNAL_ERROR, "the compressor's output does not end with an empty stored block");
  }
  return { data: data.subarray(0, n - 4), rsv: RSV1 };
}

function decompressionError(error: unknown): ExtensionError {
  if (error instanceof DecompressedSizeError) return new ExtensionError(CloseCode.MESSAGE_TOO_BIG, error.message);
  return new ExtensionError(CloseCode.INVALID_PAYLOAD, `invalid compressed data: ${describe(error)}`);
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
