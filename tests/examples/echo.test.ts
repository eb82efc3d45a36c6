/** examples/echo.ts runs unchanged as a program on the runtime running this test. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import process from "node:process";
import { runtimeName } from "../../adapters/auto.ts";

test(`examples/echo.ts runs on ${runtimeName}`, async () => {
  const compiled = import.meta.url.endsWith(".js"); // Node runs the tsc output in dist/
  const example = fileURLToPath(new URL(`../../examples/echo.${compiled ? "js" : "ts"}`, import.meta.url));
  const args = runtimeName === "deno" ? ["run", "-A", example] : [example];
  const output = await new Promise<string>((resolve, reject) => {
    execFile(process.execPath, args, { timeout: 20_000 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${error.message}\n${stderr}`));
      else resolve(stdout);
    });
  });
  assert.match(output, new RegExp(`^echo server on ${runtimeName}, port \\d+\\n`));
  assert.match(output, /\nreceived: hello from anyws\n/);
  assert.match(output, /\nclosed: 1000\n$/);
});
