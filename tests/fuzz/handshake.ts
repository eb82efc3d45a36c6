/**
 * The fuzzer's handshake phase: a client's request (to a server) or a server's response (to a
 * client), valid or damaged, with frames behind it in the same bytes, fed to a fresh connection
 * that accepts an upgrade as soon as it sees one. The checks are those of the frame phase, with
 * the HTTP limits in the bound of what a connection may hold.
 */
import process from "node:process";
import { ClientConnection, type Connection, type ConnectionEvent, ServerConnection } from "../../core/mod.ts";
import { concatBytes } from "../../core/bytes.ts";
import type { HttpLimits } from "../../core/http.ts";
import { type CoreOutcome, cutsFor, feed, type Normalized, outputDifference, type Role } from "./core-runner.ts";
import { Random } from "./random.ts";
import { type Limits, mutateBytes, nearValidFrames, BREAKS, serialize, validFrames } from "./streams.ts";
import { heldBound } from "./fuzz.ts";

export interface HandshakeCase {
  seed: number;
  role: Role;
  head: "valid" | "mutated" | "stuffed" | "long-line" | "other-response" | "garbage";
  limits: Limits;
  httpLimits: Partial<HttpLimits>;
  bytes: Uint8Array;
}

const encoder = new TextEncoder();
const HOST = "example.com";

/** The client connection a seed stands for (its key comes from the seed). */
function client(seed: number, c: { limits: Limits; httpLimits: Partial<HttpLimits> }): ClientConnection {
  return new ClientConnection({ host: HOST, random: Random.filler(seed), ...c.limits, httpLimits: c.httpLimits });
}

/** Inserts `text` before the blank line that ends an HTTP head. */
function beforeBlankLine(head: Uint8Array, text: string): Uint8Array {
  const end = head.length - 2;
  return concatBytes([head.subarray(0, end), encoder.encode(text), head.subarray(end)]);
}

export function makeHandshakeCase(seed: number): HandshakeCase {
  const random = new Random(seed);
  const role: Role = random.chance(0.5) ? "server" : "client";
  const limits: Limits = {};
  if (random.chance(0.3)) limits.maxMessageSize = random.pick([1, 125, 1000]);
  const httpLimits: Partial<HttpLimits> = {};
  if (random.chance(0.5)) httpLimits.maxLineLength = random.pick([64, 100, 200]);
  if (random.chance(0.3)) httpLimits.maxHeaders = random.pick([3, 6, 10]);
  if (random.chance(0.5)) httpLimits.maxHeadSize = random.pick([150, 256, 1024]);
  const spec = { limits, httpLimits };
  const request = concatBytes(client(seed, spec).pollOutput());
  let head = request;
  if (role === "client") {
    const server = new ServerConnection();
    server.receive(request.slice());
    if (server.pollEvents().some((e) => e.type === "upgrade")) server.accept();
    head = concatBytes(server.pollOutput());
  }
  const r = random.next();
  const kind: HandshakeCase["head"] = r < 0.4 ? "valid" : r < 0.65 ? "mutated" : r < 0.75 ? "stuffed" : r < 0.85 ? "long-line" : r < 0.95 ? "other-response" : "garbage";
  if (kind === "mutated") head = mutateBytes(random, head);
  if (kind === "stuffed") {
    let extra = "";
    for (let i = random.range(1, 30); i > 0; i--) extra += `X-${i}: ${"v".repeat(random.int(40))}\r\n`;
    head = beforeBlankLine(head, extra);
  }
  if (kind === "long-line") head = beforeBlankLine(head, `X-Long: ${"w".repeat(random.range(20, 300))}\r\n`);
  if (kind === "other-response") {
    const body = random.bytes(random.int(100));
    const chunked = random.chance(0.5);
    const status = random.pick(["HTTP/1.1 404 Not Found", "HTTP/1.1 200 OK", "HTTP/1.0 101 Switching Protocols", "HTTP/1.1 101 Switching Protocols", "GET / HTTP/1.1"]);
    const framing = chunked ? "Transfer-Encoding: chunked" : `Content-Length: ${random.chance(0.8) ? body.length : random.int(1000)}`;
    const payload = chunked
      ? concatBytes([encoder.encode(`${body.length.toString(16)}\r\n`), body, encoder.encode(random.chance(0.8) ? "\r\n0\r\n\r\n" : "\r\nzz\r\n")])
      : body;
    head = concatBytes([encoder.encode(`${status}\r\n${framing}\r\n\r\n`), payload]);
  }
  if (kind === "garbage") head = random.bytes(random.int(300));
  const masked = role === "server";
  const frames = random.chance(0.7) ? validFrames(random, masked, limits) : nearValidFrames(random, masked, limits, random.pick(BREAKS));
  return { seed, role, head: kind, limits, httpLimits, bytes: concatBytes([head, serialize(frames, random)]) };
}

/** A fresh connection of the case's role, its own first output (a client's request) drained. */
function connectionFor(c: HandshakeCase): Connection {
  if (c.role === "client") {
    const connection = client(c.seed, c);
    connection.pollOutput();
    return connection;
  }
  return new ServerConnection({ ...c.limits, httpLimits: c.httpLimits });
}

export function runHandshake(c: HandshakeCase, cuts: readonly number[], measure: boolean): CoreOutcome {
  const connection = connectionFor(c);
  const accept = (event: ConnectionEvent) => {
    if (event.type === "upgrade") (connection as ServerConnection).accept();
  };
  return feed(connection, c.bytes, cuts, measure, c.limits.streamThreshold !== undefined, accept);
}

/** Bytes a connection may hold in the handshake phase: the frame phase's bound and an HTTP head. */
export function handshakeBound(c: HandshakeCase, maxChunk: number): number {
  const line = c.httpLimits.maxLineLength ?? 8192;
  const head = c.httpLimits.maxHeadSize ?? 16384;
  return heldBound(c.limits, c.bytes.length, maxChunk) + 2 * (head + line + 1);
}

/** What the chunkings are compared on. */
interface Observed {
  events: Normalized[];
  endEvents: Normalized[];
  /** The output, as Latin-1 text (HTTP responses are text, frames are not). */
  output: string;
}

function observed(o: CoreOutcome): Observed {
  return { events: o.events, endEvents: o.endEvents, output: String.fromCharCode(...(o.output.match(/../g) ?? []).map((h) => parseInt(h, 16))) };
}

/**
 * Core bugs this fuzzer found that are reported and not fixed yet. Each one erases exactly its
 * symptom from both runs being compared (`normalize`), so that the rest of the checks keep
 * running on those cases. ANYWS_FUZZ_STRICT=1 turns them off (the fix must make the fuzzer pass
 * with it set, and then delete the entry).
 */
export const PENDING_BUGS: readonly { id: string; rfc: string; normalize(o: Observed, whole: CoreOutcome): Observed }[] = [];

const strict = process.env.ANYWS_FUZZ_STRICT === "1";

export interface HandshakeProblem {
  check: "throws" | "chunking" | "bounded";
  message: string;
  split: string;
}

/** How many cases each pending bug exempted. */
export const pendingSeen = new Map<string, number>();

/** The frame phase's checks, on a handshake case (no differential: ws's Receiver has no handshake). */
export function checkHandshakeCase(c: HandshakeCase): HandshakeProblem | null {
  const whole = runHandshake(c, [], false);
  if (whole.threw) return { check: "throws", message: whole.threw, split: "whole" };
  const random = new Random(c.seed ^ 0x2545f491);
  const chunkings: [string, number[]][] = [];
  if (c.bytes.length <= 4096) chunkings.push(["every byte", cutsFor("bytes", c.bytes.length)]);
  const cuts = cutsFor("random", c.bytes.length, random);
  chunkings.push([`cuts ${JSON.stringify(cuts)}`, cuts]);
  for (const [split, cuts] of chunkings) {
    const outcome = runHandshake(c, cuts, split !== "every byte");
    if (outcome.threw) return { check: "throws", message: outcome.threw, split };
    let a = observed(whole);
    let b = observed(outcome);
    for (const bug of strict ? [] : PENDING_BUGS) {
      if (JSON.stringify(a) === JSON.stringify(b)) break;
      const [a2, b2] = [bug.normalize(a, whole), bug.normalize(b, whole)];
      if (JSON.stringify([a2, b2]) !== JSON.stringify([a, b])) pendingSeen.set(bug.id, (pendingSeen.get(bug.id) ?? 0) + 1);
      [a, b] = [a2, b2];
    }
    // Pongs may be fewer where more pings came in one read (RFC 6455 §5.5.3, `outputDifference`).
    const pings = whole.events.filter((e) => e.type === "ping").map((e) => e.data as string);
    const eventsAlike = JSON.stringify([a.events, a.endEvents]) === JSON.stringify([b.events, b.endEvents]);
    if (JSON.stringify(a) !== JSON.stringify(b) && !(eventsAlike && outputDifference(whole.output, outcome.output, c.role, pings) === null)) return { check: "chunking", message: `whole: ${JSON.stringify(a).slice(0, 2000)}\n  split: ${JSON.stringify(b).slice(0, 2000)}`, split };
    let maxChunk = 0;
    let from = 0;
    for (const to of [...cuts, c.bytes.length]) {
      maxChunk = Math.max(maxChunk, to - from);
      from = to;
    }
    const bound = handshakeBound(c, maxChunk);
    if (outcome.maxHeld > bound) return { check: "bounded", message: `held ${outcome.maxHeld} bytes, bound ${bound}`, split };
  }
  return null;
}
