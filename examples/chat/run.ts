/**
 * One chat server: the page's files, the WebSocket, the rooms, and — as one of several
 * processes — its link to the others. server.ts runs it alone or through the launcher
 * (workers.ts).
 */
import process from "node:process";
import { readFile } from "node:fs/promises";
import { runtimeName } from "../../adapters/auto.ts";
import { Chat } from "./chat.ts";
import { BrokerError, brokerFor } from "./broker.ts";
import type { Config } from "./config.ts";
import { type HttpRequest, type HttpResponse, serveSite } from "./http.ts";

/** Where the page's files are, whether this runs from source or compiled into dist/. */
const PUBLIC = new URL("./public/", import.meta.url.replace("/dist/examples/", "/examples/"));

const FILES: Record<string, { file: string; type: string }> = {
  "/": { file: "index.html", type: "text/html; charset=utf-8" },
  "/app.js": { file: "app.js", type: "text/javascript; charset=utf-8" },
  "/style.css": { file: "style.css", type: "text/css; charset=utf-8" },
  "/favicon.svg": { file: "favicon.svg", type: "image/svg+xml" },
};

const SECURITY_HEADERS = {
  "X-Content-Type-Options": "nosniff",
  "Referrer-Policy": "no-referrer",
  "Content-Security-Policy":
    "default-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'",
};

/** The page's files, read once at startup: the server never touches the file system after. */
async function loadPages(): Promise<(request: HttpRequest) => HttpResponse> {
  const pages = new Map<string, HttpResponse>();
  for (const [path, { file, type }] of Object.entries(FILES)) {
    const body = new Uint8Array(await readFile(new URL(file, PUBLIC)));
    pages.set(path, { status: 200, headers: { "Content-Type": type, "Cache-Control": "no-cache", ...SECURITY_HEADERS }, body });
  }
  return (request) => {
    const page = pages.get(request.path === "/index.html" ? "/" : request.path);
    return page ?? { status: 404, headers: SECURITY_HEADERS, body: "not found\n" };
  };
}

/** `GET /stats`: this server's rooms and, when linked to others, its backplane's counters. */
function withStats(pages: (request: HttpRequest) => HttpResponse, chat: Chat): (request: HttpRequest) => HttpResponse {
  return (request) => {
    if (request.path !== "/stats") return pages(request);
    return {
      status: 200,
      headers: { "Content-Type": "application/json", "Cache-Control": "no-store", ...SECURITY_HEADERS },
      body: JSON.stringify(chat.stats(), (_key, value) => (value instanceof Error ? value.message : value)) + "\n",
    };
  };
}

export function urlFor(host: string, port: number): string {
  const shown = host === "0.0.0.0" || host === "::" ? "localhost" : host;
  return `http://${shown.includes(":") ? `[${shown}]` : shown}:${port}/`;
}

/** Where this server runs: alone, or as one of the launcher's workers. */
export interface Role {
  /** 0 alone; 1…N as a worker. */
  worker: number;
  workers: number;
  /** Listen with SO_REUSEPORT beside the other workers (Deno, Bun). */
  reusePort: boolean;
  /** Told the port once listening (the launcher starts the next worker then). */
  listening(port: number): void;
  /** Resolves when the server should stop. */
  stop: Promise<void>;
}

/** Runs one server: the whole chat, or one worker of it. Resolves with the exit status. */
export async function runServer(config: Config, role: Role): Promise<number> {
  const { host, port, limits } = config;
  const prefix = role.worker === 0 ? "" : `[worker ${role.worker}] `;
  const log = (line: string) => console.log(prefix + line);
  const chat = new Chat(limits, role.worker === 0 ? `anyws on ${runtimeName}` : `anyws on ${runtimeName}, worker ${role.worker} of ${role.workers}`, log);
  try {
    const driver = await brokerFor(config, role);
    if (driver !== null) await chat.connect(driver);
  } catch (error) {
    const why = error instanceof BrokerError ? error.message : `cannot join the other processes: ${(error as Error)?.message ?? error}`;
    console.error(prefix + why);
    await chat.disconnect().catch(() => {});
    return 1;
  }
  let site;
  try {
    site = await serveSite({
      hostname: host,
      port,
      reusePort: role.reusePort,
      path: "/ws",
      request: withStats(await loadPages(), chat),
      maxMessageSize: limits.maxMessageSize,
      // A board snapshot is the largest message; a socket that lets more than a few pile up
      // unread is closed (1008) rather than buffered without end.
      backpressureLimit: 2 * limits.maxBoardBytes + 1024 * 1024,
      closeOnBackpressureLimit: true,
      keepaliveInterval: 20_000,
      // Chat JSON compresses well; the limit above applies to the inflated size, so a small
      // compressed message cannot expand past it.
      perMessageDeflate: limits.deflate,
    }, chat.handlers);
  } catch (error) {
    await chat.disconnect();
    const code = (error as { code?: string }).code;
    const why = code === "EADDRINUSE" || /in use/i.test(String(error))
      ? `port ${port} is already in use (try --port 0 for any free port)`
      : String((error as Error).message ?? error);
    console.error(`${prefix}cannot listen on ${host}:${port}: ${why}`);
    return 1;
  }
  chat.server = site.server;
  if (role.worker === 0) {
    console.log(`anyws chat on ${runtimeName}: open ${urlFor(host, site.port)}`);
    if (host === "0.0.0.0" || host === "::") console.log(`(listening on every interface, port ${site.port})`);
  } else {
    log(`listening on port ${site.port} (pid ${process.pid})`);
  }
  role.listening(site.port);
  await role.stop;
  if (role.worker === 0) console.log("shutting down…");
  await site.close({ code: 1001, reason: "server shutting down", timeout: 2000 }).catch(() => {});
  await chat.disconnect().catch(() => {});
  return 0;
}

/** Resolves on the first SIGINT or SIGTERM; a second one exits at once. */
export function signalled(): Promise<void> {
  return new Promise<void>((resolve) => {
    let stopping = false;
    const stop = () => {
      if (stopping) return process.exit(130); // a second Ctrl-C: at once
      stopping = true;
      resolve();
    };
    process.on("SIGINT", stop);
    process.on("SIGTERM", stop);
  });
}

