/**
 * Which way the node:zlib codec runs a small job on each runtime: through the stream's native
 * handle, at once (adapters/zlib/codec.ts, `zlibSyncPath`, the one probe of node:zlib's private
 * internals). A Node, Deno or Bun release that drops one of them moves the codec to the stream
 * way, and this test says so on that runtime.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { runtimeName } from "../../../adapters/auto.ts";
import { createZlibCodec, zlibSyncPath } from "../../../adapters/zlib/codec.ts";

test(`${runtimeName}: node:zlib's native handle is found, and a small message is compressed at once`, async () => {
  assert.equal(await zlibSyncPath(), "native");
  const codec = createZlibCodec();
  const compressor = codec.createCompressor({ windowBits: 15, memLevel: 8, level: -1, huffmanOnly: false, resetAfterMessage: false });
  await compressor.compress(new TextEncoder().encode("load node:zlib"));
  const out = compressor.compress(new TextEncoder().encode("hello hello hello"));
  assert.ok(out instanceof Uint8Array, "compressed at once, not through a promise");
  compressor.close();
});
