// The core purity rule (scripts/check-core-purity.mjs, the one implementation) holds for the
// real core/, and the checker really fails on impure code.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { checkCorePurity, findRepoRoot, formatResult } from "../scripts/check-core-purity.mjs";

describe("core purity", () => {
  it("core/ imports only core/ and uses no runtime, timer, clock or I/O API", () => {
    const root = findRepoRoot(dirname(fileURLToPath(import.meta.url)));
    const result = checkCorePurity(root);
    assert.deepEqual(result.violations, [], formatResult(result));
  });

  it("the checker catches every kind of violation, and ignores comments and strings", () => {
    const root = mkdtempSync(join(tmpdir(), "anyws-purity-"));
    try {
      mkdirSync(join(root, "core", "sub"), { recursive: true });
      writeFileSync(
        join(root, "core", "good.ts"),
        [
          "// setTimeout(), Deno.listen, process.env, Date.now(): fine in a comment",
          "/* Bun.serve() */",
          'import { x } from "./sub/x.ts";',
          'export type { Y } from "./sub/x.ts";',
          'const s = "setTimeout Deno.x process.env Date.now() crypto.subtle";',
          "const t = `still a string ${x} with setTimeout`;",
          "const re = /[\"'`]+setTimeout/g;",
          "const half = 10 / 2 / 1;",
          "const bytes = crypto.getRandomValues(new Uint8Array(4));",
          "const opts = { process: 1, setTimeout: 2 };",
          "this.process(); other.setTimeout(1); Array.from(\"ab\");",
          "",
        ].join("\n"),
      );
      writeFileSync(join(root, "core", "sub", "x.ts"), 'import { a } from "../good.ts";\n');
      const lines = [
        'import type { Socket } from "node:net";',
        'import b from "../../outside.ts";',
        'import c from "./noext";',
        'import "npm:left-pad";',
        'export * from "jsr:@std/x";',
        'import d from "bun";',
        'import e from "https://example.com/z.ts";',
        'const r = require("fs");',
        "setTimeout(() => {}, 1);",
        "globalThis.setInterval(() => {}, 1);",
        "queueMicrotask(() => {});",
        "const now = Date.now();",
        "const hi = performance.now();",
        "crypto.subtle.digest(\"SHA-1\", new Uint8Array());",
        "if (typeof Bun !== \"undefined\") {}",
        "const v = Deno.version;",
        "const env = process.env.X;",
        "console.log(1);",
        "const m = await import(name);",
      ];
      writeFileSync(join(root, "core", "sub", "bad.ts"), lines.join("\n") + "\n");

      const result = checkCorePurity(root);
      assert.deepEqual(result.files, ["core/good.ts", "core/sub/bad.ts", "core/sub/x.ts"]);
      const good = result.violations.filter((v) => v.file !== "core/sub/bad.ts");
      assert.deepEqual(good, [], formatResult({ files: result.files, violations: good }));
      // exactly one violation on every line of bad.ts, each pointing at the right line
      const badLines = result.violations.map((v) => v.line);
      assert.deepEqual(badLines, lines.map((_, i) => i + 1), formatResult(result));
      assert.deepEqual(
        result.violations.map((v) => v.rule),
        [
          "imports", "imports", "imports", "imports", "imports", "imports", "imports",
          "no-require", "no-timers", "no-timers", "no-timers", "no-clock", "no-clock",
          "no-subtle-crypto", "no-bun", "no-deno", "no-process", "no-io", "imports",
        ],
      );
      assert.match(formatResult(result), /core\/sub\/bad\.ts:1:\d+ +\[imports\] import of "node:net"/);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
