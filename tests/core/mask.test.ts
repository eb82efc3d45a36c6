import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { applyMask, copyRange, maskInto, xorBytes } from "../../core/mask.ts";

/** The RFC 6455 §5.3 definition, byte by byte: octet i is XORed with key[(phase + i) mod 4]. */
function naiveMask(data: Uint8Array, key: Uint8Array, phase = 0): Uint8Array {
  const out = new Uint8Array(data.length);
  for (let i = 0; i < data.length; i++) out[i] = data[i] ^ key[(phase + i) % 4];
  return out;
}

/** Deterministic pseudo-random bytes (xorshift32). */
function pseudoRandom(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

/** A view of `length` bytes at `byteOffset` in a larger buffer, with guard bytes on both sides. */
function placed(content: Uint8Array, byteOffset: number): { view: Uint8Array; buffer: Uint8Array } {
  const buffer = new Uint8Array(byteOffset + content.length + 8).fill(0xa5);
  const view = new Uint8Array(buffer.buffer, byteOffset, content.length);
  view.set(content);
  return { view, buffer };
}

function assertGuardsIntact(buffer: Uint8Array, byteOffset: number, length: number, label: string): void {
  for (let i = 0; i < byteOffset; i++) assert.equal(buffer[i], 0xa5, `${label}: guard byte before the view changed`);
  for (let i = byteOffset + length; i < buffer.length; i++) {
    assert.equal(buffer[i], 0xa5, `${label}: guard byte after the view changed`);
  }
}

const maskWith = applyMask;
const maskIntoWith = maskInto;

const KEYS = [
  Uint8Array.of(0x37, 0xfa, 0x21, 0x3d), // RFC 6455 §5.7
  Uint8Array.of(0x01, 0x02, 0x04, 0x08),
  Uint8Array.of(0xff, 0x00, 0xff, 0x00),
  Uint8Array.of(0, 0, 0, 0),
];

for (const size of [4, 8] as const) describe(`applyMask, ${size}-byte words`, () => {
  const applyMask = (data: Uint8Array, key: Uint8Array, phase = 0) => maskWith(data, key, phase, size);
  test("RFC 6455 §5.7: masking \"Hello\" with 37 fa 21 3d gives 7f 9f 4d 51 58", () => {
    const data = new TextEncoder().encode("Hello");
    applyMask(data, KEYS[0]);
    assert.deepEqual(Array.from(data), [0x7f, 0x9f, 0x4d, 0x51, 0x58]);
  });

  test("equals the byte-by-byte reference for lengths 0..300, every byteOffset 0..7 and phase 0..3", () => {
    for (let length = 0; length <= 300; length++) {
      const content = pseudoRandom(length, length + 1);
      for (let byteOffset = 0; byteOffset < 8; byteOffset++) {
        for (let phase = 0; phase < 4; phase++) {
          const key = KEYS[(length + byteOffset + phase) % 2]; // non-trivial keys only
          const { view, buffer } = placed(content, byteOffset);
          applyMask(view, key, phase);
          const label = `length ${length}, byteOffset ${byteOffset}, phase ${phase}`;
          assert.deepEqual(view, naiveMask(content, key, phase), label);
          assertGuardsIntact(buffer, byteOffset, length, label);
        }
      }
    }
  });

  test("equals the reference for large sizes at every byteOffset and phase", () => {
    for (const length of [1023, 1024, 4097, 65535, 65536, 100_003]) {
      const content = pseudoRandom(length, length);
      for (let byteOffset = 0; byteOffset < 8; byteOffset++) {
        for (let phase = 0; phase < 4; phase++) {
          const key = KEYS[1];
          const { view, buffer } = placed(content, byteOffset);
          applyMask(view, key, phase);
          const label = `length ${length}, byteOffset ${byteOffset}, phase ${phase}`;
          assert.deepEqual(view, naiveMask(content, key, phase), label);
          assertGuardsIntact(buffer, byteOffset, length, label);
        }
      }
    }
  });

  test("the default phase is 0", () => {
    const content = pseudoRandom(77, 5);
    const data = content.slice();
    applyMask(data, KEYS[0]);
    assert.deepEqual(data, naiveMask(content, KEYS[0], 0));
  });

  test("a phase of 4 or more wraps around the key", () => {
    for (const phase of [4, 5, 6, 7, 13]) {
      for (const length of [7, 100]) {
        const content = pseudoRandom(length, phase);
        const data = content.slice();
        applyMask(data, KEYS[1], phase);
        assert.deepEqual(data, naiveMask(content, KEYS[1], phase % 4), `phase ${phase}, length ${length}`);
      }
    }
  });

  test("a zero key leaves the data unchanged; a non-zero key changes it", () => {
    const content = pseudoRandom(200, 9);
    const zero = content.slice();
    applyMask(zero, KEYS[3]);
    assert.deepEqual(zero, content);
    const masked = content.slice();
    applyMask(masked, KEYS[1]);
    assert.notDeepEqual(masked, content);
  });

  test("applying the mask twice restores the data", () => {
    for (const length of [0, 1, 3, 31, 32, 33, 255, 4096, 70_001]) {
      for (let byteOffset = 0; byteOffset < 4; byteOffset++) {
        for (let phase = 0; phase < 4; phase++) {
          const content = pseudoRandom(length, length * 7 + 1);
          const { view } = placed(content, byteOffset);
          applyMask(view, KEYS[0], phase);
          if (length > 0) assert.notDeepEqual(view, content, `masking changes the data (length ${length})`);
          applyMask(view, KEYS[0], phase);
          assert.deepEqual(view, content, `length ${length}, byteOffset ${byteOffset}, phase ${phase}`);
        }
      }
    }
  });

  test("piecewise application with carried phase equals whole application", () => {
    const cutsList: number[][] = [
      [1],
      [3],
      [5, 40],
      [31, 32, 33],
      [1, 2, 3, 4, 5, 6, 7, 8],
      [100, 101, 250, 251, 253],
      [37, 74, 111, 148, 185, 222, 259],
    ];
    const length = 300;
    for (const cuts of cutsList) {
      for (let startPhase = 0; startPhase < 4; startPhase++) {
        for (let byteOffset = 0; byteOffset < 8; byteOffset++) {
          const content = pseudoRandom(length, cuts.length * 31 + startPhase);
          const whole = content.slice();
          applyMask(whole, KEYS[0], startPhase);
          const { view } = placed(content, byteOffset);
          let phase = startPhase;
          let from = 0;
          for (const to of [...cuts, length]) {
            const piece = view.subarray(from, to);
            applyMask(piece, KEYS[0], phase);
            phase = (phase + piece.length) & 3;
            from = to;
          }
          assert.deepEqual(view, whole, `cuts ${cuts}, start phase ${startPhase}, byteOffset ${byteOffset}`);
        }
      }
    }
  });

  test("piecewise application at random cut points, one byte to many words per piece", () => {
    const content = pseudoRandom(20_000, 1234);
    const whole = content.slice();
    applyMask(whole, KEYS[1], 0);
    let seed = 99;
    for (let round = 0; round < 20; round++) {
      const data = content.slice();
      let from = 0;
      while (from < data.length) {
        seed = (seed * 1103515245 + 12345) >>> 0;
        const size = 1 + ((seed >>> 8) % (round < 10 ? 7 : 3000));
        const piece = data.subarray(from, Math.min(data.length, from + size));
        applyMask(piece, KEYS[1], from & 3);
        from += piece.length;
      }
      assert.deepEqual(data, whole, `round ${round}`);
    }
  });
});


for (const size of [4, 8] as const) describe(`maskInto, ${size}-byte words`, () => {
  const maskInto = (source: Uint8Array, key: Uint8Array, target: Uint8Array, offset: number) => maskIntoWith(source, key, target, offset, size);
  test("writes the masked copy at any source and target alignment, leaving the source and the rest of the target alone", () => {
    for (const length of [0, 5, 127, 128, 1023, 1024, 1031, 65_537]) {
      const content = pseudoRandom(length, length + 3);
      for (let sourceOffset = 0; sourceOffset < 8; sourceOffset++) {
        for (let targetOffset = 0; targetOffset < 8; targetOffset++) {
          const { view: source } = placed(content, sourceOffset);
          const target = new Uint8Array(targetOffset + length + 8).fill(0xa5);
          maskInto(source, KEYS[0], target, targetOffset);
          const label = `length ${length}, source offset ${sourceOffset}, target offset ${targetOffset}`;
          assert.deepEqual(target.subarray(targetOffset, targetOffset + length), naiveMask(content, KEYS[0]), label);
          assertGuardsIntact(target, targetOffset, length, label);
          assert.deepEqual(source, content, `${label}: the source is unchanged`);
        }
      }
    }
  });
});


describe("copyRange", () => {
  test("a new array of the range, masked from any phase (or copied as is without a key), the source unchanged", () => {
    const content = pseudoRandom(40, 7);
    for (let start = 0; start < 8; start++) {
      for (let length = 0; length <= 32 - start; length++) {
        for (let phase = 0; phase < 8; phase++) {
          const source = content.slice();
          const label = `start ${start}, length ${length}, phase ${phase}`;
          const copy = copyRange(source, start, start + length, KEYS[0], phase);
          assert.notEqual(copy.buffer, source.buffer, label);
          assert.deepEqual(copy, naiveMask(content.subarray(start, start + length), KEYS[0], phase), label);
          assert.deepEqual(copyRange(source, start, start + length, null, phase), content.slice(start, start + length), `${label}, no key`);
          assert.deepEqual(source, content, `${label}: the source is unchanged`);
        }
      }
    }
  });
});

describe("xorBytes", () => {
  test("returns the OR of the bytes it wrote: below 0x80 exactly when they are all ASCII", () => {
    const key = Uint8Array.from([0x11, 0x22, 0x44, 0x08]);
    for (let length = 0; length <= 9; length++) {
      for (let high = -1; high < length; high++) {
        // Bytes that unmask to ASCII, except the one at `high`, which unmasks to 0x80 | its index.
        const plain = Uint8Array.from({ length }, (_, i) => (i === high ? 0x80 | i : 0x20 + i));
        for (let phase = 0; phase < 4; phase++) {
          const masked = naiveMask(plain, key, phase);
          const target = new Uint8Array(length + 2);
          const bits = xorBytes(masked, 0, target, 1, length, key, phase);
          let expected = 0;
          for (const byte of plain) expected |= byte;
          assert.equal(bits, expected, `length ${length}, high byte at ${high}, phase ${phase}`);
          assert.deepEqual(target.subarray(1, 1 + length), plain);
        }
      }
    }
  });
});

describe("the mask word size (Tuning.maskWordSize)", () => {
  test("with 8, long ranges are masked through BigUint64Array; with 4 (the default), never", () => {
    const Original = globalThis.BigUint64Array;
    let made = 0;
    // Counts the views the masking loops create (the global is looked up at each call).
    globalThis.BigUint64Array = class extends Original {
      constructor(...args: ConstructorParameters<typeof Original>) {
        super(...args);
        made++;
      }
    } as typeof Original;
    try {
      const content = pseudoRandom(4096, 7);
      const data = content.slice();
      applyMask(data, KEYS[0], 0, 8);
      assert.deepEqual(data, naiveMask(content, KEYS[0]));
      maskInto(content, KEYS[0], new Uint8Array(4096), 0, 8);
      assert.equal(made, 3, "one view for applyMask, two for maskInto");
      applyMask(data, KEYS[0]);
      maskInto(content, KEYS[0], new Uint8Array(4096), 0);
      applyMask(data, KEYS[0], 0, 4);
      applyMask(data, KEYS[0], 0, 4);
      assert.equal(made, 3, "32-bit words take no BigUint64Array");
      assert.deepEqual(data, content);
    } finally {
      globalThis.BigUint64Array = Original;
    }
  });
});
