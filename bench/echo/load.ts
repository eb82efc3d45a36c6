/**
 * The echo benchmark's load generator: one Node process, raw `node:net` sockets, no WebSocket
 * library. It speaks just enough RFC 6455 to load a server and to check every answer:
 *
 * - the opening handshake: a fixed request (Sec-WebSocket-Key from a pool of 64 random keys);
 *   the response must be `101` with the right Sec-WebSocket-Accept;
 * - client frames are built and masked once, before the run (each with its own random key), and
 *   written from that memory: sending costs a `write()`, never a copy or a mask;
 * - server frames are parsed in place; every echoed message must carry the opcode, length and
 *   bytes of the message sent at that position on that connection (messages cycle through a set
 *   of distinct payloads), so a server that drops, reorders, truncates or corrupts fails the run.
 *
 * The WebSocket library under test is not used here, so a bug in it cannot hide a bug in itself.
 *
 * --check=frames skips the whole-chunk comparison (see EchoParser) and parses every frame.
 *
 * Modes (one JSON `LoadResult` line at the end on stdout; progress lines `{"phase":…}` before):
 *   --mode=echo --conns=N --window=W --size=BYTES --binary --warmup=MS --time=MS [--latency]
 *       N connections, each keeping W messages in flight: every echo received is answered by a
 *       new message (a pipelined echo). --latency records each round trip (use N=1, W=1).
 *   --mode=handshake --conns=N --warmup=MS --time=MS
 *       N loops of: TCP connect, upgrade, close handshake (code 1000), wait for the TCP close.
 *   --mode=idle [--concurrency=C]
 *       commands on stdin: `open N` opens N more connections (C handshakes at a time) and
 *       prints {"open": total}; `close` closes them all; stdin's end exits.
 */
import { Buffer } from "node:buffer";
import { createHash, randomBytes } from "node:crypto";
import * as net from "node:net";
import process from "node:process";
import { createInterface } from "node:readline";
import { type LoadResult, numberOption, option } from "./common.ts";

const args = process.argv.slice(2);
const HOST = option(args, "host") ?? "127.0.0.1";
const PORT = numberOption(args, "port", 0);
const MODE = option(args, "mode") ?? "echo";
const CONNS = numberOption(args, "conns", 1);
const WINDOW = numberOption(args, "window", 1);
const SIZE = numberOption(args, "size", 32);
const BINARY = args.includes("--binary");
const WARMUP_MS = numberOption(args, "warmup", 500);
const TIME_MS = numberOption(args, "time", 2000);
const LATENCY = args.includes("--latency");
const CONCURRENCY = numberOption(args, "concurrency", 128);
/** --check=frames: parse every frame, never compare whole chunks (to test the parser itself). */
const PARSE_ALWAYS = option(args, "check") === "frames";
const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

function fail(message: string): never {
  process.stderr.write(`load generator: ${message}\n`);
  process.exit(1);
}

const emit = (value: object) => process.stdout.write(JSON.stringify(value) + "\n");
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const cpuSeconds = () => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1e6;
};

// ---- Handshake --------------------------------------------------------------------------------

interface Key {
  request: Buffer;
  accept: string;
}

const KEYS: Key[] = Array.from({ length: 64 }, () => {
  const key = randomBytes(16).toString("base64");
  const request =
    `GET / HTTP/1.1\r\nHost: ${HOST}:${PORT}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
    `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`;
  return { request: Buffer.from(request, "latin1"), accept: createHash("sha1").update(key + GUID).digest("base64") };
});
let keyIndex = 0;
const nextKey = () => KEYS[keyIndex++ & 63];

/**
 * Collects the response head; returns the bytes after it once it is complete and valid,
 * null while incomplete; fails the run on a bad response.
 */
class ResponseHead {
  private head: Buffer = Buffer.alloc(0);
  private readonly key: Key;
  constructor(key: Key) {
    this.key = key;
  }

  feed(chunk: Buffer): Buffer | null {
    this.head = this.head.length === 0 ? chunk : Buffer.concat([this.head, chunk]);
    const end = this.head.indexOf("\r\n\r\n");
    if (end < 0) {
      if (this.head.length > 16384) fail("response head over 16 KiB");
      return null;
    }
    const lines = this.head.subarray(0, end).toString("latin1").split("\r\n");
    if (!/^HTTP\/1\.1 101 /.test(lines[0] + " ")) fail(`upgrade refused: ${lines[0]}`);
    const accept = lines.find((l) => /^sec-websocket-accept:/i.test(l))?.slice(21).trim();
    if (accept !== this.key.accept) fail(`wrong Sec-WebSocket-Accept: ${accept}`);
    return this.head.subarray(end + 4);
  }
}

function connect(): net.Socket {
  const socket = net.connect({ host: HOST, port: PORT, noDelay: true });
  socket.on("error", (error) => fail(`socket error: ${error.message}`));
  return socket;
}

/**
 * Connects and sends an upgrade request. Once a valid 101 has arrived, `opened` gets the bytes
 * that came after its head (often none); every later chunk goes to `data`.
 */
function openWebSocket(opened: (rest: Buffer) => void, data: (chunk: Buffer) => void): net.Socket {
  const key = nextKey();
  const head = new ResponseHead(key);
  const socket = connect();
  let open = false;
  socket.on("connect", () => socket.write(key.request));
  socket.on("data", (chunk: Buffer) => {
    if (open) return data(chunk);
    const rest = head.feed(chunk);
    if (rest === null) return;
    open = true;
    opened(rest);
  });
  return socket;
}

// ---- Client frames -----------------------------------------------------------------------------

function maskedFrame(opcode: number, payload: Uint8Array): Buffer {
  const n = payload.length;
  const lengthBytes = n < 126 ? 0 : n < 0x10000 ? 2 : 8;
  const frame = Buffer.alloc(2 + lengthBytes + 4 + n);
  frame[0] = 0x80 | opcode;
  frame[1] = 0x80 | (lengthBytes === 0 ? n : lengthBytes === 2 ? 126 : 127);
  if (lengthBytes === 2) frame.writeUInt16BE(n, 2);
  if (lengthBytes === 8) frame.writeBigUInt64BE(BigInt(n), 2);
  const at = 2 + lengthBytes + 4;
  const key = randomBytes(4);
  key[0] |= 1; // never an all-zero key
  key.copy(frame, at - 4);
  for (let i = 0; i < n; i++) frame[at + i] = payload[i] ^ key[i & 3];
  return frame;
}

/** Distinct payloads, cycled through; text is ASCII. */
function payloads(count: number, size: number, binary: boolean): Buffer[] {
  return Array.from({ length: count }, (_, k) => {
    const p = Buffer.alloc(size);
    if (binary) {
      for (let i = 0; i < size; i++) p[i] = (i * 2654435761 + k * 40503) >>> 24;
    } else {
      const text = `anyws echo bench message #${String(k).padStart(3, "0")} `;
      for (let i = 0; i < size; i++) p[i] = text.charCodeAt(i % text.length);
    }
    return p;
  });
}

/**
 * The messages of a run, masked once. Small frames are laid out twice in a row in one buffer,
 * so any run of up to `count` consecutive messages is one contiguous slice: one `write()`.
 */
class Messages {
  readonly count: number;
  readonly payloads: Buffer[];
  readonly opcode: number;
  private readonly frames: Buffer[];
  private readonly ring: Buffer | null;
  private readonly offsets: number[] = [];

  constructor(size: number, binary: boolean, window: number) {
    this.opcode = binary ? 2 : 1;
    this.count = Math.max(window, size <= 4096 ? 64 : 4);
    this.payloads = payloads(this.count, size, binary);
    this.frames = this.payloads.map((p) => maskedFrame(this.opcode, p));
    if (size <= 4096) {
      this.ring = Buffer.concat([...this.frames, ...this.frames]);
      let at = 0;
      for (const f of [...this.frames, ...this.frames]) {
        this.offsets.push(at);
        at += f.length;
      }
      this.offsets.push(at);
    } else {
      this.ring = null;
    }
  }

  /** Writes messages `first` … `first + n - 1` (n <= count). */
  write(socket: net.Socket, first: number, n: number): void {
    const j = first % this.count;
    if (this.ring !== null) {
      socket.write(this.ring.subarray(this.offsets[j], this.offsets[j + n]));
      return;
    }
    if (n > 1) socket.cork();
    for (let q = 0; q < n; q++) socket.write(this.frames[(j + q) % this.count]);
    if (n > 1) socket.uncork();
  }
}

// ---- Server frames -----------------------------------------------------------------------------

/** A server frame as RFC 6455 §5.2 requires it: FIN, no mask, the shortest length encoding. */
function serverFrame(opcode: number, payload: Uint8Array): Buffer {
  const n = payload.length;
  const lengthBytes = n < 126 ? 0 : n < 0x10000 ? 2 : 8;
  const frame = Buffer.alloc(2 + lengthBytes + n);
  frame[0] = 0x80 | opcode;
  frame[1] = lengthBytes === 0 ? n : lengthBytes === 2 ? 126 : 127;
  if (lengthBytes === 2) frame.writeUInt16BE(n, 2);
  if (lengthBytes === 8) frame.writeBigUInt64BE(BigInt(n), 2);
  frame.set(payload, 2 + lengthBytes);
  return frame;
}

/**
 * The bytes a correct server sends back, when it sends each message as one frame: the frames of
 * all messages in order, laid out twice so that any position has at least one full cycle after it.
 */
class ExpectedStream {
  readonly bytes: Buffer;
  /** One cycle of messages, in bytes. */
  readonly cycle: number;
  /** Bytes per frame (every message of a run has the same size). */
  readonly frame: number;
  readonly header: number;

  constructor(messages: Messages) {
    const frames = messages.payloads.map((p) => serverFrame(messages.opcode, p));
    this.frame = frames[0].length;
    this.header = this.frame - messages.payloads[0].length;
    this.cycle = this.frame * frames.length;
    this.bytes = Buffer.concat([...frames, ...frames]);
  }

  /** Whether `chunk` is what comes at stream position `at`. */
  matches(chunk: Buffer, at: number): boolean {
    let offset = at % this.cycle;
    let i = 0;
    while (i < chunk.length) {
      const n = Math.min(chunk.length - i, this.bytes.length - offset);
      if (chunk.compare(this.bytes, offset, offset + n, i, i + n) !== 0) return false;
      i += n;
      offset = (offset + n) % this.cycle;
    }
    return true;
  }
}

/**
 * Checks what the server sends against what was sent. Fast path: while the server sends each
 * message as one frame, a chunk is compared in one go against the expected byte stream (headers
 * and payloads: one memcmp, however many messages it holds). Otherwise (a mismatch, which may be
 * a fragmented message or a ping), the connection switches for good to a frame parser that
 * checks each message's opcode, length and bytes, accepts fragmentation and skips pings, and
 * fails the run on anything else.
 */
class EchoParser {
  /** Messages completed and verified. */
  received = 0;
  private fast = !PARSE_ALWAYS;
  /** Fast path: bytes received so far. */
  private at = 0;
  private readonly stream: ExpectedStream;
  private readonly header = Buffer.alloc(14);
  private headerHave = 0;
  /** Payload bytes left in the current frame. */
  private frameLeft = 0;
  private frameOpcode = 0;
  private frameFin = false;
  /** Bytes of the current message checked so far (-1: between messages). */
  private messageAt = -1;
  private expected: Buffer;
  private readonly messages: Messages;

  constructor(messages: Messages, stream: ExpectedStream) {
    this.messages = messages;
    this.stream = stream;
    this.expected = messages.payloads[0];
  }

  /** Checks `chunk`; returns how many messages it completed. */
  feed(chunk: Buffer): number {
    if (this.fast) {
      const stream = this.stream;
      if (stream.matches(chunk, this.at)) {
        const before = this.received;
        this.at += chunk.length;
        this.received = Math.floor(this.at / stream.frame);
        return this.received - before;
      }
      this.leaveFastPath();
    }
    return this.parse(chunk);
  }

  /** Sets the frame parser's state to where the fast path stands. */
  private leaveFastPath(): void {
    this.fast = false;
    const { frame, header } = this.stream;
    const into = this.at % frame;
    this.expected = this.messages.payloads[this.received % this.messages.count];
    if (into === 0) return;
    const start = (this.at - into) % this.stream.cycle;
    if (into < header) {
      this.stream.bytes.copy(this.header, 0, start, start + into);
      this.headerHave = into;
    } else {
      this.frameOpcode = this.messages.opcode;
      this.frameFin = true;
      this.frameLeft = frame - into;
      this.messageAt = into - header;
    }
  }

  private parse(chunk: Buffer): number {
    const before = this.received;
    const n = chunk.length;
    let i = 0;
    while (i < n) {
      if (this.frameLeft > 0) {
        const take = Math.min(this.frameLeft, n - i);
        if (this.frameOpcode !== 9 && this.frameOpcode !== 10) {
          const at = this.messageAt;
          if (chunk.compare(this.expected, at, at + take, i, i + take) !== 0) {
            fail(`message ${this.received}: payload differs from what was sent`);
          }
          this.messageAt = at + take;
        }
        i += take;
        this.frameLeft -= take;
        if (this.frameLeft === 0) this.frameDone();
        continue;
      }
      // A frame header: 2 bytes, then 0, 2 or 8 of length (server frames carry no mask).
      let b0: number;
      let b1: number;
      let length: number;
      if (this.headerHave === 0 && n - i >= 2 && (chunk[i + 1] & 0x7f) < 126) {
        b0 = chunk[i];
        b1 = chunk[i + 1];
        length = b1 & 0x7f;
        i += 2;
      } else {
        this.header[this.headerHave++] = chunk[i++];
        if (this.headerHave < 2) continue;
        const len7 = this.header[1] & 0x7f;
        const need = 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0);
        while (this.headerHave < need && i < n) this.header[this.headerHave++] = chunk[i++];
        if (this.headerHave < need) continue;
        b0 = this.header[0];
        b1 = this.header[1];
        length = len7 === 126 ? this.header.readUInt16BE(2) : len7 === 127 ? Number(this.header.readBigUInt64BE(2)) : len7;
        this.headerHave = 0;
      }
      this.startFrame(b0, b1, length);
      if (this.frameLeft === 0) this.frameDone();
    }
    return this.received - before;
  }

  private startFrame(b0: number, b1: number, length: number): void {
    if (b1 & 0x80) fail("a masked frame from the server");
    if (b0 & 0x70) fail("RSV bits set (no extension was negotiated)");
    const opcode = b0 & 0x0f;
    this.frameFin = (b0 & 0x80) !== 0;
    this.frameOpcode = opcode;
    this.frameLeft = length;
    if (opcode === 9 || opcode === 10) return; // ping, pong: skipped
    if (opcode === 8) fail(`message ${this.received}: the server sent a close frame`);
    if (this.messageAt < 0) {
      if (opcode !== this.messages.opcode) fail(`message ${this.received}: opcode ${opcode}, expected ${this.messages.opcode}`);
      this.messageAt = 0;
    } else if (opcode !== 0) {
      fail(`message ${this.received}: opcode ${opcode} inside a fragmented message`);
    }
    if (this.messageAt + length > this.expected.length) {
      fail(`message ${this.received}: longer than the ${this.expected.length} bytes sent`);
    }
  }

  private frameDone(): void {
    if (this.frameOpcode === 9 || this.frameOpcode === 10 || !this.frameFin) return;
    if (this.messageAt !== this.expected.length) {
      fail(`message ${this.received}: ${this.messageAt} bytes, expected ${this.expected.length}`);
    }
    this.received++;
    this.messageAt = -1;
    this.expected = this.messages.payloads[this.received % this.messages.count];
  }
}

// ---- echo ---------------------------------------------------------------------------------------

let running = false;
let measuring = false;

/** The warm-up, then the measured window (`measuring` is set during it): how far `counter` moved in it, its length and the CPU time spent in it. */
async function measuredWindow(counter: () => number): Promise<{ count: number; seconds: number; cpu: number }> {
  await sleep(WARMUP_MS);
  emit({ phase: "measure" });
  const n0 = counter();
  const cpu0 = cpuSeconds();
  const t0 = performance.now();
  measuring = true;
  await sleep(TIME_MS);
  measuring = false;
  const t1 = performance.now();
  const cpu1 = cpuSeconds();
  const n1 = counter();
  emit({ phase: "end" });
  return { count: n1 - n0, seconds: (t1 - t0) / 1000, cpu: cpu1 - cpu0 };
}

let totalReceived = 0;
let drainingLeft = 0;
let onDrained: () => void = () => {};
const rtts: number[] = [];

class EchoConnection {
  sent = 0;
  private lastSend = 0;
  private readonly parser: EchoParser;
  private readonly socket: net.Socket;
  private readonly messages: Messages;

  constructor(messages: Messages, stream: ExpectedStream, opened: () => void) {
    this.messages = messages;
    this.parser = new EchoParser(messages, stream);
    const socket = (this.socket = openWebSocket(
      (rest) => {
        opened();
        if (rest.length !== 0) this.onData(rest);
      },
      (chunk) => this.onData(chunk),
    ));
    socket.on("close", () => {
      if (running || this.parser.received !== this.sent) fail("the server closed a connection during the run");
    });
  }

  start(): void {
    this.send(WINDOW);
  }

  destroy(): void {
    this.socket.destroy();
  }

  private send(n: number): void {
    if (LATENCY) this.lastSend = performance.now();
    this.messages.write(this.socket, this.sent, n);
    this.sent += n;
  }

  private onData(chunk: Buffer): void {
    const done = this.parser.feed(chunk);
    if (done === 0) return;
    totalReceived += done;
    if (LATENCY && measuring) rtts.push((performance.now() - this.lastSend) * 1000);
    if (this.parser.received > this.sent) fail("more messages echoed than sent");
    if (running) {
      this.send(WINDOW - (this.sent - this.parser.received));
    } else if (this.parser.received === this.sent && --drainingLeft === 0) {
      onDrained();
    }
  }

  get idle(): boolean {
    return this.parser.received === this.sent;
  }
}

function percentile(sorted: Float64Array, p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))];
}

async function runEcho(): Promise<void> {
  const messages = new Messages(SIZE, BINARY, WINDOW);
  if (WINDOW < 1 || WINDOW > messages.count) fail(`--window must be 1…${messages.count}`);
  let opened = 0;
  let allOpen: () => void = () => {};
  const ready = new Promise<void>((resolve) => (allOpen = resolve));
  const stream = new ExpectedStream(messages);
  const connections: EchoConnection[] = [];
  for (let c = 0; c < CONNS; c++) connections.push(new EchoConnection(messages, stream, () => ++opened === CONNS && allOpen()));
  await ready;

  running = true;
  for (const c of connections) c.start();
  const window = await measuredWindow(() => totalReceived);

  // Stop sending; every message in flight must still come back.
  running = false;
  drainingLeft = connections.filter((c) => !c.idle).length;
  if (drainingLeft > 0) {
    const drained = new Promise<void>((resolve) => (onDrained = resolve));
    const timeout = sleep(10_000).then(() => "timeout");
    if ((await Promise.race([drained, timeout])) === "timeout") fail("messages in flight never came back (10 s)");
  }
  const verified = connections.reduce((sum, c) => sum + c.sent, 0);
  if (verified !== totalReceived) fail(`sent ${verified} messages, got ${totalReceived} back`);

  const result: LoadResult = { count: window.count, bytes: window.count * SIZE, seconds: window.seconds, cpu: window.cpu, verified };
  if (LATENCY && rtts.length > 0) {
    const sorted = Float64Array.from(rtts).sort();
    result.latency = {
      p50: percentile(sorted, 50),
      p90: percentile(sorted, 90),
      p99: percentile(sorted, 99),
      max: sorted[sorted.length - 1],
      samples: sorted.length,
    };
  }
  for (const c of connections) c.destroy();
  emit(result);
}

// ---- handshake ----------------------------------------------------------------------------------

/** A masked close frame with code 1000. */
const CLOSE_FRAME = maskedFrame(0x8, Uint8Array.of(0x03, 0xe8));

let handshakes = 0;

/** One loop: connect, upgrade, close handshake, wait for the TCP close; again while running. */
function handshakeLoop(done: () => void): void {
  let frame: Buffer = Buffer.alloc(0);
  let closeSeen = false;
  const onFrameBytes = (chunk: Buffer): void => {
    frame = frame.length === 0 ? chunk : Buffer.concat([frame, chunk]);
    if (frame.length < 4) return;
    if (closeSeen) fail("bytes after the server's close frame");
    if (frame[0] !== 0x88 || frame[1] !== 2 || frame.readUInt16BE(2) !== 1000 || frame.length !== 4) {
      fail(`expected the server's close frame with code 1000, got ${frame.subarray(0, 16).toString("hex")}`);
    }
    closeSeen = true;
    socket.end(); // as ws's client does once both close frames are exchanged
  };
  const socket = openWebSocket((rest) => {
    socket.write(CLOSE_FRAME);
    onFrameBytes(rest);
  }, onFrameBytes);
  socket.on("close", () => {
    if (!closeSeen) fail("the connection closed without the server's close frame");
    handshakes++;
    if (running) handshakeLoop(done);
    else done();
  });
}

async function runHandshakes(): Promise<void> {
  running = true;
  let left = CONNS;
  let finished: () => void = () => {};
  const allDone = new Promise<void>((resolve) => (finished = resolve));
  for (let c = 0; c < CONNS; c++) handshakeLoop(() => --left === 0 && finished());
  const window = await measuredWindow(() => handshakes);
  running = false;
  const timeout = sleep(10_000).then(() => "timeout");
  if ((await Promise.race([allDone, timeout])) === "timeout") fail("handshake loops did not finish (10 s)");
  const result: LoadResult = { count: window.count, bytes: 0, seconds: window.seconds, cpu: window.cpu, verified: handshakes };
  emit(result);
}

// ---- idle ---------------------------------------------------------------------------------------

async function runIdle(): Promise<void> {
  const sockets: net.Socket[] = [];
  let closing = false;

  const openOne = () =>
    new Promise<void>((resolve) => {
      const socket = openWebSocket(
        () => {
          sockets.push(socket);
          resolve();
        },
        () => {}, // a keepalive ping, say: nothing to answer within a run
      );
      socket.on("close", () => {
        if (!closing) fail("the server closed an idle connection");
      });
    });

  const open = async (n: number) => {
    let next = 0;
    const worker = async () => {
      while (next < n) {
        next++;
        await openOne();
      }
    };
    await Promise.all(Array.from({ length: Math.min(CONCURRENCY, n) }, worker));
    emit({ open: sockets.length });
  };

  const closeAll = async () => {
    closing = true;
    const closed = sockets.map((s) => new Promise((resolve) => s.once("close", resolve)));
    for (const s of sockets) s.destroy();
    await Promise.all(closed);
    sockets.length = 0;
    closing = false;
    emit({ open: 0 });
  };

  let queue = Promise.resolve();
  createInterface({ input: process.stdin })
    .on("line", (line) => {
      const [command, count] = line.trim().split(/\s+/);
      queue = queue.then(() => (command === "open" ? open(Number(count)) : command === "close" ? closeAll() : undefined));
    })
    .on("close", () => void queue.then(() => process.exit(0)));
}

if (PORT === 0) fail("--port is required");
if (MODE === "echo") await runEcho();
else if (MODE === "handshake") await runHandshakes();
else if (MODE === "idle") await runIdle();
else fail(`--mode=${MODE}: echo, handshake or idle`);
if (MODE !== "idle") process.exit(0);
