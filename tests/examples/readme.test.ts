/**
 * The README's TypeScript examples are the files in examples/readme/, byte for byte, and each
 * one runs as a program on every runtime it is for and prints what the README says. (tsc and
 * deno check type-check the files with the rest of the project.)
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import process from "node:process";
import { runtimeName } from "../../adapters/auto.ts";
import { RedisServer } from "../support/redis.ts";

const ROOT = new URL("../../", import.meta.url.replace("/dist/tests/", "/tests/"));
const compiled = import.meta.url.endsWith(".js"); // Node runs the tsc output in dist/
const MARKER = /^<!-- (examples\/readme\/[\w.-]+\.ts) -->$/;

type Runtime = "node" | "deno" | "bun";
interface Example {
  runtimes: Runtime[];
  /** Its full output, line by line. */
  prints: string[];
  /** Working directory (relative to the repository): where its files are. */
  cwd?: string;
  /** Deno's permissions, when the README gives them. */
  denoFlags?: string[];
  /** Needs a Redis: the test starts its own redis-server and passes its URL as REDIS_URL. */
  redis?: true;
}

const ALL: Runtime[] = ["node", "deno", "bun"];
const examples: Record<string, Example | "a server"> = {
  "quick-start.ts": {
    runtimes: ALL,
    prints: ["bob received: hello from alice", "server: a client left (1001)", "server: a client left (1001)"],
  },
  "node.ts": { runtimes: ["node"], prints: ["echo: hello", "closed: 1000"] },
  "tls.deno.ts": {
    runtimes: ["deno"],
    prints: ["echo: hello over TLS", "closed: 1000"],
    cwd: "tests/fixtures/tls", // cert.pem, key.pem, ca.pem as the README's openssl command makes them
    denoFlags: ["--allow-net", "--allow-read"],
  },
  "pubsub.bun.ts": { runtimes: ["bun"], prints: ["compression: permessage-deflate", "received 1000 characters"] },
  "server.ts": {
    runtimes: ALL,
    prints: [
      "WebSocket handshake failed: server refused the upgrade with status 403 Forbidden (HTTP 403)",
      "open, protocol chat.v2",
      "received: ada: hello",
      "closed: 1001 server shutting down",
    ],
  },
  "client.ts": {
    runtimes: ALL,
    prints: ["open: protocol chat.v2", "echo: hi", "closed: 1000, clean: true"],
    cwd: "tests/fixtures/tls",
  },
  "attach.ts": { runtimes: ALL, prints: ["GET / -> a web page", "/ws -> hello"] },
  "redis.ts": {
    runtimes: ALL,
    prints: ["bob, on the other server: hello from alice", "relayed 1, received 0; relayed 0, received 1"],
    redis: true,
  },
  "embed-core.ts": "a server", // runs until stopped: tests/examples/embed-core.test.ts drives it
};

/** The ```ts blocks of README.md, each with the file its marker line names. */
function readmeBlocks(): { file: string | null; text: string; line: number }[] {
  const lines = readFileSync(new URL("README.md", ROOT), "utf8").split("\n");
  const blocks: { file: string | null; text: string; line: number }[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (lines[i] !== "```ts") continue;
    const marker = MARKER.exec(lines[i - 1] ?? "");
    const end = lines.indexOf("```", i + 1);
    assert.ok(end > i, `README.md:${i + 1}: a \`\`\`ts block that never ends`);
    blocks.push({ file: marker?.[1] ?? null, text: lines.slice(i + 1, end).join("\n") + "\n", line: i + 1 });
    i = end;
  }
  return blocks;
}

describe("the README's examples", () => {
  test("every TypeScript block in README.md is a file of examples/readme/, byte for byte, and every file is shown", () => {
    const blocks = readmeBlocks();
    assert.ok(blocks.length >= Object.keys(examples).length);
    for (const block of blocks) {
      assert.ok(block.file, `README.md:${block.line}: a \`\`\`ts block without an <!-- examples/readme/NAME.ts --> line before it`);
      const source = readFileSync(new URL(block.file, ROOT), "utf8");
      assert.equal(block.text, source, `README.md:${block.line} differs from ${block.file}`);
    }
    const files = readdirSync(new URL("examples/readme/", ROOT)).filter((f) => f.endsWith(".ts")).sort();
    assert.deepEqual([...new Set(blocks.map((b) => b.file!.slice("examples/readme/".length)))].sort(), files);
    assert.deepEqual(Object.keys(examples).sort(), files, "each example says where it runs");
  });

  for (const [name, example] of Object.entries(examples)) {
    if (example === "a server" || !example.runtimes.includes(runtimeName)) continue;
    test(`examples/readme/${name} runs on ${runtimeName} and prints what it shows`, async () => {
      const path = compiled ? `dist/examples/readme/${name.replace(/\.ts$/, ".js")}` : `examples/readme/${name}`;
      const file = fileURLToPath(new URL(path, ROOT));
      const args = runtimeName === "deno" ? ["run", ...(example.denoFlags ?? ["-A"]), file] : [file];
      const cwd = fileURLToPath(new URL(example.cwd ?? ".", ROOT));
      const redis = example.redis ? await RedisServer.start() : null;
      const env = redis ? { ...process.env, REDIS_URL: redis.url } : process.env;
      try {
        const stdout = await new Promise<string>((resolve, reject) => {
          // Bounded: an example that does not end by itself fails here.
          execFile(process.execPath, args, { cwd, env, timeout: 20_000 }, (error, out, err) => {
            if (error) reject(new Error(`${error.message}\nstdout:\n${out}\nstderr:\n${err}`));
            else resolve(out);
          });
        });
        assert.deepEqual(stdout.split("\n"), [...example.prints, ""]);
      } finally {
        await redis?.stop();
      }
    });
  }

  if (runtimeName === "deno") {
    test("the README's openssl commands make a certificate that examples/readme/tls.deno.ts accepts", async () => {
      const readme = readFileSync(new URL("README.md", ROOT), "utf8");
      const block = /```sh\n(openssl req[^]*?)```/.exec(readme);
      assert.ok(block, "a ```sh block that starts with openssl req");
      // Its commands, continuation lines joined; the last one runs the example (below, as written).
      const commands = block[1].replace(/\\\n\s*/g, " ").trim().split("\n");
      const run = commands.pop()!;
      assert.equal(run, "deno run --allow-net --allow-read tls.deno.ts");
      const dir = mkdtempSync(join(tmpdir(), "anyws-readme-tls-"));
      try {
        const exec = (file: string, args: string[]) =>
          new Promise<string>((resolve, reject) => {
            execFile(file, args, { cwd: dir, timeout: 20_000 }, (error, out, err) => {
              if (error) reject(new Error(`${error.message}\n${err}`));
              else resolve(out);
            });
          });
        for (const command of commands) await exec("sh", ["-c", command]);
        const example = fileURLToPath(new URL("examples/readme/tls.deno.ts", ROOT));
        const stdout = await exec(process.execPath, [...run.split(" ").slice(1, -1), example]);
        assert.deepEqual(stdout.split("\n"), [...(examples["tls.deno.ts"] as Example).prints, ""]);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});
