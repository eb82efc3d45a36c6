/**
 * Runs the core on a byte stream: one connection of either role, opened by a real handshake with
 * the other role, fed the stream in the given chunks. Collects its events (copied at once:
 * received binary data may be a view valid until the next `receive`), its output and what it
 * holds between reads.
 */
import type { Connection, ConnectionEvent, ConnectionOptions } from "../../core/mod.ts";
import { concatBytes, SlabAllocator } from "../../core/bytes.ts";
import { createTuning, PORTABLE_TUNING, type Tuning } from "../../core/tuning.ts";
import { testAsciiDecoder } from "../support/core-settings.ts";
import { FrameParser } from "../../core/frame.ts";
import { hex } from "../support/bytes.ts";
import { createPair, drainOutput } from "../support/core-pair.ts";
import { Random } from "./random.ts";

export type Role = "server" | "client";

/** An event as plain data, comparable with deepEqual. */
export type Normalized = Record<string, unknown>;

/** How a stream ended for the receiver: still open, failed with a close code, or closed by the peer. */
export type Verdict =
  | { kind: "open" }
  | { kind: "fail"; code: number }
  | { kind: "close"; code: number; reason: string };

export interface CoreOutcome {
  /** Events up to the end of the bytes (before `tick` and `receiveEof`). */
  events: Normalized[];
  /** Events from `tick(far future)` and `receiveEof()` afterwards. */
  endEvents: Normalized[];
  output: string;
  /** What was thrown out of `receive`, `tick` or `receiveEof`, if anything. */
  threw: string | null;
  /** Most bytes the connection held after any `receive` (see `heldBytes`), when measured. */
  maxHeld: number;
  /** Most output bytes one `receive` produced, over that chunk's size plus 256, when measured. */
  worstOutput: { bytes: number; chunk: number };
}


export function normalize(event: ConnectionEvent): Normalized {
  const out: Normalized = {};
  for (const [key, value] of Object.entries(event)) {
    if (key === "headers") continue;
    out[key] = value instanceof Uint8Array ? hex(value) : key === "request" ? JSON.parse(JSON.stringify(value, (_, v) => (v instanceof Uint8Array ? hex(v) : v))) : value;
  }
  return out;
}

/**
 * Streamed messages arrive as `fragment` events whose boundaries follow the chunking: each
 * message's parts become one `text`/`binary` event where its last part arrived. The parts of a
 * message that never ends (the connection failed in it) are dropped: how much of it was
 * delivered before the failure depends on where the reads ended.
 */
export function mergeFragments(events: Normalized[]): Normalized[] {
  const out: Normalized[] = [];
  let parts: string[] | null = null;
  let binary = false;
  for (const e of events) {
    if (e.type !== "fragment") {
      if (e.type === "error" || e.type === "close") parts = null;
      out.push(e);
      continue;
    }
    parts ??= [];
    binary = e.binary as boolean;
    parts.push(e.data as string);
    if (e.fin) {
      out.push({ type: binary ? "binary" : "text", data: parts.join("") });
      parts = null;
    }
  }
  return out;
}

/** The verdict the events give: the first `error` or `close`. */
export function verdictOf(events: readonly Normalized[]): Verdict {
  for (const e of events) {
    if (e.type === "error") return { kind: "fail", code: e.code as number };
    if (e.type === "close") return { kind: "close", code: e.code as number, reason: e.reason as string };
  }
  return { kind: "open" };
}

/**
 * The tunings a case runs under, by its seed (`tuningOf`): the portable default, and what
 * `engineTuning()` chooses on V8 and on JavaScriptCore, with a pure-JS ASCII decoder. Each
 * changes which of the core's paths a frame takes, never what comes out.
 */
export const FUZZ_TUNINGS: readonly { name: string; tuning: Tuning }[] = [
  { name: "portable", tuning: PORTABLE_TUNING },
  { name: "v8", tuning: createTuning({ maskWordSize: 8, allocator: new SlabAllocator(), asciiDecoder: testAsciiDecoder }) },
  { name: "jsc", tuning: createTuning({ payloadCopyLimit: 128, asciiDecoder: testAsciiDecoder }) },
];

/** The tuning of the case with this seed. */
export function tuningOf(seed: number): { name: string; tuning: Tuning } {
  return FUZZ_TUNINGS[seed % FUZZ_TUNINGS.length];
}

/** A connection of `role`, open (with the seed's tuning), with its opening handshake's events and output drained. */
export function openConnection(role: Role, options: ConnectionOptions, seed: number): Connection {
  const tuning = tuningOf(seed).tuning;
  const pair = createPair({ client: { random: Random.filler(seed), ...options }, server: options, tuning });
  if (pair.server.readyState !== 1 || pair.client.readyState !== 1) throw new Error("the handshake failed");
  const connection = role === "server" ? pair.server : pair.client;
  connection.pollEvents();
  if (drainOutput(connection).length !== 0) throw new Error("output left after the handshake");
  return connection;
}

/** Cut points for a chunking: none (whole), every byte, or random pieces. */
export function cutsFor(kind: "whole" | "bytes" | "random", length: number, random?: Random): number[] {
  if (kind === "whole") return [];
  if (kind === "bytes") return Array.from({ length: Math.max(0, length - 1) }, (_, i) => i + 1);
  const cuts: number[] = [];
  let at = 0;
  for (;;) {
    // Mostly short pieces, so that headers are often split, sometimes long ones.
    at += random!.chance(0.7) ? random!.range(1, 9) : random!.range(1, 3000);
    if (at >= length) return cuts;
    cuts.push(at);
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}\n${error.stack ?? ""}` : String(error);
}

/**
 * Feeds fresh copies of `bytes`, cut at `cuts`, to `connection`; then, if `end`, a far-future
 * tick and the end of the stream. `onEvent` sees each event as it is polled (a server accepts an
 * upgrade there).
 */
export function feed(
  connection: Connection,
  bytes: Uint8Array,
  cuts: readonly number[],
  measure: boolean,
  streamed: boolean,
  onEvent?: (event: ConnectionEvent) => void,
  end = true,
): CoreOutcome {
  const events: Normalized[] = [];
  const endEvents: Normalized[] = [];
  const output: Uint8Array[] = [];
  let threw: string | null = null;
  let maxHeld = 0;
  const worstOutput = { bytes: 0, chunk: 0 };
  let from = 0;
  for (const to of [...cuts, bytes.length]) {
    if (to === from) continue;
    try {
      connection.receive(bytes.slice(from, to)); // a fresh copy: receive() may unmask in place
    } catch (error) {
      threw ??= `receive: ${describe(error)}`;
    }
    // Copied at once: events may hold views of the chunk just received.
    threw ??= poll(connection, events, onEvent);
    const written = connection.pollOutput();
    let size = 0;
    for (const chunk of written) {
      output.push(chunk.slice());
      size += chunk.length;
    }
    if (measure) {
      maxHeld = Math.max(maxHeld, heldBytes(connection));
      if (size - (to - from) > worstOutput.bytes - worstOutput.chunk) {
        worstOutput.bytes = size;
        worstOutput.chunk = to - from;
      }
    }
    from = to;
  }
  // What asynchronous work delivered since the last read.
  threw ??= poll(connection, events, onEvent);
  for (const chunk of connection.pollOutput()) output.push(chunk.slice());
  for (const step of end ? ["tick", "receiveEof"] as const : []) {
    try {
      if (step === "tick") connection.tick(1e12);
      else connection.receiveEof();
    } catch (error) {
      threw ??= `${step}: ${describe(error)}`;
    }
    threw ??= poll(connection, endEvents, onEvent);
    for (const chunk of connection.pollOutput()) output.push(chunk.slice());
  }
  return {
    events: streamed ? mergeFragments(events) : events,
    endEvents,
    output: hex(concatBytes(output)),
    threw,
    maxHeld,
    worstOutput,
  };
}

/** Polls events until there are none (what `onEvent` does may cause more); returns what `onEvent` threw. */
function poll(connection: Connection, into: Normalized[], onEvent?: (event: ConnectionEvent) => void): string | null {
  let threw: string | null = null;
  for (let events = connection.pollEvents(); events.length !== 0; events = connection.pollEvents()) {
    for (const event of events) {
      into.push(normalize(event));
      try {
        onEvent?.(event);
      } catch (error) {
        threw ??= `${event.type} handler: ${describe(error)}`;
      }
    }
  }
  return threw;
}

/**
 * Bytes reachable from `root` through its own properties, arrays, maps and sets: the byte length
 * of every distinct ArrayBuffer a view or buffer found there keeps alive. Closures are not
 * followed, nor are `#private` fields: the core keeps the bytes it holds in ordinary fields of
 * the connection's parts (message.ts, writer.ts, events.ts); a closure holds at most a control
 * frame's payload (125 bytes of a read) until the next poll.
 */
export function heldBytes(root: object): number {
  const seen = new Set<object>();
  const buffers = new Set<ArrayBufferLike>();
  const stack: unknown[] = [root];
  while (stack.length !== 0) {
    const value = stack.pop();
    if (value === null || typeof value !== "object" || seen.has(value)) continue;
    seen.add(value);
    if (ArrayBuffer.isView(value)) {
      buffers.add(value.buffer);
      continue;
    }
    if (value instanceof ArrayBuffer) {
      buffers.add(value);
      continue;
    }
    if (value instanceof Map) {
      for (const [k, v] of value) stack.push(k, v);
      continue;
    }
    if (value instanceof Set) {
      for (const v of value) stack.push(v);
      continue;
    }
    if (value instanceof Promise || value instanceof WeakMap || value instanceof WeakSet) continue;
    // An allocator's slab is shared by every connection of its tuning, not held by this one.
    if (value instanceof SlabAllocator) continue;
    for (const key of Reflect.ownKeys(value)) {
      const descriptor = Reflect.getOwnPropertyDescriptor(value, key);
      if (descriptor && "value" in descriptor) stack.push(descriptor.value);
    }
  }
  let total = 0;
  for (const buffer of buffers) total += buffer.byteLength;
  return total;
}


interface OutputFrame {
  opcode: number;
  payload: string;
}

/** `output` (hex) as an HTTP head, if it starts with one, and the frames after it; null if they do not parse. */
function splitOutput(output: string, masked: boolean): { head: string; frames: OutputFrame[] } | null {
  const bytes = Uint8Array.from((output.match(/../g) ?? []).map((h) => parseInt(h, 16)));
  let head = "";
  let at = 0;
  if (bytes.length >= 5 && String.fromCharCode(...bytes.subarray(0, 5)) === "HTTP/") {
    // Only a 101 response is followed by frames; another response is compared as it is.
    if (String.fromCharCode(...bytes.subarray(0, 12)) !== "HTTP/1.1 101") return null;
    const text = String.fromCharCode(...bytes.subarray(0, Math.min(bytes.length, 16384)));
    const end = text.indexOf("\r\n\r\n");
    if (end < 0) return null;
    head = text.slice(0, end + 4);
    at = end + 4;
  }
  const frames: OutputFrame[] = [];
  let broken = false;
  const parser = new FrameParser({
    onFrameStart: (opcode) => (frames.push({ opcode, payload: "" }), true),
    onFramePayload: (data) => ((frames[frames.length - 1].payload += hex(data)), true),
    onFrameError: () => void (broken = true),
  }, masked);
  parser.push(bytes.slice(at));
  return broken ? null : { head, frames };
}

/**
 * What differs between the output of two runs of the same bytes, or null. Exact, except that
 * automatic pongs may be fewer where more pings arrived in one read: RFC 6455 §5.5.3 lets an
 * endpoint answer only the most recent of the pings it has not answered yet. So the frames other
 * than pongs must be the same, and each run's pongs must answer received pings in order, the last
 * of them the last ping answered by the other run. `pings`: the payloads of the pings received.
 */
export function outputDifference(a: string, b: string, role: Role, pings: readonly string[]): string | null {
  if (a === b) return null;
  const masked = role === "client"; // RFC 6455 §5.3: a client masks what it sends
  const x = splitOutput(a, masked);
  const y = splitOutput(b, masked);
  if (x === null || y === null) return "output differs";
  if (x.head !== y.head) return "the HTTP heads written differ";
  const others = (f: OutputFrame[]) => JSON.stringify(f.filter((frame) => frame.opcode !== 0xa));
  if (others(x.frames) !== others(y.frames)) return "frames other than pongs differ";
  for (const frames of [x.frames, y.frames]) {
    let next = 0;
    for (const pong of frames.filter((frame) => frame.opcode === 0xa)) {
      while (next < pings.length && pings[next] !== pong.payload) next++;
      if (next++ === pings.length) return `a pong (${pong.payload}) answers no ping received after the one answered before it`;
    }
  }
  const last = (f: OutputFrame[]) => f.filter((frame) => frame.opcode === 0xa).pop()?.payload;
  if (last(x.frames) !== last(y.frames)) return "the last pongs differ";
  return null;
}
