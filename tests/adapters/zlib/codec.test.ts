/**
 * The node:zlib codec on its own, on every runtime (Node, Deno and Bun each ship node:zlib, with
 * different engines underneath): the sync-flush output, context takeover and its reset,
 * Huffman-only output for an 8-bit window, BFINAL, the size limit chunk by chunk with a real
 * zip bomb, errors, closing, serial order and the concurrency limit.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { constants, deflateRawSync, inflateRawSync } from "node:zlib";
import { createZlibCodec, type ZlibCodec } from "../../../adapters/zlib/codec.ts";
import { type CompressorOptions, DecompressedSizeError } from "../../../core/mod.ts";
import { jsonLike, zipBomb } from "../../support/deflate-data.ts";

const TAIL = new Uint8Array([0, 0, 0xff, 0xff]);
const encoder = new TextEncoder();

function compressor(codec: ZlibCodec, options: Partial<CompressorOptions> = {}) {
  return codec.createCompressor({ windowBits: 15, memLevel: 8, level: -1, huffmanOnly: false, resetAfterMessage: false, ...options });
}

function decompressor(codec: ZlibCodec, windowBits = 15, resetAfterMessage = false) {
  return codec.createDecompressor({ windowBits, resetAfterMessage });
}

function endsWithTail(data: Uint8Array): boolean {
  const n = data.length;
  return n >= 4 && data[n - 4] === 0 && data[n - 3] === 0 && data[n - 2] === 0xff && data[n - 1] === 0xff;
}

/** Resident memory now, and the most seen while `work` ran (sampled every few ms). */
async function peakRss<T>(work: () => Promise<T>): Promise<{ result: T | Error; before: number; peak: number }> {
  const before = process.memoryUsage().rss;
  let peak = before;
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 2);
  let result: T | Error;
  try {
    result = await work();
  } catch (error) {
    result = error as Error;
  } finally {
    clearInterval(timer);
  }
  peak = Math.max(peak, process.memoryUsage().rss);
  return { result, before, peak };
}

describe("zlib codec: compression", () => {
  test("each message ends with the empty stored block of a sync flush and inflates back", async () => {
    const codec = createZlibCodec();
    const c = compressor(codec);
    assert.equal(codec.stats.streams, 0, "no zlib stream before the first message");
    for (const text of ["Hello", jsonLike(5000), "x"]) {
      const out = await c.compress(encoder.encode(text));
      assert.ok(endsWithTail(out), "ends with 00 00 ff ff");
      assert.ok(out instanceof Uint8Array && !("readUInt8" in out), "a plain Uint8Array, not a Buffer");
    }
    assert.equal(codec.stats.streams, 1);
    c.close();
    assert.equal(codec.stats.streams, 0);
  });

  test("an empty message is an empty stored block: 00 00 00 ff ff", async () => {
    const codec = createZlibCodec();
    const c = compressor(codec);
    assert.deepEqual([...(await c.compress(new Uint8Array(0)))], [0, 0, 0, 0xff, 0xff]);
    // Also right after a flushed message (where zlib itself would write nothing).
    const d = decompressor(codec);
    const message = encoder.encode(jsonLike(2000));
    assert.deepEqual(await d.decompress([await c.compress(message)], Infinity), message);
    const empty = await c.compress(new Uint8Array(0));
    assert.deepEqual([...empty], [0, 0, 0, 0xff, 0xff]);
    assert.equal((await d.decompress([empty], Infinity)).length, 0);
    assert.deepEqual(await d.decompress([await c.compress(message)], Infinity), message, "the window still carries over");
    c.close();
    d.close();
  });

  test("takes a view into a larger buffer (byteOffset ≠ 0)", async () => {
    const codec = createZlibCodec();
    const c = compressor(codec);
    const d = decompressor(codec);
    const backing = encoder.encode("garbage|" + jsonLike(3000) + "|garbage");
    const view = backing.subarray(8, backing.length - 8);
    const out = await d.decompress([await c.compress(view)], Infinity);
    assert.deepEqual(out, view);
    c.close();
    d.close();
  });

  test("context takeover: the same message again compresses far smaller; with a reset it does not", async () => {
    const codec = createZlibCodec();
    const message = encoder.encode(jsonLike(4000));
    const keep = compressor(codec);
    const [a1, a2] = [await keep.compress(message), await keep.compress(message)];
    assert.ok(a2.length * 4 < a1.length, `second ${a2.length} bytes vs first ${a1.length}`);
    const reset = compressor(codec, { resetAfterMessage: true });
    const [b1, b2] = [await reset.compress(message), await reset.compress(message)];
    assert.deepEqual(b2, b1, "without context takeover, identical output");
    // And the takeover stream decodes only with the window of the first message.
    const d = decompressor(codec);
    assert.deepEqual(await d.decompress([a1], Infinity), message);
    assert.deepEqual(await d.decompress([a2], Infinity), message);
    keep.close();
    reset.close();
    d.close();
  });

  test("Huffman only (for an 8-bit window): no back-references, so a 256-byte window inflates it", async () => {
    const codec = createZlibCodec();
    const c = compressor(codec, { windowBits: 9, huffmanOnly: true });
    // Repeats 300 bytes apart: a normal 9-bit compressor would reach back past 256 bytes.
    const unit = encoder.encode(jsonLike(300));
    const message = new Uint8Array(unit.length * 20);
    for (let i = 0; i < 20; i++) message.set(unit, i * unit.length);
    const out = await c.compress(message);
    assert.ok(out.length < message.length, "still compressed (entropy coding)");
    const inflated = inflateRawSync(out, { windowBits: 8, finishFlush: constants.Z_SYNC_FLUSH });
    assert.deepEqual(new Uint8Array(inflated), message);
    c.close();
  });

  test("overlapping calls run in call order (the window carries over)", async () => {
    const codec = createZlibCodec();
    const c = compressor(codec);
    const d = decompressor(codec);
    const messages = Array.from({ length: 30 }, (_, i) => encoder.encode(jsonLike(500 + i * 300, i)));
    const compressed = await Promise.all(messages.map((m) => c.compress(m)));
    for (let i = 0; i < messages.length; i++) assert.deepEqual(await d.decompress([compressed[i]], Infinity), messages[i]);
    c.close();
    d.close();
  });
});

describe("zlib codec: decompression", () => {
  test("RFC 7692 §7.2.3.1, §7.2.3.2: one block, then a message that uses the shared window", async () => {
    const codec = createZlibCodec();
    const d = decompressor(codec);
    const hello = Uint8Array.from([0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]);
    const again = Uint8Array.from([0xf2, 0x00, 0x11, 0x00, 0x00]);
    assert.equal(new TextDecoder().decode(await d.decompress([hello, TAIL], Infinity)), "Hello");
    assert.equal(new TextDecoder().decode(await d.decompress([again, TAIL], Infinity)), "Hello");
    d.close();
  });

  test("RFC 7692 §7.2.3.4: a message ending in a BFINAL=1 block; the next message starts a new stream", async () => {
    const codec = createZlibCodec();
    const d = decompressor(codec);
    const final = Uint8Array.from([0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00]);
    assert.equal(new TextDecoder().decode(await d.decompress([final, TAIL], Infinity)), "Hello");
    // A whole deflate stream (Z_FINISH) of a larger message, then a sync-flushed one.
    const big = encoder.encode(jsonLike(100_000));
    const finished = new Uint8Array(deflateRawSync(big));
    assert.deepEqual(await d.decompress([finished, TAIL], Infinity), big);
    const c = compressor(codec);
    const next = encoder.encode(jsonLike(2000, 3));
    assert.deepEqual(await d.decompress([await c.compress(next)], Infinity), next);
    c.close();
    d.close();
  });

  test("a reset after each message when the peer does not take over its context", async () => {
    const codec = createZlibCodec();
    const d = decompressor(codec, 15, true);
    const hello = Uint8Array.from([0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]);
    const again = Uint8Array.from([0xf2, 0x00, 0x11, 0x00, 0x00]); // refers to the previous window
    assert.equal(new TextDecoder().decode(await d.decompress([hello, TAIL], Infinity)), "Hello");
    await assert.rejects(async () => d.decompress([again, TAIL], Infinity), (e: Error) => !(e instanceof DecompressedSizeError));
    d.close();
  });

  test("invalid data rejects (not as a size error), and so does every later call", async () => {
    const codec = createZlibCodec();
    const d = decompressor(codec);
    await assert.rejects(async () => d.decompress([Uint8Array.from([0xff, 0xff, 0xff]), TAIL], Infinity), (e: Error) => !(e instanceof DecompressedSizeError));
    await assert.rejects(async () => d.decompress([Uint8Array.from([0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]), TAIL], Infinity));
    assert.equal(codec.stats.streams, 0, "the broken stream is freed");
    d.close();
  });

  test("the size limit: exactly maxSize passes, one byte more rejects", async () => {
    const codec = createZlibCodec();
    const c = compressor(codec);
    const message = encoder.encode(jsonLike(50_000));
    const compressed = await c.compress(message);
    const ok = decompressor(codec);
    assert.equal((await ok.decompress([compressed], message.length)).length, message.length);
    const tooBig = decompressor(codec);
    await assert.rejects(async () => tooBig.decompress([compressed], message.length - 1), DecompressedSizeError);
    // With small output chunks, it stops within one chunk of the limit.
    const small = createZlibCodec({ chunkSize: 1024 });
    const chunked = decompressor(small);
    const error = await (async () => chunked.decompress([compressed], 10_000))().catch((e: unknown) => e);
    assert.ok(error instanceof DecompressedSizeError);
    assert.ok(error.inflated > 10_000 && error.inflated <= 11_024, `stopped at ${error.inflated}`);
    assert.equal(small.stats.streams, 0);
    c.close();
    ok.close();
    tooBig.close();
    assert.equal(codec.stats.streams, 0);
  });

  test("a 1 GiB zip bomb (~1 MiB) is stopped past a 4 MiB limit; memory stays far below the bomb", async () => {
    const bomb = await zipBomb(1024);
    assert.ok(bomb.length < 1.1 * 1024 * 1024, `${bomb.length} bytes of bomb`);
    const codec = createZlibCodec({ chunkSize: 16 * 1024 });
    const d = decompressor(codec);
    const limit = 4 * 1024 * 1024;
    const { result, before, peak } = await peakRss(async () => d.decompress([bomb, TAIL], limit));
    assert.ok(result instanceof DecompressedSizeError, `rejected with a size error: ${String(result)}`);
    assert.ok(result.inflated > limit && result.inflated <= limit + 16 * 1024, `stopped at ${result.inflated} bytes: at most one chunk past the limit`);
    const growth = (peak - before) / (1024 * 1024);
    assert.ok(growth < 128, `resident memory grew by ${growth.toFixed(1)} MiB for a 1024 MiB bomb`);
    assert.equal(codec.stats.streams, 0, "the stream was destroyed: nothing more is inflated");
    await assert.rejects(async () => d.decompress([Uint8Array.from([0x00]), TAIL], Infinity), DecompressedSizeError);
    d.close();
  });
});

describe("zlib codec: the synchronous way", () => {
  /** A codec whose zlib module is loaded: its first job ever is asynchronous (the import). */
  async function loaded(options: Parameters<typeof createZlibCodec>[0] = {}): Promise<ZlibCodec> {
    const codec = createZlibCodec(options);
    const c = compressor(codec);
    await c.compress(encoder.encode("load node:zlib"));
    c.close();
    return codec;
  }

  test("small messages are compressed and inflated at once, on every runtime", async () => {
    const codec = await loaded();
    const c = compressor(codec);
    const d = decompressor(codec);
    for (const text of [jsonLike(1024, 1), jsonLike(1024, 2), jsonLike(5000, 3), "x"]) {
      const message = encoder.encode(text);
      const out = c.compress(message);
      assert.ok(out instanceof Uint8Array, "compressed at once");
      assert.ok(endsWithTail(out) && !("readUInt8" in out), "a plain Uint8Array ending with 00 00 ff ff");
      const back = d.decompress([out.subarray(0, out.length - 4), TAIL], Infinity);
      assert.ok(back instanceof Uint8Array, "inflated at once");
      assert.deepEqual(back, message);
    }
    assert.equal(codec.stats.peak, 0, "no job went through the limiter");
    c.close();
    d.close();
    assert.equal(codec.stats.streams, 0);
  });

  test("the same bytes as the asynchronous way, with and without context takeover", async () => {
    const messages = Array.from({ length: 40 }, (_, i) => encoder.encode(i % 5 === 4 ? "" : jsonLike(200 + i * 1500, i)));
    for (const resetAfterMessage of [false, true]) {
      const outputs: Uint8Array[][] = [];
      for (const limit of [0, Infinity]) {
        const codec = await loaded({ syncCompressLimit: limit, syncInflateLimit: limit });
        const c = compressor(codec, { resetAfterMessage });
        const d = decompressor(codec, 15, resetAfterMessage);
        const out: Uint8Array[] = [];
        for (const m of messages) {
          const compressed = await c.compress(m);
          out.push(compressed);
          assert.deepEqual(await d.decompress([compressed], Infinity), m);
        }
        outputs.push(out);
        c.close();
        d.close();
      }
      assert.deepEqual(outputs[1], outputs[0], `resetAfterMessage=${resetAfterMessage}`);
    }
  });

  test("a message waits behind an asynchronous job of its engine, then the next one is at once again", async () => {
    const codec = await loaded({ syncCompressLimit: 16 * 1024 });
    const c = compressor(codec);
    const d = decompressor(codec);
    const big = encoder.encode(jsonLike(100_000, 1));
    const small = encoder.encode(jsonLike(2000, 2));
    const first = c.compress(big);
    const second = c.compress(small);
    assert.ok(first instanceof Promise && second instanceof Promise, "the small one is queued behind the big one");
    const [a, b] = await Promise.all([first, second]);
    const third = c.compress(small);
    assert.ok(third instanceof Uint8Array, "nothing pending: at once");
    for (const [compressed, message] of [[a, big], [b, small], [third, small]] as const) {
      assert.deepEqual(await d.decompress([compressed], Infinity), message, "the window carried over in call order");
    }
    c.close();
    d.close();
  });

  test("inflating goes on asynchronously past syncInflateLimit, after the output made at once", async () => {
    const codec = await loaded({ syncInflateLimit: 32 * 1024 });
    const c = compressor(codec);
    const d = decompressor(codec);
    const messages = [jsonLike(200_000, 1), jsonLike(20_000, 2), jsonLike(300_000, 3)].map((t) => encoder.encode(t));
    for (const m of messages) {
      const compressed = await c.compress(m);
      const result = d.decompress([compressed.subarray(0, compressed.length - 4), TAIL], Infinity);
      assert.equal(result instanceof Promise, m.length > 32 * 1024 + 16 * 1024, `${m.length} bytes`);
      assert.deepEqual(await result, m);
    }
    c.close();
    d.close();
  });

  test("invalid data throws at once (not as a size error); every later call fails; the stream is freed", async () => {
    const codec = await loaded();
    const d = decompressor(codec);
    assert.throws(() => d.decompress([Uint8Array.from([0xff, 0xff, 0xff]), TAIL], Infinity), (e: Error) => !(e instanceof DecompressedSizeError));
    assert.equal(codec.stats.streams, 0);
    await assert.rejects(async () => d.decompress([Uint8Array.from([0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]), TAIL], Infinity));
    d.close();
  });

  test("the size limit at once: one byte over rejects, within one output chunk", async () => {
    const codec = await loaded({ chunkSize: 1024, syncInflateLimit: Infinity });
    const c = compressor(codec);
    const message = encoder.encode(jsonLike(50_000));
    const compressed = await c.compress(message);
    const ok = decompressor(codec);
    assert.equal((ok.decompress([compressed], message.length) as Uint8Array).length, message.length);
    const d = decompressor(codec);
    let error: unknown;
    try {
      d.decompress([compressed], 10_000);
    } catch (e) {
      error = e;
    }
    assert.ok(error instanceof DecompressedSizeError, String(error));
    assert.ok(error.inflated > 10_000 && error.inflated <= 11_024, `stopped at ${error.inflated}`);
    c.close();
    ok.close();
    d.close();
    assert.equal(codec.stats.streams, 0);
  });

  test("a small zip bomb (~64 KiB → 64 MiB) holds the thread only up to syncInflateLimit, then fails past the limit", async () => {
    const bomb = await zipBomb(64);
    assert.ok(bomb.length < 70 * 1024, `${bomb.length} bytes`);
    const codec = await loaded({ syncInflateLimit: 256 * 1024 });
    const d = decompressor(codec);
    const limit = 16 * 1024 * 1024;
    const result = d.decompress([bomb, TAIL], limit);
    assert.ok(result instanceof Promise, "handed over to the asynchronous way");
    const error = await result.catch((e: unknown) => e);
    assert.ok(error instanceof DecompressedSizeError, String(error));
    assert.ok(error.inflated > limit && error.inflated <= limit + 16 * 1024, `stopped at ${error.inflated}`);
    d.close();
    assert.equal(codec.stats.streams, 0);
  });

  test("RFC 7692 §7.2.3.4 at once: a message ending in a BFINAL=1 block; the next starts a new stream", async () => {
    const codec = await loaded();
    const d = decompressor(codec);
    const final = Uint8Array.from([0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00]);
    const hello = d.decompress([final, TAIL], Infinity);
    assert.ok(hello instanceof Uint8Array);
    assert.equal(new TextDecoder().decode(hello), "Hello");
    assert.equal(codec.stats.streams, 0, "the ended stream is freed");
    const c = compressor(codec);
    const next = encoder.encode(jsonLike(2000, 3));
    assert.deepEqual(d.decompress([c.compress(next) as Uint8Array], Infinity), next);
    c.close();
    d.close();
  });

  const hex = (text: string) => Uint8Array.from(text.match(/../g)!, (h) => parseInt(h, 16));

  test("a DEFLATE stream that ends exactly at the end of the tail: the next message starts a new stream, none is lost", async () => {
    for (const limit of [Infinity, 0]) {
      const codec = await loaded({ syncInflateLimit: limit });
      const d = decompressor(codec);
      // A fixed block of 53 "a", then a BFINAL stored block whose LEN and NLEN are the tail.
      assert.equal(new TextDecoder().decode(await d.decompress([hex("4a4c24030002"), TAIL], Infinity)), "a".repeat(53));
      assert.equal(new TextDecoder().decode(await d.decompress([hex("2acf2fca490100"), TAIL], Infinity)), "world", `limit ${limit}`);
      assert.equal(new TextDecoder().decode(await d.decompress([hex("2acf2fca490100"), TAIL], Infinity)), "world", `limit ${limit}`);
      d.close();
      assert.equal(codec.stats.streams, 0);
    }
  });

  test("after the end of a DEFLATE stream, a message that refers to the old window fails: never inflated wrong", async () => {
    for (const limit of [Infinity, 0]) {
      const codec = await loaded({ syncInflateLimit: limit });
      const d = decompressor(codec);
      const final = Uint8Array.from([0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00]);
      assert.equal(new TextDecoder().decode(await d.decompress([final, TAIL], Infinity)), "Hello");
      const again = Uint8Array.from([0xf2, 0x00, 0x11, 0x00, 0x00]); // "Hello" from the previous window
      await assert.rejects(async () => d.decompress([again, TAIL], Infinity), (e: Error) => !(e instanceof DecompressedSizeError), `limit ${limit}`);
      d.close();
    }
  });

  test("bytes after the end of the DEFLATE stream in the same message are invalid data (RFC 7692 §7.2.2)", async () => {
    const hello = hex("cb48cdc9c90700"); // "hello", ending in a BFINAL=1 block
    for (const limit of [Infinity, 0]) {
      for (const chunks of [[hex("cb48cdc9c9070041"), TAIL], [hello, hex("41"), TAIL], [hello, hex("0000ffff"), TAIL]]) {
        const codec = await loaded({ syncInflateLimit: limit });
        const d = decompressor(codec);
        await assert.rejects(async () => d.decompress(chunks, Infinity), (e: Error) => !(e instanceof DecompressedSizeError), `limit ${limit}`);
        d.close();
        assert.equal(codec.stats.streams, 0);
      }
      // The tail alone after the end is not such data.
      const codec = await loaded({ syncInflateLimit: limit });
      const d = decompressor(codec);
      assert.equal(new TextDecoder().decode(await d.decompress([hello, TAIL], Infinity)), "hello");
      d.close();
    }
  });

  test("limits of 0: every job asynchronous", async () => {
    const codec = await loaded({ syncCompressLimit: 0, syncInflateLimit: 0 });
    const c = compressor(codec);
    const d = decompressor(codec);
    const out = c.compress(encoder.encode(jsonLike(2000)));
    assert.ok(out instanceof Promise);
    const back = d.decompress([await out], Infinity);
    assert.ok(back instanceof Promise);
    await back;
    c.close();
    d.close();
    assert.throws(() => createZlibCodec({ syncCompressLimit: -1 }), RangeError);
    assert.throws(() => createZlibCodec({ syncInflateLimit: Number.NaN }), RangeError);
  });
});

describe("zlib codec: closing and concurrency", () => {
  test("close rejects the running and the queued jobs and frees the stream", async () => {
    const codec = createZlibCodec({ syncCompressLimit: 64 * 1024 });
    const c = compressor(codec);
    const big = encoder.encode(jsonLike(2_000_000));
    const running = c.compress(big); // over the codec's syncCompressLimit: asynchronous
    const queued = c.compress(big);
    assert.ok(running instanceof Promise && queued instanceof Promise);
    c.close();
    await assert.rejects(running);
    await assert.rejects(queued);
    await assert.rejects(async () => c.compress(big));
    assert.equal(codec.stats.streams, 0);
    assert.equal(codec.stats.running, 0);
  });

  test("the limiter: 40 engines compressing at once never run more than the limit", async () => {
    const codec = createZlibCodec({ concurrencyLimit: 3, syncCompressLimit: 0, syncInflateLimit: 0 });
    const pairs = Array.from({ length: 40 }, () => ({ c: compressor(codec), d: decompressor(codec) }));
    const message = encoder.encode(jsonLike(64 * 1024));
    const results = await Promise.all(pairs.map(async ({ c, d }) => {
      const compressed = await Promise.all([c.compress(message), c.compress(message)]);
      return [await d.decompress([compressed[0]], Infinity), await d.decompress([compressed[1]], Infinity)];
    }));
    for (const [a, b] of results) {
      assert.deepEqual(a, message);
      assert.deepEqual(b, message);
    }
    assert.ok(codec.stats.peak <= 3, `peak ${codec.stats.peak}`);
    assert.equal(codec.stats.peak, 3, "the limit is used");
    assert.equal(codec.stats.running, 0);
    assert.equal(codec.stats.queued, 0);
    for (const { c, d } of pairs) {
      c.close();
      d.close();
    }
    assert.equal(codec.stats.streams, 0);
  });

  test("options are checked", () => {
    assert.throws(() => createZlibCodec({ concurrencyLimit: 0 }), RangeError);
    assert.throws(() => createZlibCodec({ chunkSize: 1.5 }), RangeError);
  });
});
