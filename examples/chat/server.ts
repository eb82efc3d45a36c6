/**
 * anyws chat & draw: chat rooms and a shared drawing board, a web page and its WebSocket on
 * one port, the same code on every runtime.
 *
 *   npm start                  (Node: compiles, then runs dist/examples/chat/server.js)
 *   npx deno task serve        (Deno from node_modules/.bin, or `deno task serve`)
 *   npm run serve              (Bun from node_modules/.bin, or `bun run serve`)
 *
 * Options come from flags or environment variables (`--help` lists them); the server prints
 * the URL to open. The page is public/: plain HTML, CSS and JavaScript, using the browser's
 * own WebSocket.
 */
import process from "node:process";
import { readFile } from "node:fs/promises";
import { runtimeName } from "../../adapters/auto.ts";
import { Chat } from "./chat.ts";
import { ConfigError, parseConfig, usage } from "./config.ts";
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

function urlFor(host: string, port: number): string {
  const shown = host === "0.0.0.0" || host === "::" ? "localhost" : host;
  return `http://${shown.includes(":") ? `[${shown}]` : shown}:${port}/`;
}

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  const program = runtimeName === "node" ? "npm start --" : runtimeName === "deno" ? "npx deno task serve" : "npm run serve --";
  if (argv.includes("--help") || argv.includes("-h")) {
    console.log(usage(program));
    return 0;
  }
  let config;
  try {
    config = parseConfig(argv, process.env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    console.error(`${error.message}\n\n${usage(program)}`);
    return 2;
  }
  const { host, port, limits } = config;
  const chat = new Chat(limits, `anyws on ${runtimeName}`);
  let site;
  try {
    site = await serveSite({
      hostname: host,
      port,
      path: "/ws",
      request: await loadPages(),
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
    const code = (error as { code?: string }).code;
    const why = code === "EADDRINUSE" || /in use/i.test(String(error))
      ? `port ${port} is already in use (try --port 0 for any free port)`
      : String((error as Error).message ?? error);
    console.error(`cannot listen on ${host}:${port}: ${why}`);
    return 1;
  }
  chat.server = site.server;
  console.log(`anyws chat on ${runtimeName}: open ${urlFor(host, site.port)}`);
  if (host === "0.0.0.0" || host === "::") console.log(`(listening on every interface, port ${site.port})`);

  await new Promise<void>((resolve) => {
    let stopping = false;
    const stop = () => {
      if (stopping) return process.exit(130); // a second Ctrl-C: at once
      stopping = true;
      console.log("shutting down…");
      site.close({ code: 1001, reason: "server shutting down", timeout: 2000 }).then(resolve, resolve);
    };
    process.on("SIGINT", stop);
    process.on("SIGTERM", stop);
  });
  return 0;
}

process.exit(await main());
