/**
 * Wire-level tools of the conformance suite: frames built byte for byte (with the core's
 * `encodeFrame`, which writes whatever opcode, RSV bits, FIN and masking key it is given, valid
 * or not), an independent lenient frame reader that records exactly what the peer sent, the
 * opening handshake of both roles, and small byte helpers.
 *
 * The reader and the handshake deliberately do not use the core: the suite judges the core,
 * so what it observes must not go through the code under test.
 */
import { createHash } from "node:crypto";
import { setImmediate } from "node:timers";
import { encodeFrame } from "../../core/mod.ts";
import { concatBytes } from "../../core/bytes.ts";
import { runtime } from "../../adapters/auto.ts";
import type { Transport } from "../../adapters/shared/transport.ts";

// ---- bytes ----------------------------------------------------------------------------------

export const textEncoder = new TextEncoder();
const strictDecoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

export type ByteSource = string | Uint8Array | readonly number[];

/** Strings are UTF-8 encoded; arrays of numbers are taken as bytes. */
export function bytes(source: ByteSource): Uint8Array {
  if (typeof source === "string") return textEncoder.encode(source);
  if (source instanceof Uint8Array) return source;
  return Uint8Array.from(source);
}

/** Bytes from hex ("cebae1bd"), spaces allowed. */
export function fromHex(hex: string): Uint8Array {
  const clean = hex.replace(/\s+/g, "");
  const out = new Uint8Array(clean.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(clean.slice(2 * i, 2 * i + 2), 16);
  return out;
}

export function toHex(data: Uint8Array, max = Infinity): string {
  const shown = data.length > max ? data.subarray(0, max) : data;
  const hex = Array.from(shown, (b) => b.toString(16).padStart(2, "0")).join("");
  return data.length > max ? `${hex}… (${data.length} bytes)` : hex;
}

/** The core's concatenation, named as the cases use it. */
export const concat = concatBytes;

/** `pattern` repeated (and cut) to exactly `length` bytes. */
export function repeatTo(pattern: ByteSource, length: number): Uint8Array {
  const p = bytes(pattern);
  const out = new Uint8Array(length);
  if (length === 0) return out;
  out.set(p.subarray(0, Math.min(p.length, length)));
  let filled = Math.min(p.length, length);
  while (filled < length) {
    const n = Math.min(filled, length - filled);
    out.copyWithin(filled, 0, n);
    filled += n;
  }
  return out;
}

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Strict UTF-8 (RFC 3629): no overlongs, surrogates or code points above U+10FFFF. */
export function isUtf8(data: Uint8Array): boolean {
  try {
    strictDecoder.decode(data);
    return true;
  } catch {
    return false;
  }
}

export function decodeUtf8(data: Uint8Array): string | null {
  try {
    return strictDecoder.decode(data);
  } catch {
    return null;
  }
}

// ---- randomness -----------------------------------------------------------------------------

/** A small seeded PRNG (mulberry32), so that the masking keys of a run can be replayed. */
export class Random {
  private state: number;
  readonly seed: number;
  constructor(seed: number) {
    this.seed = seed;
    this.state = seed >>> 0;
  }
  next(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i += 4) {
      const v = this.next();
      for (let j = 0; j < 4 && i + j < n; j++) out[i + j] = (v >>> (8 * j)) & 0xff;
    }
    return out;
  }
}

// ---- frames out -----------------------------------------------------------------------------

export const OP = { CONT: 0x0, TEXT: 0x1, BINARY: 0x2, CLOSE: 0x8, PING: 0x9, PONG: 0xa } as const;

/**
 * One frame, byte for byte. `rsv` is the 3-bit RSV field (1 = RSV3 ... 4 = RSV1), as Autobahn
 * numbers it. `mask`: the 4-byte key, or null for an unmasked frame.
 */
export function frameBytes(
  opcode: number,
  payload: Uint8Array,
  fin: boolean,
  rsv: number,
  mask: Uint8Array | null,
): Uint8Array {
  return concat(encodeFrame(opcode & 0x0f, payload, fin, (rsv & 7) << 4, mask));
}

/**
 * A frame whose header claims `declaredLength` but which carries `payload` (for headers that no
 * valid frame has, e.g. a 64-bit length with its most significant bit set).
 */
export function rawHeader(opcode: number, fin: boolean, lengthBytes: readonly number[], mask: Uint8Array | null): Uint8Array {
  const out = [(fin ? 0x80 : 0) | (opcode & 0x0f), (mask ? 0x80 : 0) | lengthBytes[0], ...lengthBytes.slice(1)];
  if (mask) out.push(...mask);
  return Uint8Array.from(out);
}

/** A close frame payload: nothing, or a code and a reason (raw bytes: may be invalid on purpose). */
export function closePayload(code?: number, reason: ByteSource = ""): Uint8Array {
  if (code === undefined) return new Uint8Array(0);
  const r = bytes(reason);
  const out = new Uint8Array(2 + r.length);
  out[0] = (code >>> 8) & 0xff;
  out[1] = code & 0xff;
  out.set(r, 2);
  return out;
}

// ---- frames in ------------------------------------------------------------------------------

export interface Frame {
  fin: boolean;
  /** The 3-bit RSV field. */
  rsv: number;
  opcode: number;
  masked: boolean;
  /** Unmasked payload. */
  payload: Uint8Array;
}

/** Payloads above this are not buffered by the reader (the peer is then broken or hostile). */
export const MAX_READ_PAYLOAD = 256 * 1024 * 1024;

/**
 * An independent, lenient frame reader: it checks nothing but the wire format itself, and
 * reports every frame as sent (masked or not, reserved bits and opcodes included), so that the
 * fuzzer can judge it.
 */
export class FrameReader {
  private header = new Uint8Array(14);
  private headerLength = 0;
  private frame: Frame | null = null;
  private payload: Uint8Array | null = null;
  private filled = 0;
  private mask = new Uint8Array(4);
  /** Set when the byte stream cannot be read any further. */
  error: string | null = null;

  /** Returns the frames completed by `chunk`. */
  push(chunk: Uint8Array): Frame[] {
    const frames: Frame[] = [];
    let pos = 0;
    while (this.error === null && (pos < chunk.length || (this.frame && this.filled === this.payload!.length))) {
      if (this.frame === null) {
        // Gather the header.
        while (pos < chunk.length && (this.headerLength < 2 || this.headerLength < headerSize(this.header[1]))) {
          this.header[this.headerLength++] = chunk[pos++];
        }
        if (this.headerLength < 2 || this.headerLength < headerSize(this.header[1])) break;
        this.startFrame();
        if (this.error !== null) break;
        continue;
      }
      const payload = this.payload!;
      const take = Math.min(payload.length - this.filled, chunk.length - pos);
      payload.set(chunk.subarray(pos, pos + take), this.filled);
      this.filled += take;
      pos += take;
      if (this.filled === payload.length) {
        if (this.frame.masked) {
          const m = this.mask;
          for (let i = 0; i < payload.length; i++) payload[i] ^= m[i & 3];
        }
        this.frame.payload = payload;
        frames.push(this.frame);
        this.frame = null;
        this.payload = null;
        this.filled = 0;
        this.headerLength = 0;
      }
    }
    return frames;
  }

  /** Bytes of a frame received only in part, for diagnostics. */
  get pending(): number {
    return this.headerLength + this.filled;
  }

  private startFrame(): void {
    const h = this.header;
    const masked = (h[1] & 0x80) !== 0;
    let length = h[1] & 0x7f;
    let p = 2;
    if (length === 126) {
      length = (h[2] << 8) | h[3];
      p = 4;
    } else if (length === 127) {
      const high = ((h[2] << 24) | (h[3] << 16) | (h[4] << 8) | h[5]) >>> 0;
      const low = ((h[6] << 24) | (h[7] << 16) | (h[8] << 8) | h[9]) >>> 0;
      p = 10;
      if (high !== 0 || low > MAX_READ_PAYLOAD) {
        this.error = `frame length ${high * 2 ** 32 + low} is beyond what the fuzzer reads`;
        return;
      }
      length = low;
    }
    if (masked) this.mask.set(h.subarray(p, p + 4));
    this.frame = {
      fin: (h[0] & 0x80) !== 0,
      rsv: (h[0] >> 4) & 7,
      opcode: h[0] & 0x0f,
      masked,
      payload: new Uint8Array(0),
    };
    this.payload = new Uint8Array(length);
    this.filled = 0;
  }
}

function headerSize(b1: number): number {
  const length = b1 & 0x7f;
  return (length < 126 ? 2 : length === 126 ? 4 : 10) + (b1 & 0x80 ? 4 : 0);
}

// ---- the opening handshake ------------------------------------------------------------------

const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/** RFC 6455 §4.2.2: base64(SHA-1(key + GUID)), computed with the runtime's crypto, not the core's. */
export function acceptFor(key: string): string {
  return createHash("sha1").update(key + GUID).digest("base64");
}

export interface HttpHead {
  /** Request: method, target; response: status, reason. */
  startLine: string;
  headers: Map<string, string>;
  /** Bytes after the head (frames that came with it). */
  rest: Uint8Array;
}

const MAX_HEAD = 16 * 1024;

/** Gathers an HTTP head; `push` returns it once complete, or throws if it is too large. */
export class HeadReader {
  private buffered: Uint8Array[] = [];
  private size = 0;

  push(chunk: Uint8Array): HttpHead | null {
    this.buffered.push(chunk);
    this.size += chunk.length;
    const all = concat(this.buffered);
    this.buffered = [all];
    for (let i = Math.max(0, this.size - chunk.length - 3); i + 3 < all.length; i++) {
      if (all[i] === 13 && all[i + 1] === 10 && all[i + 2] === 13 && all[i + 3] === 10) {
        const text = new TextDecoder("latin1").decode(all.subarray(0, i));
        const [startLine, ...lines] = text.split("\r\n");
        const headers = new Map<string, string>();
        for (const line of lines) {
          const colon = line.indexOf(":");
          if (colon <= 0) continue;
          const name = line.slice(0, colon).trim().toLowerCase();
          const value = line.slice(colon + 1).trim();
          headers.set(name, headers.has(name) ? `${headers.get(name)}, ${value}` : value);
        }
        return { startLine, headers, rest: all.slice(i + 4) };
      }
    }
    if (this.size > MAX_HEAD) throw new Error(`HTTP head over ${MAX_HEAD} bytes`);
    return null;
  }
}

export function headerHasToken(value: string | undefined, token: string): boolean {
  return (value ?? "").split(",").some((t) => t.trim().toLowerCase() === token);
}

// ---- the event loop -------------------------------------------------------------------------

/**
 * Waits until the bytes written before it have reached a peer in this process as their own
 * read: the chopped and per-frame ("sync") variants of the cases rely on it. A plain
 * `setImmediate` does that on Node and Bun but not on Deno, whose reads are async operations
 * that complete in a later turn; so the fuzzer keeps a loopback connection pair of its own and
 * sends one byte through it: once that byte has been read, the runtime has polled its sockets,
 * and the peer's read of what was written before has completed too. Costs one loopback round
 * trip (30–180 µs). Best effort for a peer in another process.
 */
export async function yieldToPeer(): Promise<void> {
  let t: Ticker;
  try {
    t = await (ticker ??= openTicker());
  } catch {
    ticker = null;
    return yieldToLoop(); // no loopback pair to be had: the next best thing
  }
  if (t.closed) {
    ticker = null;
    return yieldToLoop();
  }
  clearTimeout(t.idle);
  t.idle = setTimeout(() => t.close(), 200); // no socket of ours outlives the run
  return new Promise((resolve) => {
    t.waiters.push(resolve);
    t.sender.write([ONE]);
  });
}

const ONE = Uint8Array.of(1);

interface Ticker {
  sender: Transport;
  waiters: (() => void)[];
  idle: ReturnType<typeof setTimeout> | undefined;
  closed: boolean;
  close(): void;
}

let ticker: Promise<Ticker> | null = null;

async function openTicker(): Promise<Ticker> {
  let receiver: Transport | null = null;
  const t: Ticker = {
    sender: null as unknown as Transport,
    waiters: [],
    idle: undefined,
    closed: false,
    close() {
      if (t.closed) return;
      t.closed = true;
      ticker = null;
      clearTimeout(t.idle);
      t.sender?.destroy();
      receiver?.destroy();
      for (const w of t.waiters.splice(0)) w();
    },
  };
  const quiet = { onEnd() {}, onDrain() {} };
  const listener = await runtime.listen({ port: 0, hostname: "127.0.0.1" }, (transport) => {
    receiver = transport;
    return {
      ...quiet,
      onData(chunk) {
        for (const w of t.waiters.splice(0, chunk.length)) w();
      },
      onClose: () => t.close(),
    };
  });
  try {
    t.sender = await runtime.dial({ host: "127.0.0.1", port: listener.port }, () => ({ ...quiet, onData() {}, onClose: () => t.close() }));
  } finally {
    await listener.close();
  }
  return t;
}

/** Lets the event loop run once. */
export function yieldToLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
