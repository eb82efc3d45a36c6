/**
 * The chat demo (examples/chat/) as a program under test: started on the runtime running the
 * test (from source on Deno and Bun, compiled on Node), its URL read from what it prints, stopped
 * by pid; and a client that speaks the page's protocol (examples/chat/protocol.ts) with anyws's
 * own WebSocket.
 */
import { fileURLToPath } from "node:url";
import process from "node:process";
import { runtimeName, WebSocket } from "../../adapters/auto.ts";
import { Child } from "./child.ts";
import { until } from "./time.ts";

/** The demo's server as a program on this runtime, from source (Deno, Bun) or compiled (Node). */
export function chatProcess(flags: string[], env: Record<string, string> = {}): Child {
  const compiled = import.meta.url.endsWith(".js");
  const server = fileURLToPath(new URL(`../../examples/chat/server.${compiled ? "js" : "ts"}`, import.meta.url));
  // --unstable-net: reusePort, which --workers uses on Deno (as `deno task serve` passes it).
  const args = runtimeName === "deno" ? ["run", "-A", "--unstable-net", server, ...flags] : [server, ...flags];
  return new Child(process.execPath, args, { env: { DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1", ...env } });
}

export interface ChatServer {
  child: Child;
  url: string;
  port: number;
}

/** Starts the demo with `flags` and waits for the URL it prints. */
export async function startChat(flags: string[], env: Record<string, string> = {}, timeout = 30_000): Promise<ChatServer> {
  const child = chatProcess(["--host", "127.0.0.1", ...flags], env);
  let url = "";
  await until(() => {
    url = /open (http:\/\/\S+)/.exec(child.lines.join("\n"))?.[1] ?? "";
    return url !== "" || child.exit !== null;
  }, "the chat server to print its URL", timeout).catch((error) => {
    throw new Error(`${error.message}\n${child.describe()}`);
  });
  if (!url) throw new Error(`the chat server did not start\n${child.describe()}`);
  return { child, url, port: Number(new URL(url).port) };
}

type Json = any; // what the demo sends, checked by the tests

/** A client of the demo's socket: what it received, in order. */
export class ChatClient {
  readonly ws: WebSocket;
  readonly texts: Json[] = [];
  readonly binaries: Uint8Array[] = [];
  closed: { code: number; reason: string } | null = null;

  private constructor(ws: WebSocket) {
    this.ws = ws;
    ws.binaryType = "uint8array";
    ws.addEventListener("message", (e) => {
      const data = (e as MessageEvent).data;
      if (typeof data === "string") this.texts.push(JSON.parse(data));
      else this.binaries.push(new Uint8Array(data as Uint8Array));
    });
    ws.addEventListener("close", (e) => (this.closed = { code: (e as CloseEvent).code, reason: (e as CloseEvent).reason }));
  }

  static async connect(url: string): Promise<ChatClient> {
    const ws = new WebSocket(url.replace(/^http/, "ws") + "ws");
    const client = new ChatClient(ws);
    await new Promise<void>((resolve, reject) => {
      ws.addEventListener("open", () => resolve());
      ws.addEventListener("close", () => reject(new Error(`cannot connect to ${url}`)));
    });
    return client;
  }

  /** Joins and resolves with the welcome. */
  async join(nick: string, room: string, sid?: string): Promise<Json> {
    const before = this.texts.length;
    this.ws.send(JSON.stringify({ t: "join", nick, room, ...(sid ? { sid } : {}) }));
    let welcome: Json = null;
    await until(() => (welcome = this.texts.slice(before).find((m) => m.t === "welcome")) !== undefined || this.closed !== null, `${nick}'s welcome`);
    if (!welcome) throw new Error(`${nick} was closed: ${JSON.stringify(this.closed)}`);
    return welcome;
  }

  say(text: string): void {
    this.ws.send(JSON.stringify({ t: "say", text }));
  }

  /** Resolves with the first text message (from the `from`th on) that `match` accepts. */
  async text(match: (m: Json) => boolean, what: string, from = 0): Promise<Json> {
    let found: Json;
    await until(() => (found = this.texts.slice(from).find(match)) !== undefined, what);
    return found;
  }

  close(): void {
    this.ws.close();
  }
}

/** A stroke message of `points` points (protocol.ts: [1, color, width, n, x y …]). */
export function stroke(color: number, points: [number, number][]): Uint8Array {
  const bytes = new Uint8Array(4 + 4 * points.length);
  const view = new DataView(bytes.buffer);
  bytes.set([1, color, 8, points.length]);
  points.forEach(([x, y], i) => {
    view.setUint16(4 + 4 * i, x, true);
    view.setUint16(6 + 4 * i, y, true);
  });
  return bytes;
}
