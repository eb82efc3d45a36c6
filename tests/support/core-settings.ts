/** Tunings for core tests (core/tuning.ts): what the adapters pass, in pure JS, and a way to give one to a group of tests. */
import { after, before } from "node:test";
import { decodeLatin1 } from "../../core/http.ts";
import { type AsciiDecoder, PORTABLE_TUNING, type Tuning } from "../../core/tuning.ts";

/** A decoder for `Tuning.asciiDecoder` in pure JS (the adapters pass Node's `Buffer#latin1Slice`). */
export const testAsciiDecoder: AsciiDecoder = decodeLatin1;

/**
 * The tuning a test file's helpers give the connections they create: `PORTABLE_TUNING`, or the
 * one a group of tests (`within`) runs with, set before its tests and put back after them.
 */
export class TuningScope {
  current: Tuning = PORTABLE_TUNING;

  within(tuning: Tuning, body: () => void): void {
    let previous: Tuning = PORTABLE_TUNING;
    before(() => {
      previous = this.current;
      this.current = tuning;
    });
    after(() => {
      this.current = previous;
    });
    body();
  }
}
