#!/usr/bin/env node
/**
 * `anyws`: a WebSocket client and an echo server for the command line, on Node, Deno and Bun.
 *
 *   npx anyws connect ws://localhost:8080/          (after `npm install`; runs dist/cli/main.js)
 *   deno run -A cli/main.ts echo --port 8080
 *   bun cli/main.ts connect wss://example.org/ --header "Authorization: Bearer x"
 *
 * Exit status: 0 after a normal closure, 1 when the connection failed or ended badly, 2 for a
 * usage error (unknown option, bad URL). `anyws help` says the rest.
 */
import process from "node:process";
import { readFileSync } from "node:fs";
import { createInterface, type Interface } from "node:readline";
import { clearLine, cursorTo } from "node:readline";
import { formatTraceRecord, runtimeName, serve, type TraceHook, WebSocket, type WebSocketOptions } from "../adapters/auto.ts";

const VERSION = readVersion();

const HELP = `anyws — WebSocket from the command line (${runtimeName})

usage:
  anyws connect <url> [options]    connect to a server: each line you type is sent as a
                                   text message; what arrives is printed (binary as hex)
  anyws echo [options]             run an echo server, for testing clients
  anyws help | --help              this help
  anyws --version

connect options:
  -H, --header "Name: value"   send this request header (repeatable)
  -p, --protocol <name>        offer this subprotocol (repeatable, in order of preference)
  -o, --origin <origin>        send an Origin header
  -k, --insecure               do not verify the server's TLS certificate (Node and Bun;
                               Deno still verifies it: run deno with
                               --unsafely-ignore-certificate-errors, or use --ca)
      --ca <file>              also trust this CA certificate (PEM)
  -x, --execute <text>         send this message once connected, instead of reading the
                               input (repeatable)
  -w, --wait <seconds>         when the input ends, wait this long for replies before
                               closing (default 1 if the input is not a terminal, else 0)
  -t, --timeout <ms>           time to connect and finish the handshake (default 10000)
      --max-message <bytes>    largest message accepted (default 64 MiB)
      --trace                  print every frame sent and received, and every state
                               change, to stderr ("<" in, ">" out)

  Lines starting with / are commands:  /binary <hex>   /close [code [reason]]   /help
  Start a line with // to send a text that starts with /.

echo options:
  -P, --port <n>               port (default 8080; 0 picks a free one)
      --host <address>         address to listen on (default 127.0.0.1)
      --path <path>            accept WebSockets on this path only (404 elsewhere)
  -p, --protocol <name>        choose this subprotocol when offered (repeatable); without it
                               the client's first choice is taken
      --cert <file> --key <file>   serve wss:// with this certificate and key (PEM)
      --max-message <bytes>    largest message accepted (default 64 MiB; 1009 beyond)
  -v, --verbose                print request headers and every message
      --trace                  print every frame and state change of every connection to
                               stderr, numbered by connection ("<" in, ">" out)

exit status: 0 normal closure (1000, 1001, none, or a close you asked for), 1 connection
failed or closed abnormally or with an error code, 2 usage error.`;

// ---- arguments ---------------------------------------------------------------------------------

class UsageError extends Error {}

interface OptionSpec {
  name: string;
  short?: string;
  value?: boolean;
}

const CONNECT_OPTIONS: OptionSpec[] = [
  { name: "header", short: "H", value: true },
  { name: "protocol", short: "p", value: true },
  { name: "origin", short: "o", value: true },
  { name: "insecure", short: "k" },
  { name: "ca", value: true },
  { name: "execute", short: "x", value: true },
  { name: "wait", short: "w", value: true },
  { name: "timeout", short: "t", value: true },
  { name: "max-message", value: true },
  { name: "trace" },
];

const ECHO_OPTIONS: OptionSpec[] = [
  { name: "port", short: "P", value: true },
  { name: "host", value: true },
  { name: "path", value: true },
  { name: "protocol", short: "p", value: true },
  { name: "cert", value: true },
  { name: "key", value: true },
  { name: "max-message", value: true },
  { name: "verbose", short: "v" },
  { name: "trace" },
];

interface Parsed {
  positionals: string[];
  options: Map<string, string[]>;
}

function parseArgs(argv: readonly string[], specs: OptionSpec[]): Parsed {
  const positionals: string[] = [];
  const options = new Map<string, string[]>();
  const add = (spec: OptionSpec, value: string) => options.set(spec.name, [...(options.get(spec.name) ?? []), value]);
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--") {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    let spec: OptionSpec | undefined;
    let inline: string | undefined;
    const long = /^--([^=]+)(?:=(.*))?$/s.exec(arg);
    if (long) {
      spec = specs.find((s) => s.name === long[1]);
      inline = long[2];
    } else if (/^-[A-Za-z]/.test(arg)) {
      spec = specs.find((s) => s.short === arg[1]);
      if (arg.length > 2) inline = arg.slice(2);
    } else {
      positionals.push(arg);
      continue;
    }
    if (!spec) throw new UsageError(`unknown option: ${arg}`);
    if (!spec.value) {
      if (inline !== undefined) throw new UsageError(`--${spec.name} takes no value`);
      add(spec, "");
      continue;
    }
    const value = inline ?? argv[++i];
    if (value === undefined) throw new UsageError(`--${spec.name} needs a value`);
    add(spec, value);
  }
  return { positionals, options };
}

const last = (p: Parsed, name: string) => p.options.get(name)?.at(-1);
const all = (p: Parsed, name: string) => p.options.get(name) ?? [];

function numberOption(p: Parsed, name: string, min: number, max: number): number | undefined {
  const raw = last(p, name);
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (raw.trim() === "" || !Number.isFinite(n) || n < min || n > max) {
    throw new UsageError(`--${name} must be a number from ${min} to ${max}, not ${JSON.stringify(raw)}`);
  }
  return n;
}

function readFileOption(p: Parsed, name: string): string | undefined {
  const file = last(p, name);
  if (file === undefined) return undefined;
  try {
    return readFileSync(file, "utf8");
  } catch (error) {
    throw new UsageError(`--${name}: cannot read ${file}: ${(error as Error).message}`);
  }
}

// ---- output ------------------------------------------------------------------------------------

const useColor = (stream: { isTTY?: boolean }) => Boolean(stream.isTTY) && !process.env.NO_COLOR;
const paint = (code: string, text: string, stream: { isTTY?: boolean } = process.stderr) =>
  useColor(stream) ? `\x1b[${code}m${text}\x1b[0m` : text;

const CLOSE_CODES: Record<number, string> = {
  1000: "normal closure",
  1001: "going away",
  1002: "protocol error",
  1003: "unsupported data",
  1005: "no status code",
  1006: "abnormal closure, no close frame",
  1007: "invalid payload data",
  1008: "policy violation",
  1009: "message too big",
  1010: "mandatory extension missing",
  1011: "internal error",
  1012: "service restart",
  1013: "try again later",
  1014: "bad gateway",
  1015: "TLS handshake failure",
};

/** A trace hook that prints each record on stderr; `numbered`: prefixed with the connection's number. */
function traceToStderr(numbered: boolean): TraceHook {
  const ids = new WeakMap<object, number>();
  let next = 1;
  return (record, connection) => {
    let id = ids.get(connection);
    if (id === undefined) ids.set(connection, (id = next++));
    process.stderr.write(paint("2", `trace ${numbered ? `#${id} ` : ""}${formatTraceRecord(record)}`) + "\n");
  };
}

function describeClose(code: number, reason: string): string {
  const name = CLOSE_CODES[code] ?? (code >= 4000 ? "application code" : code >= 3000 ? "registered code" : "");
  return `${code}${name ? ` (${name})` : ""}${reason ? ` ${JSON.stringify(reason)}` : ""}`;
}

const HEX_SHOWN = 1024;

function hex(bytes: Uint8Array): string {
  const shown = bytes.subarray(0, HEX_SHOWN);
  let out = Array.from(shown, (b) => b.toString(16).padStart(2, "0")).join(" ");
  if (bytes.length > HEX_SHOWN) out += ` … (${bytes.length - HEX_SHOWN} more bytes)`;
  return out;
}

function parseHex(text: string): Uint8Array | null {
  const digits = text.replace(/^0x/i, "").replace(/[\s:,]/g, "");
  if (digits.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(digits)) return null;
  const out = new Uint8Array(digits.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(digits.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** Why a connection could not be made, in one line without the layers' repetitions. */
function explain(error: Error | null, url: URL, insecure: boolean): string {
  if (error === null) return "the connection closed before it was established";
  const message = error.message;
  if (/WebSocket handshake failed/.test(message)) {
    const status = /\(HTTP (\d{3})\)/.exec(message);
    if (status) {
      const text = /status \d{3} ([^()]*?)\s*\(HTTP/.exec(message)?.[1] ?? "";
      return `the server refused the WebSocket handshake: HTTP ${status[1]}${text ? ` ${text}` : ""}`;
    }
    return message;
  }
  let inner: Error = error;
  let code = (error as { code?: string }).code ?? "";
  while (inner.cause instanceof Error) {
    inner = inner.cause;
    code ||= (inner as { code?: string }).code ?? "";
  }
  const where = url.host;
  if (code === "ECONNREFUSED" || /refused/i.test(inner.message)) return `cannot connect to ${where}: connection refused (is the server running?)`;
  if (code === "ENOTFOUND" || code === "EAI_AGAIN" || /lookup|getaddrinfo|Name or service not known/i.test(inner.message)) {
    return `cannot connect to ${where}: unknown host ${url.hostname}`;
  }
  if (/certificate|TLS|SSL|handshake/i.test(message)) {
    const hint = insecure && runtimeName === "deno"
      ? "pass its issuer with --ca <file>"
      : insecure ? "" : "--ca <file> trusts its issuer, --insecure skips the check";
    return `TLS handshake with ${where} failed: ${inner.message}${hint ? ` (${hint})` : ""}`;
  }
  if (/timed out/i.test(message)) return `cannot connect to ${where}: timed out`;
  return message.replace(/^(?:(?:anyws: )?cannot connect to [^ ]+: )*(?:anyws: )?/, `cannot connect to ${where}: `);
}

// ---- connect -----------------------------------------------------------------------------------

async function connect(argv: readonly string[]): Promise<number> {
  const p = parseArgs(argv, CONNECT_OPTIONS);
  if (p.positionals.length !== 1) throw new UsageError(p.positionals.length ? "connect takes one URL" : "connect needs a URL, such as ws://localhost:8080/");
  const url = parseWsUrl(p.positionals[0]);
  const headers: [string, string][] = all(p, "header").map((h) => {
    const colon = h.indexOf(":");
    if (colon <= 0) throw new UsageError(`--header must look like "Name: value", not ${JSON.stringify(h)}`);
    return [h.slice(0, colon).trim(), h.slice(colon + 1).trim()];
  });
  const insecure = p.options.has("insecure");
  const ca = readFileOption(p, "ca");
  const timeout = numberOption(p, "timeout", 1, 3_600_000);
  const maxMessageSize = numberOption(p, "max-message", 1, 2 ** 32);
  const execute = all(p, "execute");
  const interactive = execute.length === 0 && Boolean(process.stdin.isTTY);
  const wait = (numberOption(p, "wait", 0, 86_400) ?? (interactive ? 0 : 1)) * 1000;
  const options: WebSocketOptions = { headers, connectTimeout: timeout, maxMessageSize };
  if (p.options.has("trace")) options.trace = traceToStderr(false);
  const origin = last(p, "origin");
  if (origin !== undefined) options.origin = origin;
  if (url.protocol === "wss:") {
    options.tls = { rejectUnauthorized: !insecure, ...(ca !== undefined ? { ca } : {}) };
  }

  let ws: WebSocket;
  try {
    ws = new WebSocket(url, all(p, "protocol"), options);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  ws.binaryType = "uint8array";

  let opened = false;
  let weClosed = false;
  let failure: Error | null = null;
  let rl: Interface | null = null;
  const queued: string[] = [];
  let inputEnded = false;
  let closeTimer: ReturnType<typeof setTimeout> | undefined;

  /** Prints above the prompt when there is one. */
  const print = (line: string, stream: { write(text: string): unknown } = process.stdout) => {
    if (rl && interactive) {
      clearLine(process.stdout, 0);
      cursorTo(process.stdout, 0);
      stream.write(line + "\n");
      rl.prompt(true);
    } else {
      stream.write(line + "\n");
    }
  };
  function note(line: string) {
    print(paint("2", line), process.stderr);
  }

  if (insecure && runtimeName === "deno" && url.protocol === "wss:") {
    note(
      "note: --insecure on Deno skips only the hostname check; to skip certificate verification, " +
        "run deno with --unsafely-ignore-certificate-errors, or pass the issuer with --ca",
    );
  }

  const closeSoon = () => {
    if (weClosed || ws.readyState >= 2) return;
    clearTimeout(closeTimer);
    closeTimer = setTimeout(() => {
      weClosed = true;
      ws.close(1000);
    }, wait);
  };

  const handle = (line: string) => {
    if (!opened) {
      queued.push(line);
      return;
    }
    if (ws.readyState !== 1) return;
    if (line.startsWith("//")) return ws.send(line.slice(1));
    if (!line.startsWith("/")) return ws.send(line);
    const [command, ...rest] = line.slice(1).split(" ");
    const args = rest.join(" ");
    if (command === "binary") {
      const bytes = parseHex(args);
      if (bytes === null) return note("usage: /binary <hex bytes>, e.g. /binary de ad be ef");
      return ws.send(bytes);
    }
    if (command === "close") {
      const m = /^\s*(\d+)?\s*(.*)$/s.exec(args)!;
      try {
        weClosed = true;
        ws.close(m[1] ? Number(m[1]) : 1000, m[2] || undefined);
      } catch (error) {
        weClosed = false;
        note(`cannot close that way: ${(error as Error).message}`);
      }
      return;
    }
    if (command === "help") return note("/binary <hex>   /close [code [reason]]   /help   (// sends a line starting with /)");
    note(`unknown command /${command}: /help lists them; start with // to send a line starting with /`);
  };

  ws.addEventListener("open", () => {
    opened = true;
    const extras = [ws.protocol && `protocol: ${ws.protocol}`, ws.extensions && `extensions: ${ws.extensions}`].filter(Boolean);
    note(`connected to ${ws.url}${extras.length ? ` (${extras.join(", ")})` : ""}`);
    if (interactive) note("type a message and press Enter; /help for commands; Ctrl-D or Ctrl-C to quit");
    for (const text of execute) ws.send(text);
    for (const line of queued.splice(0)) handle(line);
    if (execute.length !== 0 || inputEnded) closeSoon();
  });
  ws.addEventListener("message", (event) => {
    const data = (event as MessageEvent).data as string | Uint8Array;
    if (typeof data === "string") print(`${paint("36", "<", process.stdout)} ${data}`);
    else print(`${paint("35", "<", process.stdout)} ${paint("2", `binary, ${data.length} bytes:`, process.stdout)} ${hex(data)}`);
  });
  ws.addEventListener("error", (event) => {
    failure ??= (event as ErrorEvent).error ?? new Error((event as ErrorEvent).message);
  });
  const closed = new Promise<number>((resolve) => {
    ws.addEventListener("close", (event) => {
      const { code, reason, wasClean } = event as CloseEvent;
      clearTimeout(closeTimer);
      if (rl && interactive) {
        clearLine(process.stdout, 0); // the prompt
        cursorTo(process.stdout, 0);
      }
      rl?.close();
      if (!opened) {
        print(paint("31", `error: ${explain(failure, url, insecure)}`), process.stderr);
        return resolve(1);
      }
      const normal = wasClean && (weClosed || code === 1000 || code === 1001 || code === 1005);
      const line = `${weClosed ? "closed" : "disconnected"}: ${describeClose(code, reason)}`;
      print(normal ? paint("2", line) : paint("31", line), process.stderr);
      if (!wasClean && failure) print(paint("31", `error: ${failure.message}`), process.stderr);
      resolve(normal ? 0 : 1);
    });
  });

  if (execute.length === 0) {
    rl = createInterface({ input: process.stdin, output: process.stdout, terminal: interactive, prompt: paint("32", "> ", process.stdout) });
    rl.on("line", handle);
    rl.on("close", () => {
      if (interactive) {
        clearLine(process.stdout, 0); // the prompt
        cursorTo(process.stdout, 0);
      }
      rl = null;
      inputEnded = true;
      if (opened) closeSoon();
    });
    rl.on("SIGINT", () => sigint());
  }
  let interrupted = false;
  const sigint = () => {
    if (interrupted || ws.readyState >= 2) process.exit(130); // twice: at once
    interrupted = true;
    weClosed = true;
    ws.close(1000);
  };
  process.on("SIGINT", sigint);
  process.on("SIGTERM", sigint);

  return closed;
}

function parseWsUrl(text: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(`invalid URL: ${JSON.stringify(text)} (expected something like ws://localhost:8080/path)`);
  }
  if (url.protocol === "http:") url.protocol = "ws:";
  else if (url.protocol === "https:") url.protocol = "wss:";
  if (url.protocol !== "ws:" && url.protocol !== "wss:") {
    throw new UsageError(`invalid URL: ${JSON.stringify(text)}: the scheme must be ws://, wss://, http:// or https://`);
  }
  if (url.hash !== "") throw new UsageError(`invalid URL: ${JSON.stringify(text)}: a WebSocket URL has no #fragment`);
  return url;
}

// ---- echo --------------------------------------------------------------------------------------

async function echo(argv: readonly string[]): Promise<number> {
  const p = parseArgs(argv, ECHO_OPTIONS);
  if (p.positionals.length !== 0) throw new UsageError(`unexpected argument: ${p.positionals[0]}`);
  const port = numberOption(p, "port", 0, 65535) ?? 8080;
  if (!Number.isInteger(port)) throw new UsageError("--port must be a whole number");
  const hostname = last(p, "host") ?? "127.0.0.1";
  const path = last(p, "path");
  if (path !== undefined && !path.startsWith("/")) throw new UsageError("--path must start with /");
  const protocols = all(p, "protocol");
  const cert = readFileOption(p, "cert");
  const key = readFileOption(p, "key");
  if ((cert === undefined) !== (key === undefined)) throw new UsageError("--cert and --key go together");
  const verbose = p.options.has("verbose");
  const maxMessageSize = numberOption(p, "max-message", 1, 2 ** 32);
  const log = (line: string) => process.stdout.write(`${new Date().toISOString().slice(11, 23)} ${line}\n`);
  let next = 1;
  const ids = new WeakMap<object, number>();

  let server;
  try {
    server = await serve({
      port,
      hostname,
      path,
      maxMessageSize,
      trace: p.options.has("trace") ? traceToStderr(true) : undefined,
      tls: cert !== undefined && key !== undefined ? { cert, key } : undefined,
    }, {
      upgrade(request) {
        if (verbose) {
          log(`request from ${request.remoteAddress}:${request.remotePort}: ${request.method} ${request.target}`);
          for (const [name, value] of request.headers.entries()) log(`  ${name}: ${value}`);
        }
        if (protocols.length !== 0) {
          // Our preference among what the client offered; none in common: no subprotocol.
          return { protocol: protocols.find((name) => request.protocols.includes(name)) ?? "" };
        }
      },
      open(ws) {
        ids.set(ws, next++);
        const r = ws.request;
        const extras = [ws.protocol && `protocol=${ws.protocol}`, r.origin && `origin=${r.origin}`].filter(Boolean).join(" ");
        log(`#${ids.get(ws)} open ${r.remoteAddress}:${r.remotePort} ${r.target}${extras ? ` ${extras}` : ""}`);
      },
      message(ws, data, isBinary) {
        if (verbose) {
          log(`#${ids.get(ws)} ${isBinary ? `binary ${hex(data as Uint8Array)}` : `text ${JSON.stringify(data)}`}`);
        }
        ws.send(isBinary ? (data as Uint8Array).slice() : data);
      },
      close(ws, code, reason) {
        log(`#${ids.get(ws)} closed ${describeClose(code, reason)}`);
      },
      error(ws, error) {
        log(`#${ids.get(ws)} error: ${error.message}`);
      },
    });
  } catch (error) {
    const code = (error as { code?: string }).code;
    const why = code === "EADDRINUSE" || /in use/i.test((error as Error).message)
      ? `port ${port} is already in use`
      : (error as Error).message;
    process.stderr.write(`error: cannot listen on ${hostname}:${port}: ${why}\n`);
    return 1;
  }
  const scheme = cert !== undefined ? "wss" : "ws";
  const host = server.hostname.includes(":") ? `[${server.hostname}]` : server.hostname;
  process.stdout.write(`anyws echo server (${runtimeName}) listening on ${scheme}://${host}:${server.port}${path ?? "/"}  (Ctrl-C to stop)\n`);
  const s = server;
  await new Promise<void>((resolve) => {
    const stop = () => {
      process.stdout.write("stopping…\n");
      s.close({ code: 1001, reason: "echo server stopping", timeout: 2000 }).then(resolve, resolve);
    };
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
  });
  return 0;
}

// ---- main --------------------------------------------------------------------------------------

function readVersion(): string {
  for (const relative of ["../package.json", "../../package.json"]) {
    try {
      return (JSON.parse(readFileSync(new URL(relative, import.meta.url), "utf8")) as { version: string }).version;
    } catch {
      // not there: from source it is one level up, compiled (dist/cli/) two
    }
  }
  return "unknown";
}

async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case "connect":
      case "c":
        return await connect(rest);
      case "echo":
        return await echo(rest);
      case "help":
      case "--help":
      case "-h":
        process.stdout.write(HELP + "\n");
        return 0;
      case "--version":
      case "-V":
      case "version":
        process.stdout.write(`anyws ${VERSION} (${runtimeName})\n`);
        return 0;
      case undefined:
        process.stderr.write(`${HELP}\n`);
        return 2;
      default:
        throw new UsageError(`unknown command: ${command}`);
    }
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`anyws: ${error.message}\n(anyws help for usage)\n`);
    return 2;
  }
}

process.exit(await main(process.argv.slice(2)));
