#!/usr/bin/env node
// The core purity rule, written once. `node scripts/check-core-purity.mjs` runs it from the
// command line; scripts/test.mjs and tests/purity.test.ts import it. Plain JS so Node 20 runs
// it without a build; tsc type-checks it through the JSDoc annotations (checkJs).
//
// core/ is a pure sans-IO state machine (README, "Architecture"): bytes in, events out. So every
// core/**/*.ts file may only import relative `.ts` paths that stay inside core/, and may not
// touch a runtime, a clock, a timer or I/O. Comments and string contents are ignored.

import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import process from "node:process";
import { fileURLToPath, pathToFileURL } from "node:url";

/**
 * @typedef {{ file: string, line: number, column: number, rule: string, message: string, source: string }} Violation
 * @typedef {{ files: string[], violations: Violation[] }} PurityResult
 */

/**
 * Globals and calls core/ must not use. `pattern` runs over the source with comments and
 * string/regex/template contents blanked out. Add a rule here, nowhere else.
 * @type {ReadonlyArray<{ rule: string, pattern: RegExp, message: string }>}
 */
export const FORBIDDEN = [
  ...["Deno", "Bun"].map((name) => ({
    rule: `no-${name.toLowerCase()}`,
    pattern: new RegExp(String.raw`(?<![\w$])(?<!\.\s*)${name}\b`, "g"),
    message: `${name} is a runtime API; it belongs in adapters/${name.toLowerCase()}`,
  })),
  {
    rule: "no-process",
    pattern: /(?<![\w$])(?<!\.\s*)(?:(?:globalThis|global)\s*\.\s*)?process\s*(?:\.|\?\.|\[)/g,
    message: "process is a Node runtime API; core gets its configuration as arguments",
  },
  {
    rule: "no-require",
    pattern: /(?<![\w$])(?<!\.\s*)require\s*\(/g,
    message: "require() is not ESM and not pure; import relative .ts files instead",
  },
  ...[
    "setTimeout",
    "setInterval",
    "setImmediate",
    "clearTimeout",
    "clearInterval",
    "clearImmediate",
    "queueMicrotask",
    "requestAnimationFrame",
  ].map((name) => ({
    rule: "no-timers",
    pattern: new RegExp(
      // not after `.` (someone's method), not before `:` (an object key or a type member)
      String.raw`(?<![\w$])(?<!\.\s*)(?:(?:globalThis|self|window|global)\s*\.\s*)?${name}\b(?!\s*\??\s*:)`,
      "g",
    ),
    message: `${name} schedules work; core reports its next deadline and adapters own timers`,
  })),
  {
    rule: "no-clock",
    pattern: /(?<![\w$])(?<!\.\s*)(?:Date\s*\.\s*now\b|performance\b|new\s+Date\s*\(\s*\))/g,
    message: "core never reads the clock; adapters pass the current time in",
  },
  {
    rule: "no-subtle-crypto",
    pattern: /\bcrypto\s*(?:\.|\?\.)\s*subtle\b/g,
    message: "crypto.subtle is async and runtime-bound; core has its own SHA-1 (crypto.getRandomValues is allowed)",
  },
  {
    rule: "no-io",
    pattern: /(?<![\w$])(?<!\.\s*)(?:(?:globalThis|self|window|global)\s*\.\s*)?(?:fetch\s*\(|console\s*\.|XMLHttpRequest\b)/g,
    message: "core does no I/O (not even logging); return events instead",
  },
];

/** Specifier prefixes that name something outside the core, with the reason shown. */
const FOREIGN_SPECIFIERS = [
  [/^node:/, "node: modules are runtime APIs"],
  [/^npm:/, "core has no dependencies"],
  [/^jsr:/, "core has no dependencies"],
  [/^bun(:|$)/, "bun modules are runtime APIs"],
  [/^https?:/, "core has no remote dependencies"],
];

/**
 * Check one import/export specifier written in `file` (absolute) against the rule.
 * @param {string} specifier
 * @param {string} file
 * @param {string} coreDir absolute path of core/
 * @returns {string | null} what is wrong, or null
 */
export function checkSpecifier(specifier, file, coreDir) {
  for (const [re, why] of FOREIGN_SPECIFIERS) {
    if (/** @type {RegExp} */ (re).test(specifier)) return `import of "${specifier}": ${why}`;
  }
  if (!specifier.startsWith("./") && !specifier.startsWith("../")) {
    return `import of "${specifier}": core may only import relative paths inside core/`;
  }
  if (!specifier.endsWith(".ts")) {
    return `import of "${specifier}": relative imports must end with ".ts" (Deno needs the extension; tsc rewrites it)`;
  }
  const target = resolve(dirname(file), specifier);
  const rel = relative(coreDir, target);
  if (rel === "" || rel.startsWith("..") || rel.startsWith(sep) || /^[a-zA-Z]:/.test(rel)) {
    return `import of "${specifier}": resolves outside core/`;
  }
  return null;
}

/** Keywords after which a `/` starts a regular expression rather than a division. */
const REGEX_AFTER_WORD = new Set([
  "return", "typeof", "instanceof", "in", "of", "new", "delete", "void", "throw", "case",
  "do", "else", "yield", "await", "extends",
]);

/**
 * Blank out comments and the contents of string, template and regex literals, keeping every
 * offset and newline where it was, so patterns can run over code only.
 * @param {string} src
 * @returns {{ code: string, strings: Map<number, string>, comments: Array<{ start: number, text: string }> }}
 *   `strings` maps the offset of each string literal's opening quote to its raw contents.
 */
export function maskSource(src) {
  const out = src.split("");
  /** @type {Map<number, string>} */
  const strings = new Map();
  /** @type {Array<{ start: number, text: string }>} */
  const comments = [];
  /** @param {number} from @param {number} to */
  const blank = (from, to) => {
    for (let k = from; k < to; k++) if (out[k] !== "\n" && out[k] !== "\r") out[k] = " ";
  };
  /** Brace depth of each open `${` in a template, innermost last. @type {number[]} */
  const templates = [];
  let depth = 0; // brace depth in code
  let lastChar = ""; // last significant code character
  let lastWord = ""; // last identifier/keyword, if lastChar ended one
  let i = 0;
  const n = src.length;

  /** Scan template text from i (just after ` or }) to its end or the next `${`. */
  const templateText = () => {
    const start = i;
    while (i < n) {
      const c = src[i];
      if (c === "\\") { i += 2; continue; }
      if (c === "`") { blank(start, i); i++; lastChar = "`"; lastWord = ""; return; }
      if (c === "$" && src[i + 1] === "{") {
        blank(start, i);
        i += 2;
        templates.push(depth);
        depth++;
        lastChar = "{"; lastWord = "";
        return;
      }
      i++;
    }
    blank(start, n);
  };

  while (i < n) {
    const c = src[i];
    const d = src[i + 1];
    if (c === "/" && d === "/") {
      const end = src.indexOf("\n", i);
      const stop = end === -1 ? n : end;
      comments.push({ start: i, text: src.slice(i, stop) });
      blank(i, stop);
      i = stop;
      continue;
    }
    if (c === "/" && d === "*") {
      const end = src.indexOf("*/", i + 2);
      const stop = end === -1 ? n : end + 2;
      comments.push({ start: i, text: src.slice(i, stop) });
      blank(i, stop);
      i = stop;
      continue;
    }
    if (c === "'" || c === '"') {
      const start = i;
      i++;
      while (i < n && src[i] !== c && src[i] !== "\n") i += src[i] === "\\" ? 2 : 1;
      strings.set(start, src.slice(start + 1, Math.min(i, n)));
      blank(start + 1, Math.min(i, n));
      i++;
      lastChar = c; lastWord = "";
      continue;
    }
    if (c === "`") {
      i++;
      templateText();
      continue;
    }
    if (c === "/") {
      const regexAllowed = lastChar === "" || "(,=:[!&|?{};+-*%<>~^".includes(lastChar) ||
        (lastWord !== "" && REGEX_AFTER_WORD.has(lastWord));
      if (regexAllowed) {
        // A regex literal ends at an unescaped `/` outside a character class, on this line.
        let j = i + 1;
        let inClass = false;
        let ok = false;
        while (j < n && src[j] !== "\n") {
          const r = src[j];
          if (r === "\\") { j += 2; continue; }
          if (r === "[") inClass = true;
          else if (r === "]") inClass = false;
          else if (r === "/" && !inClass) { ok = true; break; }
          j++;
        }
        if (ok) {
          blank(i + 1, j);
          i = j + 1;
          while (i < n && /[a-z]/i.test(src[i] ?? "")) i++;
          lastChar = ")"; lastWord = ""; // a regex is a value: a following `/` divides
          continue;
        }
      }
      lastChar = "/"; lastWord = "";
      i++;
      continue;
    }
    if (c === "{") { depth++; lastChar = c; lastWord = ""; i++; continue; }
    if (c === "}") {
      depth--;
      i++;
      if (templates.length > 0 && templates[templates.length - 1] === depth) {
        templates.pop();
        templateText();
      } else {
        lastChar = "}"; lastWord = "";
      }
      continue;
    }
    if (/[\w$]/.test(c ?? "")) {
      const start = i;
      while (i < n && /[\w$]/.test(src[i] ?? "")) i++;
      lastWord = src.slice(start, i);
      lastChar = "a";
      continue;
    }
    if (!/\s/.test(c ?? "")) { lastChar = c ?? ""; lastWord = ""; }
    i++;
  }
  return { code: out.join(""), strings, comments };
}

/**
 * Check one core source file.
 * @param {string} file absolute path (used to resolve relative imports)
 * @param {string} src its contents
 * @param {string} coreDir absolute path of core/
 * @param {string} [displayName] how to name the file in violations
 * @returns {Violation[]}
 */
export function checkSource(file, src, coreDir, displayName = file) {
  const { code, strings, comments } = maskSource(src);
  const lines = src.split("\n");
  /** @type {number[]} */
  const lineStarts = [0];
  for (let k = 0; k < src.length; k++) if (src[k] === "\n") lineStarts.push(k + 1);
  /** @param {number} offset */
  const position = (offset) => {
    let lo = 0;
    let hi = lineStarts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (/** @type {number} */ (lineStarts[mid]) <= offset) lo = mid;
      else hi = mid - 1;
    }
    return { line: lo + 1, column: offset - /** @type {number} */ (lineStarts[lo]) + 1 };
  };
  /** @type {Violation[]} */
  const violations = [];
  /** @param {number} offset @param {string} rule @param {string} message */
  const report = (offset, rule, message) => {
    const { line, column } = position(offset);
    violations.push({
      file: displayName,
      line,
      column,
      rule,
      message,
      source: (lines[line - 1] ?? "").trim(),
    });
  };

  // Static imports/exports (`import x from "s"`, `import "s"`, `export * from "s"`,
  // `import type ... from "s"`) and dynamic `import("s")`.
  const importRe = /(?<![\w$.])(?:from|import)\s*(\(\s*)?(["'`])/g;
  for (const m of code.matchAll(importRe)) {
    const quote = m.index + m[0].length - 1;
    const spec = strings.get(quote);
    if (spec === undefined) {
      report(m.index, "imports", "import with a non-literal specifier (template literal); use a plain string");
      continue;
    }
    const problem = checkSpecifier(spec, file, coreDir);
    if (problem) report(m.index, "imports", problem);
  }
  // `import(expr)` with a computed specifier can reach anything.
  for (const m of code.matchAll(/(?<![\w$.])import\s*\(\s*(?!["'`\s])/g)) {
    report(m.index, "imports", "dynamic import() of a computed specifier");
  }
  // `/// <reference types="node" />` and friends pull runtime types into core.
  for (const c of comments) {
    if (/^\/\/\/\s*<reference\b/.test(c.text)) {
      report(c.start, "imports", "triple-slash reference directive; core declares no ambient types");
    }
  }
  for (const { rule, pattern, message } of FORBIDDEN) {
    for (const m of code.matchAll(pattern)) report(m.index, rule, message);
  }
  violations.sort((a, b) => a.line - b.line || a.column - b.column);
  return violations;
}

/**
 * All `.ts` files under dir, sorted, as absolute paths.
 * @param {string} dir
 * @returns {string[]}
 */
export function listTsFiles(dir) {
  /** @type {string[]} */
  const found = [];
  /** @param {string} d */
  const walk = (d) => {
    for (const entry of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, entry.name);
      if (entry.isDirectory()) walk(p);
      else if (entry.isFile() && entry.name.endsWith(".ts")) found.push(p);
    }
  };
  walk(dir);
  return found.sort();
}

/**
 * Check every core/**\/*.ts under a repository root.
 * @param {string} root repository root (the directory that holds core/)
 * @returns {PurityResult}
 */
export function checkCorePurity(root) {
  const coreDir = resolve(root, "core");
  let isDir = false;
  try {
    isDir = statSync(coreDir).isDirectory();
  } catch {
    isDir = false;
  }
  if (!isDir) return { files: [], violations: [] };
  const files = listTsFiles(coreDir);
  /** @type {Violation[]} */
  const violations = [];
  for (const file of files) {
    const display = relative(root, file).split(sep).join("/");
    violations.push(...checkSource(file, readFileSync(file, "utf8"), coreDir, display));
  }
  return { files: files.map((f) => relative(root, f).split(sep).join("/")), violations };
}

/**
 * The repository root: the nearest ancestor of `start` holding both package.json and core/.
 * Works from tests/ (Deno, Bun) and from dist/tests/ (compiled, Node).
 * @param {string} start a directory
 * @returns {string}
 */
export function findRepoRoot(start) {
  let dir = resolve(start);
  for (;;) {
    try {
      if (statSync(join(dir, "package.json")).isFile() && statSync(join(dir, "core")).isDirectory()) {
        return dir;
      }
    } catch {
      // keep walking up
    }
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`no repository root (package.json + core/) above ${start}`);
    dir = parent;
  }
}

/**
 * Human-readable report of a result.
 * @param {PurityResult} result
 * @returns {string}
 */
export function formatResult(result) {
  if (result.violations.length === 0) {
    return `core purity: ok (${result.files.length} file${result.files.length === 1 ? "" : "s"} checked)`;
  }
  const out = result.violations.map((v) =>
    `${v.file}:${v.line}:${v.column}  [${v.rule}] ${v.message}\n    ${v.source}`
  );
  out.push(
    `core purity: ${result.violations.length} violation${result.violations.length === 1 ? "" : "s"} in ${
      new Set(result.violations.map((v) => v.file)).size
    } of ${result.files.length} files`,
  );
  return out.join("\n");
}

// Command line: node scripts/check-core-purity.mjs [root]
if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const root = process.argv[2]
    ? resolve(process.argv[2])
    : findRepoRoot(dirname(fileURLToPath(import.meta.url)));
  const result = checkCorePurity(root);
  const text = formatResult(result);
  if (result.violations.length > 0) {
    console.error(text);
    process.exit(1);
  }
  console.log(text);
}
