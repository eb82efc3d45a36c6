import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { allocateBytes, ByteAccumulator, concatBytes, encodeUtf8, isSlabPiece, SerialQueue, SlabAllocator, unpooled } from "../../core/bytes.ts";
import { deferred } from "../support/time.ts";

const bytes = (...values: number[]) => Uint8Array.from(values);

/** Lets every already-settled promise callback run. */
async function flush(rounds = 10): Promise<void> {
  for (let i = 0; i < rounds; i++) await Promise.resolve();
}

describe("concatBytes", () => {
  test("joins chunks in order", () => {
    assert.deepEqual(concatBytes([bytes(1, 2), bytes(), bytes(3), bytes(4, 5, 6)]), bytes(1, 2, 3, 4, 5, 6));
  });

  test("no chunks give an empty buffer", () => {
    const out = concatBytes([]);
    assert.ok(out instanceof Uint8Array);
    assert.equal(out.length, 0);
  });

  test("a single chunk is returned as is, not copied", () => {
    const only = bytes(7, 8, 9);
    assert.equal(concatBytes([only]), only);
  });

  test("two or more chunks give a new buffer that does not alias them", () => {
    const a = bytes(1, 2);
    const b = bytes(3);
    const out = concatBytes([a, b]);
    a[0] = 99;
    assert.deepEqual(out, bytes(1, 2, 3));
  });

  test("uses the total it is given", () => {
    assert.deepEqual(concatBytes([bytes(1), bytes(2, 3)], 3), bytes(1, 2, 3));
  });

  test("works with views into larger buffers", () => {
    const big = Uint8Array.from({ length: 20 }, (_, i) => i);
    assert.deepEqual(concatBytes([big.subarray(3, 5), big.subarray(10, 13)]), bytes(3, 4, 10, 11, 12));
  });
});

describe("allocateBytes without an allocator", () => {
  test("every buffer has an ArrayBuffer of its own", () => {
    for (const size of [0, 1, 38, 2048, 5000]) {
      const out = allocateBytes(size, null);
      assert.equal(out.length, size);
      assert.equal(out.byteOffset, 0);
      assert.equal(out.buffer.byteLength, size);
      assert.equal(isSlabPiece(out), false);
    }
  });
});

describe("SlabAllocator", () => {
  test("small buffers share slabs, zero-filled, 8-byte aligned, without overlapping", () => {
    const allocator = new SlabAllocator();
    const pieces: Uint8Array[] = [];
    for (let i = 0; i < 2000; i++) {
      const piece = allocateBytes(1 + (i * 37) % 300, allocator);
      assert.ok(piece.every((b) => b === 0), `piece ${i} is zero-filled`);
      assert.equal(piece.byteOffset % 8, 0, `piece ${i} is 8-byte aligned`);
      assert.ok(isSlabPiece(piece));
      piece.fill(i & 0xff);
      pieces.push(piece);
    }
    pieces.forEach((piece, i) => assert.ok(piece.every((b) => b === (i & 0xff)), `piece ${i} was not written over`));
    const slabs = new Set(pieces.map((p) => p.buffer));
    assert.ok(slabs.size < pieces.length / 10, `2000 pieces in ${slabs.size} slabs`);
  });

  test("two allocators never cut from the same slab", () => {
    const one = new SlabAllocator();
    const two = new SlabAllocator();
    const buffers = new Set<ArrayBufferLike>();
    for (let i = 0; i < 100; i++) buffers.add(one.allocate(100).buffer);
    for (let i = 0; i < 100; i++) assert.ok(!buffers.has(two.allocate(100).buffer), "a piece of the other allocator's slab");
  });

  test("buffers over 2 KiB get an ArrayBuffer of their own", () => {
    const out = new SlabAllocator().allocate(2049);
    assert.equal(out.byteOffset, 0);
    assert.equal(out.buffer.byteLength, 2049);
    assert.equal(isSlabPiece(out), false);
  });

  test("a slab detached by a transfer is replaced: later buffers are whole and zero-filled", () => {
    const allocator = new SlabAllocator();
    let kept: Uint8Array;
    let moved: Uint8Array;
    do {
      kept = allocator.allocate(16);
      moved = allocator.allocate(16);
    } while (kept.buffer !== moved.buffer);
    structuredClone(moved.buffer, { transfer: [moved.buffer as ArrayBuffer] });
    assert.equal(kept.length, 0, "a transfer detaches every view of the slab (the documented hazard)");
    const next = allocator.allocate(16);
    assert.equal(next.length, 16);
    assert.ok(next.every((b) => b === 0));
    next.fill(1);
    assert.ok(allocator.allocate(16).every((b) => b === 0));
  });

  test("encodeUtf8 returns a buffer no later call writes over", () => {
    const allocator = new SlabAllocator();
    const first = encodeUtf8("héllo", allocator);
    const second = encodeUtf8("wörld", allocator);
    assert.ok(isSlabPiece(first) && isSlabPiece(second));
    assert.deepEqual(first, new TextEncoder().encode("héllo"));
    assert.deepEqual(second, new TextEncoder().encode("wörld"));
  });
});

describe("unpooled", () => {
  test("copies a piece of a slab into a buffer of its own, same bytes", () => {
    const piece = new SlabAllocator().allocate(10);
    piece.set([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    const own = unpooled(piece);
    assert.notEqual(own, piece);
    assert.notEqual(own.buffer, piece.buffer);
    assert.equal(own.buffer.byteLength, 10);
    assert.deepEqual(own, piece);
  });

  test("returns other buffers and views as they are, a caller's view included", () => {
    const whole = new Uint8Array(10);
    const view = new Uint8Array(100).subarray(5, 15);
    const large = new SlabAllocator().allocate(5000); // over the pooled size: a buffer of its own
    assert.equal(unpooled(whole), whole);
    assert.equal(unpooled(view), view);
    assert.equal(unpooled(large), large);
  });
});

describe("ByteAccumulator", () => {
  test("empty: take() gives an empty buffer and size 0", () => {
    const acc = new ByteAccumulator();
    assert.equal(acc.size, 0);
    assert.equal(acc.take().length, 0);
  });

  test("a single piece is returned without copying", () => {
    const acc = new ByteAccumulator();
    const piece = bytes(1, 2, 3);
    acc.push(piece);
    assert.equal(acc.size, 3);
    assert.equal(acc.take(), piece);
  });

  test("a few pieces are kept by reference until take() and joined in order", () => {
    const acc = new ByteAccumulator();
    const pieces = Array.from({ length: 10 }, (_, i) => bytes(i, i + 100));
    for (const p of pieces) acc.push(p);
    assert.equal(acc.size, 20);
    pieces[3][0] = 0xee; // a view, not a copy: the change shows in the result
    const out = acc.take();
    const expected = pieces.flatMap((p) => Array.from(p));
    assert.deepEqual(Array.from(out), expected);
    assert.equal(out[6], 0xee);
  });

  test("empty pieces are ignored", () => {
    const acc = new ByteAccumulator();
    const piece = bytes(5);
    acc.push(new Uint8Array(0));
    acc.push(piece);
    acc.push(new Uint8Array(0));
    assert.equal(acc.size, 1);
    assert.equal(acc.take(), piece);
  });

  test("many pieces are packed into one buffer (copied), order preserved", () => {
    const acc = new ByteAccumulator();
    const pieces = Array.from({ length: 200 }, (_, i) => Uint8Array.from({ length: (i % 7) + 1 }, (_, j) => (i * 7 + j) & 0xff));
    for (const p of pieces) acc.push(p);
    const expected = pieces.flatMap((p) => Array.from(p));
    pieces[0][0] ^= 0xff; // packed: the result no longer depends on the caller's pieces
    pieces[199][0] ^= 0xff;
    assert.equal(acc.size, expected.length);
    assert.deepEqual(Array.from(acc.take()), expected);
  });

  test("100,000 one-byte pushes give the right bytes", () => {
    const acc = new ByteAccumulator();
    for (let i = 0; i < 100_000; i++) acc.push(bytes((i * 31) & 0xff));
    assert.equal(acc.size, 100_000);
    const out = acc.take();
    assert.equal(out.length, 100_000);
    for (let i = 0; i < 100_000; i++) if (out[i] !== ((i * 31) & 0xff)) assert.fail(`byte ${i}`);
  });

  test("pieces of mixed sizes, small and large, across the packing threshold", () => {
    let seed = 7;
    const next = () => (seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0);
    for (const count of [1, 2, 31, 32, 33, 34, 64, 500]) {
      const acc = new ByteAccumulator();
      const expected: number[] = [];
      for (let i = 0; i < count; i++) {
        const size = next() % 5 === 0 ? 5000 + (next() % 5000) : next() % 40;
        const piece = Uint8Array.from({ length: size }, () => next() & 0xff);
        expected.push(...piece);
        acc.push(piece);
      }
      assert.equal(acc.size, expected.length, `count ${count}`);
      const out = acc.take();
      assert.equal(out.length, expected.length, `count ${count}`);
      assert.deepEqual(Array.from(out), expected, `count ${count}`);
    }
  });

  test("take() resets: size 0, and the next message starts empty (few and many pieces)", () => {
    for (const count of [3, 100]) {
      const acc = new ByteAccumulator();
      for (let i = 0; i < count; i++) acc.push(bytes(1, 2));
      const first = acc.take();
      assert.equal(first.length, 2 * count);
      assert.equal(acc.size, 0);
      assert.equal(acc.take().length, 0);
      acc.push(bytes(9));
      acc.push(bytes(8));
      assert.equal(acc.size, 2);
      assert.deepEqual(acc.take(), bytes(9, 8));
      // The first result is untouched by later use.
      assert.deepEqual(Array.from(first), Array.from({ length: 2 * count }, (_, i) => (i % 2 === 0 ? 1 : 2)));
    }
  });

  test("a packed result stays intact when the accumulator is reused", () => {
    const acc = new ByteAccumulator();
    for (let i = 0; i < 50; i++) acc.push(bytes(i));
    const first = acc.take();
    for (let i = 0; i < 50; i++) acc.push(bytes(200));
    acc.take();
    assert.deepEqual(Array.from(first), Array.from({ length: 50 }, (_, i) => i));
  });
});

describe("SerialQueue", () => {
  test("run(): steps run at once while nothing is pending, onSettled not called", () => {
    let settled = 0;
    const q = new SerialQueue(() => settled++, (e) => assert.fail(String(e)));
    const log: number[] = [];
    q.run(() => log.push(1));
    assert.deepEqual(log, [1]);
    q.run(() => log.push(2));
    assert.deepEqual(log, [1, 2]);
    assert.equal(q.immediate, true);
    assert.equal(settled, 0);
  });

  test("await() of a plain value delivers it at once", () => {
    const q = new SerialQueue(() => {}, (e) => assert.fail(String(e)));
    const log: unknown[] = [];
    q.await(42, (v) => log.push(v), (e) => log.push(["error", e]));
    assert.deepEqual(log, [42]);
    assert.equal(q.immediate, true);
  });

  test("a pending promise holds later steps, which then run in order", async () => {
    let settled = 0;
    const q = new SerialQueue(() => settled++, (e) => assert.fail(String(e)));
    const log: unknown[] = [];
    const d = deferred<string>();
    q.run(() => log.push("a"));
    q.await(d.promise, (v) => log.push(v), (e) => log.push(["error", e]));
    q.run(() => log.push("c"));
    q.await(7, (v) => log.push(v), (e) => log.push(["error", e]));
    q.run(() => log.push("e"));
    assert.deepEqual(log, ["a"]);
    assert.equal(q.immediate, false);
    await flush();
    assert.deepEqual(log, ["a"], "nothing runs before the promise settles");
    d.resolve("b");
    await flush(30);
    assert.deepEqual(log, ["a", "b", "c", 7, "e"]);
    assert.equal(q.immediate, true);
    assert.equal(settled, 4, "onSettled after each deferred step");
    q.run(() => log.push("f"));
    assert.deepEqual(log.at(-1), "f", "runs at once again once idle");
  });

  test("results of several promises are delivered in queue order, not settle order", async () => {
    const q = new SerialQueue(() => {}, (e) => assert.fail(String(e)));
    const log: unknown[] = [];
    const ds = [deferred<number>(), deferred<number>(), deferred<number>()];
    for (const d of ds) q.await(d.promise, (v) => log.push(v), (e) => log.push(["error", e]));
    ds[2].resolve(2);
    ds[1].resolve(1);
    await flush();
    assert.deepEqual(log, []);
    ds[0].resolve(0);
    await flush(30);
    assert.deepEqual(log, [0, 1, 2]);
  });

  test("a rejection goes to its onError, in order, and later steps still run", async () => {
    const crashes: unknown[] = [];
    const q = new SerialQueue(() => {}, (e) => crashes.push(e));
    const log: unknown[] = [];
    const first = deferred<number>();
    const failing = deferred<number>();
    q.await(first.promise, (v) => log.push(v), (e) => log.push(["error1", e]));
    q.await(failing.promise, (v) => log.push(v), (e) => log.push(["error2", (e as Error).message]));
    q.run(() => log.push("after"));
    failing.reject(new Error("boom")); // rejected before the one ahead of it settles
    await flush();
    assert.deepEqual(log, []);
    first.resolve(1);
    await flush(30);
    assert.deepEqual(log, [1, ["error2", "boom"], "after"]);
    assert.deepEqual(crashes, []);
  });

  test("a promise rejected early raises no unhandled rejection", async () => {
    const q = new SerialQueue(() => {}, () => {});
    const hold = deferred<void>();
    const errors: unknown[] = [];
    q.await(hold.promise, () => {}, () => {});
    q.await(Promise.reject(new Error("early")), () => {}, (e) => errors.push(e));
    // Give the runtime a macrotask turn in which an unhandled rejection would be reported.
    await new Promise((resolve) => setTimeout(resolve, 10));
    hold.resolve();
    await flush(30);
    assert.equal(errors.length, 1);
  });

  test("a step that throws goes to onCrash; the queue keeps going", async () => {
    const crashes: unknown[] = [];
    let settled = 0;
    const q = new SerialQueue(() => settled++, (e) => crashes.push((e as Error).message));
    const log: string[] = [];
    const d = deferred<number>();
    q.await(d.promise, () => {
      throw new Error("handler bug");
    }, () => {});
    q.run(() => log.push("next"));
    d.resolve(1);
    await flush(30);
    assert.deepEqual(crashes, ["handler bug"]);
    assert.deepEqual(log, ["next"]);
    assert.equal(settled, 2);
    assert.equal(q.immediate, true);
  });

  test("immediate: true while idle, false while a step waits, true inside the running deferred step", async () => {
    const q = new SerialQueue(() => {}, (e) => assert.fail(String(e)));
    const log: string[] = [];
    const d = deferred<string>();
    assert.equal(q.immediate, true);
    q.await(d.promise, (v) => {
      log.push(v);
      assert.equal(q.immediate, true, "inside the step");
      q.run(() => log.push("nested")); // queued from inside: runs at once, within the step
      log.push("after nested");
    }, () => {});
    q.run(() => log.push("queued"));
    assert.equal(q.immediate, false);
    d.resolve("value");
    await flush(30);
    assert.deepEqual(log, ["value", "nested", "after nested", "queued"]);
    assert.equal(q.immediate, true);
  });

  test("onSettled is called after each deferred step, once the step has run", async () => {
    const log: string[] = [];
    const q = new SerialQueue(() => log.push("settled"), (e) => assert.fail(String(e)));
    const d = deferred<string>();
    q.await(d.promise, (v) => log.push(v), () => {});
    q.run(() => log.push("step"));
    d.resolve("value");
    await flush(30);
    assert.deepEqual(log, ["value", "settled", "step", "settled"]);
  });
});
