/**
 * permessage-deflate (RFC 7692) on the fuzzer's side: the offers and answers of both roles,
 * raw DEFLATE with `node:zlib` directly (the fuzzer is the independent peer: the code under test,
 * core/permessage-deflate.ts and adapters/zlib/codec.ts, never judges itself), and the
 * generated payloads of sections 12 and 13 (Autobahn reads data files; we generate data of the
 * same kinds, deterministically).
 *
 * zlib streams are used (not the one-shot `*Sync` helpers): Deno's node:zlib ignores
 * `dictionary` in those, so context takeover can only be had with a long-lived stream.
 */
import zlib from "node:zlib";
import { concatBytes } from "../../core/bytes.ts";

// ---- parameters --------------------------------------------------------------------------------

/**
 * What the fuzzer asks of the peer, as Autobahn's 13.x tuples (no_context_takeover,
 * max_window_bits; 0: not asked). As a client it offers `server_no_context_takeover` /
 * `server_max_window_bits`; as a server it answers with `client_no_context_takeover` /
 * `client_max_window_bits` (the latter only if the client offered it).
 */
export interface DeflateRequest {
  noContextTakeover: boolean;
  maxWindowBits: number;
}

export interface DeflateCase {
  /** The client's offers, in order (Autobahn's 13.7 offers three); the server answers with the first. */
  requests: DeflateRequest[];
}

/** What was agreed, for both directions. */
export interface Negotiated {
  serverNoContextTakeover: boolean;
  clientNoContextTakeover: boolean;
  serverMaxWindowBits: number;
  clientMaxWindowBits: number;
  /** The header value, as it was sent or received. */
  header: string;
}

type Params = Map<string, string | true>;

/** Parses a Sec-WebSocket-Extensions value (simple tokens and token=value / quoted values). */
export function parseExtensions(value: string): { name: string; params: Params; duplicate: boolean }[] | null {
  const out: { name: string; params: Params; duplicate: boolean }[] = [];
  for (const item of value.split(",")) {
    const parts = item.split(";").map((s) => s.trim());
    if (!parts[0] || !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(parts[0])) return null;
    const params: Params = new Map();
    let duplicate = false;
    for (const p of parts.slice(1)) {
      const m = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+)\s*(?:=\s*(?:"([^"]*)"|([!#$%&'*+.^_`|~0-9A-Za-z-]+)))?$/.exec(p);
      if (!m) return null;
      const key = m[1].toLowerCase();
      if (params.has(key)) duplicate = true;
      params.set(key, m[2] ?? m[3] ?? true);
    }
    out.push({ name: parts[0].toLowerCase(), params, duplicate });
  }
  return out;
}

const bitsOf = (v: string | true | undefined): number | null => (typeof v === "string" && /^(8|9|1[0-5])$/.test(v) ? Number(v) : null);

/** The fuzzing client's offer header for a case. */
export function offerHeader(c: DeflateCase): string {
  return c.requests
    .map((r) => ["permessage-deflate", "client_max_window_bits", r.noContextTakeover ? "server_no_context_takeover" : "", r.maxWindowBits ? `server_max_window_bits=${r.maxWindowBits}` : ""].filter(Boolean).join("; "))
    .join(", ");
}

/** The fuzzing client's check of the server's answer (RFC 7692 §5, §7.1): the agreement, or why not. */
export function checkAnswer(c: DeflateCase, value: string | undefined): Negotiated | null | string {
  if (value === undefined) return null;
  const exts = parseExtensions(value);
  if (!exts) return `malformed Sec-WebSocket-Extensions "${value}"`;
  if (exts.length !== 1 || exts[0].name !== "permessage-deflate") return `the server accepted extensions that were not offered: "${value}"`;
  const { params, duplicate } = exts[0];
  if (duplicate) return `a duplicate parameter in "${value}" (RFC 7692 §7.1)`;
  for (const key of params.keys()) {
    if (!["server_no_context_takeover", "client_no_context_takeover", "server_max_window_bits", "client_max_window_bits"].includes(key)) {
      return `unknown parameter ${key} in "${value}" (RFC 7692 §7.1)`;
    }
  }
  for (const key of ["server_no_context_takeover", "client_no_context_takeover"]) {
    if (params.has(key) && params.get(key) !== true) return `${key} with a value in "${value}" (RFC 7692 §7.1.1)`;
  }
  let serverBits = 15;
  let clientBits = 15;
  if (params.has("server_max_window_bits")) {
    const b = bitsOf(params.get("server_max_window_bits"));
    if (b === null) return `invalid server_max_window_bits in "${value}" (RFC 7692 §7.1.2.1)`;
    serverBits = b;
  }
  if (params.has("client_max_window_bits")) {
    const b = bitsOf(params.get("client_max_window_bits"));
    if (b === null) return `invalid client_max_window_bits in "${value}" (RFC 7692 §7.1.2.2)`;
    clientBits = b;
  }
  // It must answer one of the offers (§7.1.1.1: a requested server_no_context_takeover is
  // confirmed; §7.1.2.1: server_max_window_bits is at most the one requested).
  const answers = c.requests.some((r) =>
    (!r.noContextTakeover || params.has("server_no_context_takeover")) && (!r.maxWindowBits || (params.has("server_max_window_bits") && serverBits <= r.maxWindowBits))
  );
  if (!answers) return `"${value}" answers none of the offers "${offerHeader(c)}" (RFC 7692 §7.1.1.1, §7.1.2.1)`;
  return {
    serverNoContextTakeover: params.has("server_no_context_takeover"),
    clientNoContextTakeover: params.has("client_no_context_takeover"),
    serverMaxWindowBits: serverBits,
    clientMaxWindowBits: clientBits,
    header: value,
  };
}

/**
 * The fuzzing server's answer to a client's offers: the first valid permessage-deflate offer is
 * accepted, with what the client asked for, plus what the case asks of the client. Null: the
 * client offered nothing acceptable (the case is then INFORMATIONAL).
 */
export function answerOffer(c: DeflateCase, value: string | undefined): Negotiated | null {
  if (value === undefined) return null;
  const exts = parseExtensions(value);
  if (!exts) return null;
  const ask = c.requests[0];
  for (const { name, params, duplicate } of exts) {
    if (name !== "permessage-deflate" || duplicate) continue;
    let ok = true;
    for (const [key, v] of params) {
      if (key === "server_no_context_takeover" || key === "client_no_context_takeover") ok &&= v === true;
      else if (key === "server_max_window_bits") ok &&= bitsOf(v) !== null;
      else if (key === "client_max_window_bits") ok &&= v === true || bitsOf(v) !== null;
      else ok = false;
    }
    if (!ok) continue;
    const parts = ["permessage-deflate"];
    const serverNct = params.has("server_no_context_takeover");
    if (serverNct) parts.push("server_no_context_takeover");
    const clientNct = ask.noContextTakeover;
    if (clientNct) parts.push("client_no_context_takeover");
    const serverBits = params.has("server_max_window_bits") ? bitsOf(params.get("server_max_window_bits"))! : 15;
    if (params.has("server_max_window_bits")) parts.push(`server_max_window_bits=${serverBits}`);
    let clientBits = 15;
    if (params.has("client_max_window_bits")) {
      const offered = params.get("client_max_window_bits");
      clientBits = typeof offered === "string" ? Number(offered) : 15;
      if (ask.maxWindowBits) clientBits = Math.min(clientBits, ask.maxWindowBits);
      if (ask.maxWindowBits || typeof offered === "string") parts.push(`client_max_window_bits=${clientBits}`);
    }
    return { serverNoContextTakeover: serverNct, clientNoContextTakeover: clientNct, serverMaxWindowBits: serverBits, clientMaxWindowBits: clientBits, header: parts.join("; ") };
  }
  return null;
}

// ---- raw DEFLATE ----------------------------------------------------------------------------------

const TAIL = Uint8Array.of(0x00, 0x00, 0xff, 0xff);

/** One direction of one connection: a zlib stream kept across messages unless no context takeover. */
export class DeflateEngine {
  private z: zlib.DeflateRaw | zlib.InflateRaw | null = null;
  private out: Uint8Array[] = [];
  private error: Error | null = null;
  private fail: ((e: Error) => void) | null = null;
  private chain: Promise<unknown> = Promise.resolve();

  private readonly kind: "deflate" | "inflate";
  private readonly windowBits: number;
  private readonly noContextTakeover: boolean;

  constructor(kind: "deflate" | "inflate", windowBits: number, noContextTakeover: boolean) {
    this.kind = kind;
    this.windowBits = windowBits;
    this.noContextTakeover = noContextTakeover;
  }

  /** Compresses (without the 4-byte tail, RFC 7692 §7.2.1) or inflates (tail appended, §7.2.2) one message. */
  process(data: Uint8Array): Promise<Uint8Array> {
    const run = this.chain.then(() => this.one(data));
    this.chain = run.catch(() => {});
    return run;
  }

  close(): void {
    this.z?.close();
    this.z = null;
  }

  private stream(): zlib.DeflateRaw | zlib.InflateRaw {
    if (this.z) return this.z;
    // 8 bits: zlib has no 256-byte window; compress with 9 and Huffman coding only (no
    // back-references at all), and inflate with 9 (a larger window is always safe).
    const windowBits = Math.max(9, this.windowBits);
    const z = this.kind === "deflate"
      ? zlib.createDeflateRaw({ windowBits, ...(this.windowBits === 8 ? { strategy: zlib.constants.Z_HUFFMAN_ONLY } : {}) })
      : zlib.createInflateRaw({ windowBits });
    z.on("data", (c: Uint8Array) => this.out.push(c));
    z.on("error", (e: Error) => {
      this.error = e;
      this.fail?.(e);
    });
    return (this.z = z);
  }

  private one(data: Uint8Array): Promise<Uint8Array> {
    const z = this.stream();
    return new Promise<Uint8Array>((resolve, reject) => {
      if (this.error) return reject(this.error);
      this.fail = reject;
      z.write(this.kind === "inflate" ? concatBytes([data, TAIL]) : data);
      z.flush(zlib.constants.Z_SYNC_FLUSH, () => {
        this.fail = null;
        if (this.error) return reject(this.error);
        let result = concatBytes(this.out);
        this.out = [];
        if (this.kind === "deflate") {
          const n = result.length;
          if (n >= 4 && result[n - 4] === 0 && result[n - 3] === 0 && result[n - 2] === 0xff && result[n - 1] === 0xff) result = result.subarray(0, n - 4);
        }
        if (this.noContextTakeover) this.close();
        resolve(result);
      });
    });
  }
}


// ---- payloads -------------------------------------------------------------------------------------

/** The kinds of data of 12.1–12.5 (Autobahn's data files), generated. */
export type DataKind = "json" | "bitmap" | "faust" | "html" | "pdf";

const CORPUS_SIZE = 256 * 1024;
const corpora = new Map<DataKind, Uint8Array>();

function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), s | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

const WORDS = (
  "Habe nun ach Philosophie Juristerei und Medizin und leider auch Theologie durchaus studiert mit heißem Bemühn " +
  "da steh ich nun ich armer Tor und bin so klug als wie zuvor heiße Magister heiße Doktor gar und ziehe schon an die zehen Jahr " +
  "herauf herab und quer und krumm meine Schüler an der Nase herum und sehe daß wir nichts wissen können das will mir schier das Herz verbrennen"
).split(" ");

function textCorpus(kind: "json" | "faust" | "html", rnd: () => number): string {
  const word = () => WORDS[Math.floor(rnd() * WORDS.length)];
  const words = (n: number) => Array.from({ length: n }, word).join(" ");
  const parts: string[] = [];
  let size = 0;
  let i = 0;
  while (size < CORPUS_SIZE) {
    let s: string;
    if (kind === "json") {
      s = JSON.stringify({ id: i, guid: `${Math.floor(rnd() * 1e9).toString(16)}-${i}`, isActive: rnd() < 0.5, balance: `$${(rnd() * 4000).toFixed(2)}`, age: 20 + Math.floor(rnd() * 50), name: words(2), tags: [word(), word(), word()], about: words(12), latitude: rnd() * 180 - 90, longitude: rnd() * 360 - 180 }) + ",\n";
    } else if (kind === "html") {
      s = `<div class="entry" id="e${i}"><h2>${words(3)}</h2>\n  <p>${words(20)} <a href="/wiki/${word()}">${word()}</a></p>\n  <ul><li>${words(4)}</li><li>${words(5)}</li></ul></div>\n`;
    } else {
      s = `${words(7 + Math.floor(rnd() * 6))},\n`;
    }
    parts.push(s);
    size += s.length * 1.05;
    i++;
  }
  const text = kind === "json" ? `[${parts.join("")}{}]` : kind === "html" ? `<!DOCTYPE html><html><body>\n${parts.join("")}</body></html>` : parts.join("");
  // Text kinds are ASCII, so that any slice is valid UTF-8.
  return kind === "faust" ? text : text.replace(/ß/g, "ss").normalize("NFD").replace(/[^\x00-\x7f]/g, "");
}

function corpus(kind: DataKind): Uint8Array {
  let c = corpora.get(kind);
  if (c) return c;
  const rnd = prng({ json: 1, bitmap: 2, faust: 3, html: 4, pdf: 5 }[kind]);
  if (kind === "bitmap") {
    // A 512×512 8-bit grey "photo": smooth gradients plus noise (compressible, not trivially).
    c = new Uint8Array(1078 + 512 * 512);
    c.set([0x42, 0x4d], 0);
    for (let i = 2; i < 1078; i++) c[i] = i < 54 ? 0 : (i - 54) >> 2;
    for (let y = 0; y < 512; y++) {
      for (let x = 0; x < 512; x++) c[1078 + y * 512 + x] = (128 + 60 * Math.sin(x / 37) * Math.cos(y / 23) + 20 * Math.sin((x + y) / 11) + rnd() * 24) & 0xff;
    }
  } else if (kind === "pdf") {
    // Text streams between incompressible (already compressed) runs, as in a PDF.
    const enc = new TextEncoder();
    const chunks: Uint8Array[] = [enc.encode("%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")];
    let size = 0;
    let obj = 1;
    while (size < CORPUS_SIZE) {
      const head = enc.encode(`${obj++} 0 obj\n<< /Length 2048 /Filter /FlateDecode >>\nstream\n`);
      const body = new Uint8Array(512 + Math.floor(rnd() * 2048));
      for (let i = 0; i < body.length; i++) body[i] = Math.floor(rnd() * 256);
      const text = enc.encode(`\nendstream\nendobj\n${obj++} 0 obj\n<< /Type /Page /Parent 3 0 R /Resources << /Font << /F1 5 0 R >> >> /MediaBox [0 0 612 792] >>\nendobj\n`);
      chunks.push(head, body, text);
      size += head.length + body.length + text.length;
    }
    c = concatBytes(chunks);
  } else {
    c = new TextEncoder().encode(textCorpus(kind, rnd));
  }
  corpora.set(kind, c);
  return c;
}

/**
 * Message `i` of `size` octets of `kind`: a slice of the corpus at an offset that moves with i
 * (so that consecutive messages differ, and context takeover has something to find). Text
 * kinds are ASCII, so every slice is valid UTF-8.
 */
export function payloadOf(kind: DataKind, size: number, i: number): Uint8Array {
  const c = corpus(kind);
  const room = c.length - size;
  const offset = room > 0 ? (i * 7919) % room : 0;
  return c.slice(offset, offset + size);
}
