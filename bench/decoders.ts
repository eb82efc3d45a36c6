/**
 * The two ways the core decodes a received text message in one piece (core/utf8.ts
 * `decodeText`): the fatal TextDecoder, or the lenient one and a search for U+FFFD. Which is
 * faster depends on the engine and the size; `Tuning.lenientDecodeLimit` records the choice.
 *
 *   node dist/bench/decoders.js        after `tsc -p tsconfig.json`
 *   deno run -A bench/decoders.ts
 *   bun bench/decoders.ts
 *
 * Options: --time=MS per measurement (default 200). Prints, per size, nanoseconds per decode for
 * each decoder on ASCII and on mixed text, and the ratio fatal / lenient. Nothing is asserted.
 */
import process from "node:process";

const args = process.argv.slice(2);
const TIME_MS = Number(args.find((a) => a.startsWith("--time="))?.slice(7) ?? 200);
const RUNTIME = "Deno" in globalThis ? "deno" : "Bun" in globalThis ? "bun" : "node";

const fatal = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const lenient = new TextDecoder("utf-8", { ignoreBOM: true });

function measure(decode: (bytes: Uint8Array) => string, bytes: Uint8Array): number {
  let n = 0;
  let sink = 0;
  const end = performance.now() + TIME_MS;
  let now = performance.now();
  const start = now;
  while (now < end) {
    for (let i = 0; i < 1000; i++) sink += decode(bytes).length;
    n += 1000;
    now = performance.now();
  }
  if (sink < 0) console.log(sink);
  return ((now - start) * 1e6) / n;
}

const lenientChecked = (bytes: Uint8Array) => {
  const text = lenient.decode(bytes);
  return text.indexOf("\ufffd") === -1 ? text : fatal.decode(bytes);
};

console.log(`text decoding on ${RUNTIME} ${process.versions[RUNTIME as "node"] ?? ""} (ns per decode)`);
console.log("size   text    fatal   lenient+check  fatal/lenient");
const encoder = new TextEncoder();
for (const size of [16, 64, 256, 1024, 4096, 65536]) {
  for (const [kind, unit] of [["ascii", "abcdefgh"], ["mixed", "aé€😀bcd"]] as const) {
    let text = "";
    while (encoder.encode(text).length < size) text += unit;
    const bytes = encoder.encode(text).slice(0, size);
    // Cut at a character boundary, so that both decoders see valid UTF-8.
    let end = bytes.length;
    while (end > 0 && (bytes[end - 1] & 0xc0) === 0x80) end--;
    if (end > 0 && bytes[end - 1] >= 0xc0) end--;
    const input = kind === "ascii" ? bytes : bytes.slice(0, end);
    const f = measure((b) => fatal.decode(b), input);
    const l = measure(lenientChecked, input);
    console.log(`${String(size).padEnd(6)} ${kind.padEnd(7)} ${f.toFixed(0).padStart(7)} ${l.toFixed(0).padStart(14)} ${(f / l).toFixed(2).padStart(14)}`);
  }
}
