/**
 * The `ws` package, as the benchmarks load it: by absolute path, because ws's "exports" hide
 * lib/ and Bun answers a bare "ws" with its own built-in stand-in, not the package.
 */
import { createRequire } from "node:module";
import { dirname, join } from "node:path";

const require = createRequire(import.meta.url);
const wsDir = dirname(require.resolve("ws/package.json"));

/** A module of the ws package, by its path inside the package ("index.js", "lib/receiver.js"). */
export function requireWs<T>(path: string): T {
  return require(join(wsDir, path)) as T;
}

export const wsVersion: string = requireWs<{ version: string }>("package.json").version;

/** Which masking code ws ended up with (ws/lib/buffer-util.js picks it when first loaded). */
export function wsMasking(): string {
  const mask: (...a: unknown[]) => void = requireWs<{ mask: (...a: unknown[]) => void }>("lib/buffer-util.js").mask;
  const source = mask.toString();
  if (source.includes("bufferUtil.mask")) {
    const native = require("bufferutil").mask.toString().includes("[native code]");
    const version: string = require("bufferutil/package.json").version;
    return `bufferutil ${version} (${native ? "native" : "its JS fallback"})`;
  }
  if (source.includes("websocketMask")) return "the runtime's http.websocketMask";
  return "pure JS";
}
