/**
 * The `anyws` command, driven as a process on the runtime running this test: `anyws echo` and
 * `anyws connect` against each other, and the errors a person meets (a refused handshake, a
 * bad URL, nothing listening, TLS). Every process is bounded in time and killed by its pid.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:net";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { runtimeName } from "../../adapters/auto.ts";
import { Child, finish } from "../support/child.ts";
import { until } from "../support/net.ts";
// Type-only: it makes tsc (and so `npm test`) compile the CLI into dist/ for Node.
import type {} from "../../cli/main.ts";

const compiled = import.meta.url.endsWith(".js"); // Node runs the tsc output in dist/
const MAIN = fileURLToPath(new URL(`../../cli/main.${compiled ? "js" : "ts"}`, import.meta.url));
const TLS = fileURLToPath(new URL("../fixtures/tls/", import.meta.url.replace("/dist/tests/", "/tests/")));

/** `anyws <args>` as a process on this runtime. */
function anyws(args: string[]): Child {
  const argv = runtimeName === "deno" ? ["run", "-A", MAIN, ...args] : [MAIN, ...args];
  return new Child(process.execPath, argv, { env: { NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" } });
}

async function waitForOutput(child: Child, pattern: RegExp, what: string, where: "stdout" | "stderr" = "stdout"): Promise<RegExpExecArray> {
  let match: RegExpExecArray | null = null;
  await until(() => {
    match = pattern.exec(where === "stdout" ? child.lines.join("\n") : child.stderr);
    return match !== null || child.exit !== null;
  }, what, 15_000).catch((error) => {
    throw new Error(`${error.message}\n${child.describe()}`);
  });
  if (!match) throw new Error(`${what}: the process exited\n${child.describe()}`);
  return match;
}

/** An echo server; resolves once it listens, with its URL. */
async function echoServer(args: string[] = []): Promise<{ child: Child; url: string; port: number }> {
  const child = anyws(["echo", "--port", "0", ...args]);
  const m = await waitForOutput(child, /listening on (wss?:\/\/[^\s]+?:(\d+)\/)/, "the echo server to listen");
  return { child, url: m[1], port: Number(m[2]) };
}

/** A port nothing listens on (bound, then released). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe(`the anyws command on ${runtimeName}`, () => {
  test("connect talks to echo: text, binary as hex, subprotocol, headers, close codes", async () => {
    const echo = await echoServer(["--verbose", "--protocol", "chat"]);
    try {
      const client = anyws(["connect", echo.url + "room?x=1", "-p", "other", "-p", "chat", "--header", "X-Test: hello there", "-w", "0"]);
      await waitForOutput(client, /connected to ws:\/\/127\.0\.0\.1:\d+\/room\?x=1 \(protocol: chat/, "connect to say it is connected", "stderr");
      const stdin = client.process.stdin!;
      stdin.write("hello, wörld ✓\n");
      await waitForOutput(client, /^< hello, wörld ✓$/m, "the echo of a text line");
      stdin.write("/binary 00 ff 10 7f\n");
      await waitForOutput(client, /^< binary, 4 bytes: 00 ff 10 7f$/m, "the echo of a binary message, as hex");
      stdin.write("//starts with a slash\n");
      await waitForOutput(client, /^< \/starts with a slash$/m, "a // line sent as /...");
      stdin.write("/nonsense\n");
      await waitForOutput(client, /unknown command \/nonsense/, "a note about an unknown command", "stderr");
      stdin.write("/close 4000 done for today\n");
      const result = await finish(client);
      assert.equal(result.code, 0, client.describe());
      assert.match(result.err, /closed: 4000 \(application code\)/);

      const log = echo.child.lines.join("\n");
      assert.match(log, /GET \/room\?x=1/);
      assert.match(log, /X-Test: hello there/, "the header reached the server");
      assert.match(log, /Sec-WebSocket-Protocol: other, chat/);
      assert.match(log, /#1 open 127\.0\.0\.1:\d+ \/room\?x=1 protocol=chat/);
      assert.match(log, /#1 binary 00 ff 10 7f/);
      await until(() => /#1 closed 4000 \(application code\) "done for today"/.test(echo.child.lines.join("\n")), "the echo server to log the close");
    } finally {
      process.kill(echo.child.pid!, "SIGTERM"); // by pid: Deno reports a signal for ChildProcess#kill even when the child exits by itself
      const stopped = await finish(echo.child);
      assert.equal(stopped.code, 0, `the echo server stops cleanly on SIGTERM\n${echo.child.describe()}`);
    }
  });

  test("connect -x sends and closes; piped input is sent, then the replies are waited for", async () => {
    const echo = await echoServer();
    try {
      const x = await finish(anyws(["connect", echo.url, "-x", "one", "-x", "two", "-w", "0.5"]));
      assert.equal(x.code, 0, x.err);
      assert.deepEqual(x.out.split("\n").filter(Boolean), ["< one", "< two"]);
      assert.match(x.err, /closed: 1000 \(normal closure\)/);

      const piped = anyws(["connect", echo.url, "--wait", "1"]);
      piped.process.stdin!.end("first line\nsecond line\n");
      const p = await finish(piped);
      assert.equal(p.code, 0, p.err);
      assert.deepEqual(p.out.split("\n").filter(Boolean), ["< first line", "< second line"]);

      // Ctrl-C (SIGINT) closes normally.
      const waiting = anyws(["connect", echo.url]);
      await waitForOutput(waiting, /connected to/, "connect", "stderr");
      process.kill(waiting.pid!, "SIGINT");
      const interrupted = await finish(waiting);
      assert.equal(interrupted.code, 0, interrupted.err);
      assert.match(interrupted.err, /closed: 1000/);
    } finally {
      await echo.child.kill();
    }
  });

  test("a close with an error code from the server: shown, and exit status 1", async () => {
    const echo = await echoServer(["--max-message", "16"]);
    try {
      const r = await finish(anyws(["connect", echo.url, "-x", "this message is too long for the server", "-w", "3"]));
      assert.equal(r.code, 1, r.err);
      assert.match(r.err, /disconnected: 1009 \(message too big\)/);
    } finally {
      await echo.child.kill();
    }
  });

  test("--trace prints each frame and state change on stderr, in order, for connect and echo", async () => {
    const echo = await echoServer(["--max-message", "16", "--trace"]);
    try {
      const long = "this message is too long for the server";
      const r = await finish(anyws(["connect", echo.url, "--trace", "-x", "hi", "-x", long, "-w", "3"]));
      assert.equal(r.code, 1, r.err);
      assert.deepEqual(r.err.split("\n").filter((line) => line.startsWith("trace ")), [
        "trace state OPEN",
        'trace > text fin len=2 "hi"',
        `trace > text fin len=39 "${long.slice(0, 32)}"…`,
        'trace < text fin len=2 "hi"',
        'trace < close fin len=23 1009 MESSAGE_TOO_BIG "message over 16 bytes"',
        "trace > close fin len=2 1009 MESSAGE_TOO_BIG",
        "trace state CLOSED",
      ]);
      assert.deepEqual(r.out.split("\n").filter(Boolean), ["< hi"], "the trace goes to stderr only");
      await until(() => /trace #1 state CLOSED/.test(echo.child.stderr), "the echo server to trace the end", 10_000);
      const server = echo.child.stderr.split("\n").filter((line) => line.startsWith("trace "));
      // The long message is refused on its header (RFC 6455 §7.4.1: 1009): its record has no preview.
      for (const line of [
        "trace #1 state OPEN",
        'trace #1 < text fin len=2 "hi"',
        'trace #1 > text fin len=2 "hi"',
        'trace #1 > close fin len=23 1009 MESSAGE_TOO_BIG "message over 16 bytes"',
        "trace #1 state CLOSING",
        // RFC 6455 §7.1.7: having failed the connection, the server closes TCP without waiting for the answer.
        "trace #1 state CLOSED",
      ]) {
        assert.ok(server.includes(line), `${line}\n${echo.child.describe()}`);
      }
      const before = (first: string, second: string) => {
        const [i, j] = [server.indexOf(first), server.indexOf(second)];
        assert.ok(i >= 0 && j > i, `${first} before ${second}\n${echo.child.describe()}`);
      };
      before("trace #1 < text fin len=39 …", 'trace #1 > close fin len=23 1009 MESSAGE_TOO_BIG "message over 16 bytes"');
      before('trace #1 < text fin len=2 "hi"', 'trace #1 > text fin len=2 "hi"');
      before('trace #1 > text fin len=2 "hi"', "trace #1 state CLOSING");
    } finally {
      await echo.child.kill();
    }
  });

  test("a refused handshake shows the HTTP status", async () => {
    const echo = await echoServer(["--path", "/echo"]);
    try {
      const r = await finish(anyws(["connect", echo.url.replace(/\/echo$/, "") + "elsewhere", "-x", "hi"]));
      assert.equal(r.code, 1);
      assert.match(r.err, /error: the server refused the WebSocket handshake: HTTP 404 Not Found/);
      assert.equal(r.out, "");
    } finally {
      await echo.child.kill();
    }
  });

  test("nothing listening, an unknown host: clear errors, exit status 1", async () => {
    const port = await freePort();
    const refused = await finish(anyws(["connect", `ws://127.0.0.1:${port}/`, "-x", "hi"]));
    assert.equal(refused.code, 1);
    assert.match(refused.err, new RegExp(`error: cannot connect to 127\\.0\\.0\\.1:${port}: connection refused`));
    const unknown = await finish(anyws(["connect", "ws://no-such-host.invalid/", "-x", "hi", "-t", "5000"]));
    assert.equal(unknown.code, 1);
    assert.match(unknown.err, /error: cannot connect to no-such-host\.invalid: /);
  });

  test("bad URLs and bad usage: exit status 2 and a reason", async () => {
    const cases: [string[], RegExp][] = [
      [["connect", "not a url"], /invalid URL: "not a url"/],
      [["connect", "ftp://example.org/"], /the scheme must be ws:\/\/, wss:\/\/, http:\/\/ or https:\/\//],
      [["connect", "ws://example.org/#frag"], /no #fragment/],
      [["connect"], /connect needs a URL/],
      [["connect", "ws://localhost/", "--header", "no colon"], /--header must look like "Name: value"/],
      [["connect", "ws://localhost/", "--bogus"], /unknown option: --bogus/],
      [["connect", "ws://localhost/", "-p", "bad protocol"], /subprotocol/i],
      [["echo", "--port", "70000"], /--port must be a number from 0 to 65535/],
      [["frobnicate"], /unknown command: frobnicate/],
      [[], /usage:/],
    ];
    for (const [args, pattern] of cases) {
      const r = await finish(anyws(args));
      assert.equal(r.code, 2, `anyws ${args.join(" ")}: ${r.err}`);
      assert.match(r.err, pattern, `anyws ${args.join(" ")}`);
    }
    const help = await finish(anyws(["--help"]));
    assert.equal(help.code, 0);
    assert.match(help.out, /anyws connect <url>/);
    const version = await finish(anyws(["--version"]));
    assert.match(version.out, new RegExp(`^anyws \\d+\\.\\d+\\.\\d+ \\(${runtimeName}\\)$`));
  });

  test("echo on a port in use: a clear error, exit status 1", async () => {
    const echo = await echoServer();
    try {
      const r = await finish(anyws(["echo", "--port", String(echo.port)]));
      assert.equal(r.code, 1);
      assert.match(r.err, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${echo.port}: port ${echo.port} is already in use`));
    } finally {
      await echo.child.kill();
    }
  });

  test("wss: verified with --ca, refused without, --insecure where the runtime allows it", async () => {
    const echo = await echoServer(["--cert", `${TLS}cert.pem`, "--key", `${TLS}key.pem`]);
    const url = echo.url.replace("127.0.0.1", "localhost");
    try {
      assert.match(url, /^wss:\/\//);
      const trusted = await finish(anyws(["connect", url, "--ca", `${TLS}ca.pem`, "-x", "secret", "-w", "0.5"]));
      assert.equal(trusted.code, 0, trusted.err);
      assert.equal(trusted.out, "< secret");

      const untrusted = await finish(anyws(["connect", url, "-x", "secret"]));
      assert.equal(untrusted.code, 1);
      assert.match(untrusted.err, /error: TLS handshake with localhost:\d+ failed: .+\(--ca <file> trusts its issuer, --insecure skips the check\)/);

      const insecure = await finish(anyws(["connect", url, "--insecure", "-x", "secret", "-w", "0.5"]));
      if (runtimeName === "deno") {
        // Deno cannot skip verification per connection: the CLI says so.
        assert.equal(insecure.code, 1);
        assert.match(insecure.err, /--insecure on Deno skips only the hostname check/);
      } else {
        assert.equal(insecure.code, 0, insecure.err);
        assert.equal(insecure.out, "< secret");
      }
    } finally {
      await echo.child.kill();
    }
  });
});
