/**
 * The core fuzzer on permessage-deflate (tests/fuzz/README.md): compressed messages, valid and
 * damaged (corrupt data, misplaced RSV1, zip bombs, BFINAL blocks, byte damage), to both roles
 * with the node:zlib codec, whole, one byte at a time and in random pieces, and against ws's
 * Receiver with ws's own permessage-deflate.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { hex } from "../support/bytes.ts";
import { settings } from "./fuzz.ts";
import { checkDeflateCase, DEFLATE_KINDS, makeDeflateCase } from "./deflate.ts";
import { wsVersion } from "./ws-runner.ts";

/**
 * ws's permessage-deflate is not compared on Deno: there, for data that does not inflate, Deno's
 * node:zlib calls ws's flush callback after its error handler has already dropped the stream, and
 * ws throws a TypeError outside any callback (or first reports an empty message). The chunking
 * checks run on every runtime.
 */
const differential = !("Deno" in globalThis);

/** Cases run by `npm test` (each waits for the codec); ANYWS_FUZZ_ITERATIONS runs more, from ANYWS_FUZZ_SEED on. */
const DEFAULT_ITERATIONS = 1000;

describe("core fuzzer, permessage-deflate", () => {
  test(`compressed streams in every chunking, both roles${differential ? ", against ws's Receiver" : " (ws not compared on Deno)"}`, async () => {
    const { iterations, seed } = settings(DEFAULT_ITERATIONS);
    const explained = new Map<string, number>();
    const kinds = new Set<string>();
    for (let i = 0; i < iterations; i++) {
      const c = makeDeflateCase(seed + i);
      const problem = await checkDeflateCase(c, differential, explained);
      if (problem) {
        assert.fail([
          `fuzz ${problem.check} problem with permessage-deflate (ws ${wsVersion}), seed ${c.seed} (ANYWS_FUZZ_SEED=${c.seed} ANYWS_FUZZ_ITERATIONS=1 replays the case)`,
          `  role: ${c.role} (the bytes are what its peer sent), kind: ${c.kind}, limits: ${JSON.stringify(c.limits)}`,
          `  bytes (${c.bytes.length}): ${hex(c.bytes)}`,
          `  split: ${problem.split.slice(0, 2000)}`,
          `  ${problem.message}`,
        ].join("\n"));
      }
      kinds.add(`${c.role} ${c.kind}`);
    }
    if (iterations >= DEFAULT_ITERATIONS) {
      for (const role of ["server", "client"]) for (const kind of DEFLATE_KINDS) assert.ok(kinds.has(`${role} ${kind}`), `no ${role} ${kind} case`);
      if (differential) assert.ok(explained.has("a compressed message judged once whole"), `the per-message inflating difference explained no case: ${JSON.stringify([...explained])}`);
      // anyws starts the message after a stream that ended at the tail on a new stream, where ws loses it.
      if (differential) assert.ok(explained.has("a DEFLATE stream that ends exactly at the appended tail"), `the stream ended at the tail explained no case: ${JSON.stringify([...explained])}`);
    }
  });
});
