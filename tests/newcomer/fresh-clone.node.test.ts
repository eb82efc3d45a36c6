/**
 * The newcomer test: the README, followed literally, in a fresh clone on a machine with only
 * Node on the PATH — what `npm test` alone never saw, since it runs in a checkout that has been
 * built before.
 *
 * The clone is a `git clone` of this repository into a temporary directory, with the working
 * tree's uncommitted changes to tracked files and its untracked (not ignored) files copied over,
 * so it is the working tree as a newcomer would get it once committed. `node_modules` is a link
 * to this checkout's (`npm install` is the one README step not repeated). The README's
 * commands run there with a PATH that has Node and npm but no `node_modules/.bin` and no Deno or
 * Bun. Then the `npm pack` tarball is installed (offline) into a new project and used as users
 * use it: from a plain `.mjs` on Node, Bun and Deno (through npm), and by the README's TypeScript
 * examples, type-checked with `strict` against it. Last, `deno publish --dry-run` must report
 * nothing. Every process runs in its own process group and is killed by its pid; every step is
 * bounded in time; the temporary directory is removed at the end.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, dirname, join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import WebSocket from "ws";

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = spawnSync("git", ["rev-parse", "--show-toplevel"], { cwd: HERE, encoding: "utf8" }).stdout.trim();
const BIN = join(ROOT, "node_modules", ".bin");
const README = readFileSync(join(ROOT, "README.md"), "utf8");

/** What a command may take, at most, before it is killed and the test fails. */
const COMMAND_TIMEOUT = 90_000;

// ---- processes ---------------------------------------------------------------------------------

/** The environment of a newcomer's shell: this one without npm's variables and test runner's. */
function baseEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value === undefined || /^npm_/i.test(key) || key === "NODE_TEST_CONTEXT" || key === "INIT_CWD") continue;
    env[key] = value;
  }
  return { ...env, DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1", ...extra };
}

const hasTool = (dir: string, name: string) => existsSync(join(dir, name));

/**
 * A PATH with Node and npm and nothing that `npm install` put in node_modules/.bin: no
 * node_modules directory at all, and no directory that has a `deno` or `bun`.
 */
function nodeOnlyPath(): string {
  const dirs = (process.env.PATH ?? "").split(delimiter).filter((dir) =>
    dir !== "" && !dir.split(/[\\/]/).includes("node_modules") && !hasTool(dir, "deno") && !hasTool(dir, "bun")
  );
  const nodeDir = dirname(process.execPath);
  if (!dirs.includes(nodeDir) && !hasTool(nodeDir, "deno") && !hasTool(nodeDir, "bun")) dirs.unshift(nodeDir);
  return dirs.join(delimiter);
}

/** A running command: its own process group, output kept, stopped by its pid. */
class Command {
  readonly shown: string;
  readonly child: ChildProcess;
  output = "";
  exit: { code: number | null; signal: string | null } | null = null;
  readonly exited: Promise<void>;
  private readonly waiters = new Set<() => void>();

  constructor(shown: string, command: string, args: string[], cwd: string, env: Record<string, string>) {
    this.shown = shown;
    this.child = spawn(command, args, { cwd, env, stdio: ["ignore", "pipe", "pipe"], detached: true });
    const take = (chunk: Buffer) => {
      if (this.output.length < 1024 * 1024) this.output += chunk.toString("utf8");
      for (const wake of this.waiters) wake();
    };
    this.child.stdout!.on("data", take);
    this.child.stderr!.on("data", take);
    this.exited = new Promise((resolve) => {
      this.child.on("error", (error) => {
        this.output += `\n${error.message}`;
        this.exit ??= { code: null, signal: null };
        resolve();
      });
      this.child.on("close", (code, signal) => {
        this.exit = { code, signal };
        resolve();
      });
    });
    void this.exited.then(() => {
      for (const wake of this.waiters) wake();
    });
  }

  /** The first match of `pattern` in the output; fails if the command exits or times out first. */
  match(pattern: RegExp, timeout = COMMAND_TIMEOUT): Promise<RegExpMatchArray> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const m = this.output.match(pattern);
        if (m) return done(() => resolve(m));
        if (this.exit) return done(() => reject(new Error(`\`${this.shown}\` exited (${JSON.stringify(this.exit)}) before printing ${pattern}:\n${this.output}`)));
      };
      const timer = setTimeout(() => done(() => reject(new Error(`\`${this.shown}\` printed no ${pattern} in ${timeout} ms:\n${this.output}`))), timeout);
      const done = (settle: () => void) => {
        clearTimeout(timer);
        this.waiters.delete(check);
        settle();
      };
      this.waiters.add(check);
      check();
    });
  }

  /** Waits for the command to end by itself; kills it past `timeout`. */
  async finish(timeout = COMMAND_TIMEOUT): Promise<{ code: number | null; output: string }> {
    const timer = setTimeout(() => this.signal("SIGKILL"), timeout);
    await this.exited;
    clearTimeout(timer);
    return { code: this.exit!.code, output: this.output };
  }

  /** SIGTERM to the command's process group (npm, its shell, the server), SIGKILL if it lingers. */
  async stop(): Promise<void> {
    if (this.exit) return;
    this.signal("SIGTERM");
    const timer = setTimeout(() => this.signal("SIGKILL"), 5000);
    await this.exited;
    clearTimeout(timer);
    this.signal("SIGKILL"); // whatever of the group is left
  }

  private signal(signal: NodeJS.Signals): void {
    if (this.child.pid === undefined) return;
    try {
      process.kill(-this.child.pid, signal);
    } catch {
      // the group is gone
    }
  }
}

const running = new Set<Command>();

function start(shown: string, command: string, args: string[], cwd: string, env: Record<string, string>): Command {
  const c = new Command(shown, command, args, cwd, env);
  running.add(c);
  void c.exited.then(() => running.delete(c));
  return c;
}

/** Runs a README command (`npm …`, `npx …`) as written, with only Node on the PATH. */
function readmeCommand(line: string, cwd: string, extraEnv: Record<string, string> = {}): Command {
  const [command, ...args] = line.split(" ");
  return start(line, command!, args, cwd, baseEnv({ PATH: nodeOnlyPath(), ...extraEnv }));
}

/** Runs a command to its end and fails the test on a non-zero exit, showing its output. */
async function mustRun(shown: string, command: string, args: string[], cwd: string, env = baseEnv()): Promise<string> {
  const r = await start(shown, command, args, cwd, env).finish();
  assert.equal(r.code, 0, `\`${shown}\` failed (exit ${r.code}):\n${r.output}`);
  return r.output;
}

// ---- the demo ------------------------------------------------------------------------------------

/**
 * Starts the demo with a README command, then uses it as a browser would: the page over HTTP,
 * then a WebSocket to /ws that joins a room and gets the server's welcome.
 */
async function checkDemo(line: string, cwd: string, runtime: string): Promise<void> {
  // PORT=0: any free port (the server prints the one it got); the command itself is as written.
  const server = readmeCommand(line, cwd, { PORT: "0", HOST: "127.0.0.1" });
  try {
    const [, url] = await server.match(/anyws chat on \w+: open (http:\/\/\S+)/);
    assert.match(server.output, new RegExp(`anyws chat on ${runtime}:`), `\`${line}\` runs on ${runtime}`);
    const page = await fetch(url!, { signal: AbortSignal.timeout(10_000) });
    assert.equal(page.status, 200);
    assert.match(await page.text(), /<html/i);

    const origin = new URL(url!).origin;
    const ws = new WebSocket(`${origin.replace(/^http/, "ws")}/ws`, { origin });
    try {
      const welcome = await new Promise<{ t: string; room: string }>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no welcome from \`${line}\` in 10 s`)), 10_000);
        ws.on("open", () => ws.send(JSON.stringify({ t: "join", nick: "newcomer", room: "lobby" })));
        ws.on("message", (data, isBinary) => {
          if (isBinary) return;
          const message = JSON.parse(String(data));
          if (message.t === "welcome") {
            clearTimeout(timer);
            resolve(message);
          }
        });
        ws.on("error", (error) => (clearTimeout(timer), reject(error)));
        ws.on("close", (code) => (clearTimeout(timer), reject(new Error(`closed with ${code} before the welcome`))));
      });
      assert.equal(welcome.room, "lobby");
    } finally {
      ws.terminate();
    }
  } finally {
    await server.stop();
  }
}

/** Starts the `anyws echo` command with a README command line and has it echo a message. */
async function checkCliEcho(line: string, cwd: string, runtime: string): Promise<void> {
  const server = readmeCommand(line, cwd);
  try {
    const [, url] = await server.match(/anyws echo server \((\w+)\) listening on (ws:\/\/\S+)/).then((m) => [m[1], m[2]]);
    assert.match(server.output, new RegExp(`anyws echo server \\(${runtime}\\)`), `\`${line}\` runs on ${runtime}`);
    const ws = new WebSocket(url!);
    try {
      const echoed = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no echo from \`${line}\` in 10 s`)), 10_000);
        ws.on("open", () => ws.send("héllo"));
        ws.on("message", (data) => (clearTimeout(timer), resolve(String(data))));
        ws.on("error", (error) => (clearTimeout(timer), reject(error)));
      });
      assert.equal(echoed, "héllo");
    } finally {
      ws.terminate();
    }
  } finally {
    await server.stop();
  }
}

// ---- the README's TypeScript examples ----------------------------------------------------------

interface Example {
  line: number;
  code: string;
  kind: "node" | "bun" | "deno";
}

/** Every ```ts block of the README, with the line it starts on and where it runs. */
function readmeExamples(): Example[] {
  const examples: Example[] = [];
  for (const m of README.matchAll(/^```ts\n([\s\S]*?)^```$/gm)) {
    const code = m[1]!;
    const line = README.slice(0, m.index).split("\n").length + 1;
    const kind = /\bDeno\.|["']@anyws\/anyws|["']jsr:/.test(code) ? "deno" : /\bBun\.|["']anyws\/bun["']/.test(code) ? "bun" : "node";
    examples.push({ line, code, kind });
  }
  return examples;
}

const ECHO_MJS = `import { runtimeName, serve, WebSocket } from "anyws";

const server = await serve({ port: 0, hostname: "127.0.0.1" }, {
  message(ws, data) { ws.send(data); },
});
const ws = new WebSocket(\`ws://127.0.0.1:\${server.port}/\`);
ws.binaryType = "arraybuffer";
const got = [];
ws.onopen = () => { ws.send("héllo ✓"); ws.send(new Uint8Array([0, 1, 2, 255])); };
ws.onmessage = (event) => {
  got.push(typeof event.data === "string" ? event.data : [...new Uint8Array(event.data)]);
  if (got.length === 2) ws.close(1000, "done");
};
ws.onclose = async (event) => {
  await server.close();
  console.log(JSON.stringify({ runtime: runtimeName, got, code: event.code }));
};
`;

// ---- the test ------------------------------------------------------------------------------------

describe("a newcomer's fresh clone, with only Node on the PATH", { timeout: 10 * 60_000 }, () => {
  let tmp = "";
  let clone = "";
  let consumer = "";
  let tarball = "";

  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), "anyws-newcomer-"));
    clone = join(tmp, "anyws");
    consumer = join(tmp, "consumer");
    await mustRun("git clone", "git", ["clone", "--quiet", "--no-hardlinks", ROOT, clone], tmp);
    // The working tree as it is: uncommitted changes to tracked files, and new files.
    const diff = spawnSync("git", ["diff", "--binary", "HEAD"], { cwd: ROOT, maxBuffer: 256 * 1024 * 1024 });
    assert.equal(diff.status, 0, String(diff.stderr));
    if (diff.stdout.length > 0) {
      const applied = spawnSync("git", ["apply", "--binary", "--whitespace=nowarn"], { cwd: clone, input: diff.stdout });
      assert.equal(applied.status, 0, `git apply: ${applied.stderr}`);
    }
    const untracked = spawnSync("git", ["ls-files", "--others", "--exclude-standard", "-z"], { cwd: ROOT, encoding: "utf8" });
    for (const file of untracked.stdout.split("\0").filter(Boolean)) {
      mkdirSync(dirname(join(clone, file)), { recursive: true });
      cpSync(join(ROOT, file), join(clone, file));
    }
    symlinkSync(join(ROOT, "node_modules"), join(clone, "node_modules"), "dir");
  });

  after(async () => {
    await Promise.all([...running].map((c) => c.stop()));
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  test("the PATH has Node and npm, but no node_modules/.bin, Deno or Bun", () => {
    const env = baseEnv({ PATH: nodeOnlyPath() });
    const which = (name: string) => spawnSync("sh", ["-c", `command -v ${name}`], { env, encoding: "utf8" }).stdout.trim();
    assert.notEqual(which("node"), "");
    assert.notEqual(which("npm"), "");
    assert.notEqual(which("npx"), "");
    assert.equal(which("deno"), "");
    assert.equal(which("bun"), "");
    assert.equal(which("tsc"), "");
  });

  test("the README shows the commands tested here", () => {
    const commands = ["npm start", "npx deno task serve", "npm run serve", "node dist/examples/echo.js", "npx anyws", "npx deno task cli", "npx bun cli/main.ts"];
    for (const command of commands) {
      assert.ok(README.includes(command), `the README no longer says \`${command}\`: update this test`);
    }
  });

  test("`npm start` serves the page and its WebSocket, on Node", { timeout: 2 * COMMAND_TIMEOUT }, async () => {
    rmSync(join(clone, "dist"), { recursive: true, force: true });
    await checkDemo("npm start", clone, "node");
  });

  test("`npx deno task serve` serves the page and its WebSocket, on Deno", { timeout: 2 * COMMAND_TIMEOUT }, async () => {
    await checkDemo("npx deno task serve", clone, "deno");
  });

  test("`npm run serve` serves the page and its WebSocket, on Bun", { timeout: 2 * COMMAND_TIMEOUT }, async () => {
    await checkDemo("npm run serve", clone, "bun");
  });

  test("`npm run build` then `node dist/examples/echo.js`, as the README says", { timeout: 2 * COMMAND_TIMEOUT }, async () => {
    rmSync(join(clone, "dist"), { recursive: true, force: true });
    await readmeCommand("npm run build", clone).finish().then((r) => assert.equal(r.code, 0, r.output));
    const r = await readmeCommand("node dist/examples/echo.js", clone).finish();
    assert.equal(r.code, 0, r.output);
    assert.match(r.output, /received: hello from anyws/);
  });

  // The README's `anyws echo --port 9000`, on any free port.
  const cli: [string, string][] = [
    ["npx anyws echo --port 0", "node"],
    ["npx deno task cli echo --port 0", "deno"],
    ["npx bun cli/main.ts echo --port 0", "bun"],
  ];
  for (const [line, runtime] of cli) {
    test(`\`${line}\` (after \`npm run build\`) echoes, on ${runtime}`, { timeout: 2 * COMMAND_TIMEOUT }, async () => {
      await checkCliEcho(line, clone, runtime);
    });
  }

  test("`npm install` leaves package-lock.json as committed (CI runs `npm ci` on it)", { timeout: 2 * COMMAND_TIMEOUT }, async () => {
    // In a copy, so that the node_modules this clone links to is not touched.
    const dir = join(tmp, "lock");
    mkdirSync(dir);
    for (const file of ["package.json", "package-lock.json"]) cpSync(join(clone, file), join(dir, file));
    const before = readFileSync(join(dir, "package-lock.json"), "utf8");
    await readmeCommand("npm install --package-lock-only --offline --ignore-scripts --no-audit --no-fund", dir).finish()
      .then((r) => assert.equal(r.code, 0, r.output));
    assert.equal(readFileSync(join(dir, "package-lock.json"), "utf8"), before, "npm install rewrote package-lock.json: commit the one it writes");
  });

  test("`npm pack` makes a tarball, installed into a new project", { timeout: 2 * COMMAND_TIMEOUT }, async () => {
    const out = await readmeCommand(`npm pack --pack-destination ${tmp}`, clone).finish();
    assert.equal(out.code, 0, out.output);
    const made = readdirSync(tmp).filter((name) => name.endsWith(".tgz"));
    assert.equal(made.length, 1, `npm pack made ${made.join(", ") || "no tarball"}:\n${out.output}`);
    tarball = join(tmp, made[0]!);

    // A new project that installs it (offline: the package has no dependencies), with the
    // TypeScript tools its users would have, and a deno.json that uses its node_modules.
    mkdirSync(consumer);
    writeFileSync(join(consumer, "package.json"), JSON.stringify({ name: "consumer", private: true, type: "module" }, null, 2));
    writeFileSync(join(consumer, "deno.json"), JSON.stringify({ nodeModulesDir: "manual", lock: false }, null, 2));
    const install = await readmeCommand(`npm install --offline --no-audit --no-fund ${tarball}`, consumer).finish();
    assert.equal(install.code, 0, install.output);
    // ...and the Redis client the README's "Scaling out" example brings (node-redis and its @redis/ parts).
    for (const dev of ["typescript", "@types/node", "@types/bun", "redis", "@redis"]) {
      mkdirSync(dirname(join(consumer, "node_modules", dev)), { recursive: true });
      symlinkSync(join(ROOT, "node_modules", dev), join(consumer, "node_modules", dev), "dir");
    }
    writeFileSync(join(consumer, "echo.mjs"), ECHO_MJS);
  });

  test("the tarball has the licence and every runtime's adapter", () => {
    assert.ok(tarball, "no tarball: `npm pack` failed");
    const files = spawnSync("tar", ["-tzf", tarball], { encoding: "utf8" }).stdout.split("\n");
    for (const file of ["LICENSE", "package.json", "dist/adapters/auto.js", "dist/cli/main.js"]) {
      assert.ok(files.includes(`package/${file}`), `the tarball lacks ${file}`);
    }
    for (const runtime of ["node", "deno", "bun", "streams", "backplane"]) {
      assert.ok(files.includes(`package/dist/adapters/${runtime}/mod.js`), `the tarball lacks the ${runtime} adapter`);
      assert.ok(files.includes(`package/dist/adapters/${runtime}/mod.d.ts`), `the tarball lacks the ${runtime} adapter's types`);
    }
    const pkg = JSON.parse(readFileSync(join(consumer, "node_modules", "anyws", "package.json"), "utf8"));
    assert.equal(pkg.license, "MIT");
    assert.equal(pkg.exports["./deno"]?.default, "./dist/adapters/deno/mod.js");
    const deno = JSON.parse(readFileSync(join(clone, "deno.json"), "utf8"));
    assert.equal(deno.license, "MIT");
  });

  const runtimes: [string, () => [string, string[]]][] = [
    ["node", () => [process.execPath, ["echo.mjs"]]],
    ["bun", () => [join(BIN, "bun"), ["echo.mjs"]]],
    ["deno", () => [join(BIN, "deno"), ["run", "-A", "echo.mjs"]]],
  ];
  for (const [runtime, command] of runtimes) {
    test(`the tarball, imported as "anyws" from a plain .mjs, echoes on ${runtime}`, { timeout: 2 * COMMAND_TIMEOUT }, async () => {
      assert.ok(tarball, "no tarball: `npm pack` failed");
      const [cmd, args] = command();
      const r = await start(`${runtime} echo.mjs`, cmd, args, consumer, baseEnv()).finish();
      assert.equal(r.code, 0, r.output);
      const result = JSON.parse(r.output.trim().split("\n").pop()!);
      assert.deepEqual(result, { runtime, got: ["héllo ✓", [0, 1, 2, 255]], code: 1000 });
    });
  }

  test("every ts example of the README type-checks with strict against the tarball", { timeout: 2 * COMMAND_TIMEOUT }, async () => {
    assert.ok(tarball, "no tarball: `npm pack` failed");
    const examples = readmeExamples();
    assert.ok(examples.length >= 5, `found only ${examples.length} ts examples in the README`);
    const dir = join(consumer, "readme");
    mkdirSync(dir);
    const files: Record<Example["kind"], string[]> = { node: [], bun: [], deno: [] };
    for (const e of examples) {
      const file = `README.md-line-${e.line}.ts`;
      writeFileSync(join(dir, file), e.code);
      files[e.kind].push(file);
    }
    const problems: string[] = [];
    // A user's tsconfig: strict, Node's module rules, the runtime's types, and the package's
    // own declarations checked too (skipLibCheck off), so a broken .d.ts in the tarball shows.
    for (const kind of ["node", "bun"] as const) {
      if (files[kind].length === 0) continue;
      const tsconfig = `tsconfig.${kind}.json`;
      writeFileSync(join(dir, tsconfig), JSON.stringify({
        compilerOptions: {
          strict: true,
          noEmit: true,
          target: "es2022",
          lib: ["es2022"],
          module: "nodenext",
          moduleResolution: "nodenext",
          moduleDetection: "force",
          types: kind === "bun" ? ["node", "bun"] : ["node"],
          skipLibCheck: false,
        },
        files: files[kind],
      }, null, 2));
      const r = await start(`tsc -p ${tsconfig}`, join(consumer, "node_modules", "typescript", "bin", "tsc"), ["-p", tsconfig], dir, baseEnv()).finish();
      if (r.code !== 0) problems.push(`tsc (${kind} examples, README line = file name):\n${r.output}`);
    }
    if (files.deno.length > 0) {
      // From JSR the examples import "@anyws/anyws…" (or "jsr:@anyws/anyws…"); here each of
      // deno.json's exports maps to the same subpath of the tarball.
      const denoJson = JSON.parse(readFileSync(join(clone, "deno.json"), "utf8"));
      const imports: Record<string, string> = {};
      for (const subpath of Object.keys(denoJson.exports)) {
        imports[`${denoJson.name}${subpath.slice(1)}`] = `npm:anyws${subpath.slice(1)}`;
        imports[`jsr:${denoJson.name}${subpath.slice(1)}`] = `npm:anyws${subpath.slice(1)}`;
      }
      writeFileSync(join(dir, "deno.json"), JSON.stringify({ nodeModulesDir: "manual", lock: false, compilerOptions: { strict: true }, imports }, null, 2));
      const r = await start("deno check", join(BIN, "deno"), ["check", "--quiet", ...files.deno], dir, baseEnv()).finish();
      if (r.code !== 0) problems.push(`deno check (Deno examples, README line = file name):\n${r.output}`);
    }
    assert.equal(problems.length, 0, problems.join("\n"));
  });

  test("`deno publish --dry-run` reports no problem and no warning", { timeout: 2 * COMMAND_TIMEOUT }, async () => {
    // --allow-dirty: the clone carries the working tree's changes and the node_modules link.
    const r = await start("deno publish --dry-run", join(BIN, "deno"), ["publish", "--dry-run", "--allow-dirty"], clone, baseEnv()).finish();
    assert.equal(r.code, 0, r.output);
    assert.doesNotMatch(r.output, /^\s*(error|warning)\b/im, r.output);
    assert.match(r.output, /Success Dry run complete/);
  });
});
