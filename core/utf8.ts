/**
 * Incremental UTF-8 validation (RFC 3629 §4, as required for text messages by RFC 6455 §8.1).
 * Fails at the first byte that cannot begin or continue a valid sequence, so a message can be
 * rejected as soon as its bad byte arrives, even when a character is split across chunks or
 * fragments: overlongs, surrogates (U+D800–U+DFFF) and code points above U+10FFFF are caught
 * by narrowing the range of the byte after the lead byte, as the WHATWG UTF-8 decoder does.
 * Also the decoders a connection turns received text into strings with.
 */
import { textEncoder } from "./bytes.ts";

export class Utf8Validator {
  private needed = 0; // continuation bytes still expected
  private lower = 0x80; // allowed range of the next continuation byte
  private upper = 0xbf;
  private failed = false;

  /** Validates `bytes[start:end]` after everything pushed before. False once anything was invalid. */
  push(bytes: Uint8Array, start = 0, end = bytes.length): boolean {
    if (this.failed) return false;
    let needed = this.needed;
    let lower = this.lower;
    let upper = this.upper;
    let i = start;
    while (i < end) {
      const b = bytes[i++];
      if (needed === 0) {
        if (b < 0x80) continue;
        if (b >= 0xc2 && b <= 0xdf) {
          needed = 1;
        } else if (b >= 0xe0 && b <= 0xef) {
          if (b === 0xe0) lower = 0xa0; // no overlong 3-byte forms
          else if (b === 0xed) upper = 0x9f; // no surrogates
          needed = 2;
        } else if (b >= 0xf0 && b <= 0xf4) {
          if (b === 0xf0) lower = 0x90; // no overlong 4-byte forms
          else if (b === 0xf4) upper = 0x8f; // nothing above U+10FFFF
          needed = 3;
        } else {
          this.failed = true;
          return false;
        }
      } else {
        if (b < lower || b > upper) {
          this.failed = true;
          return false;
        }
        lower = 0x80;
        upper = 0xbf;
        needed--;
      }
    }
    this.needed = needed;
    this.lower = lower;
    this.upper = upper;
    return true;
  }

  /** True when everything pushed so far is valid and no character is left unfinished. */
  get complete(): boolean {
    return !this.failed && this.needed === 0;
  }

  reset(): void {
    this.needed = 0;
    this.lower = 0x80;
    this.upper = 0xbf;
    this.failed = false;
  }
}

/** Whole-buffer validation. */
export function isValidUtf8(bytes: Uint8Array): boolean {
  const validator = new Utf8Validator();
  return validator.push(bytes) && validator.complete;
}

const utf8Decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * Replaces bytes that are not UTF-8 with U+FFFD instead of throwing: for bytes already validated,
 * and for short messages checked afterwards (`decodeText`), where it is cheaper than the fatal
 * decoder on some engines (`Tuning.lenientDecodeLimit`).
 */
export const lenientDecoder = new TextDecoder("utf-8", { ignoreBOM: true });

/** `bytes` decoded, or null if they are not UTF-8 (RFC 6455 §8.1). */
export function decodeUtf8(bytes: Uint8Array): string | null {
  try {
    return utf8Decoder.decode(bytes);
  } catch {
    return null;
  }
}

/**
 * `bytes` decoded, or null if they are not UTF-8. A short message is decoded leniently first:
 * without a U+FFFD in the result every byte was valid UTF-8 (the lenient decoder marks invalid
 * ones so); with one, the fatal decoder tells a real U+FFFD from a replaced byte.
 */
export function decodeText(bytes: Uint8Array, lenientDecodeLimit: number): string | null {
  if (bytes.length <= lenientDecodeLimit) {
    const text = lenientDecoder.decode(bytes);
    if (text.indexOf("\ufffd") === -1) return text;
  }
  return decodeUtf8(bytes);
}

/** Cuts `text` to at most `max` bytes of UTF-8 without splitting a character. */
export function truncateUtf8(text: string, max: number): string {
  if (text.length * 3 <= max) return text;
  let bytes = textEncoder.encode(text);
  if (bytes.length <= max) return text;
  let end = max;
  while (end > 0 && (bytes[end] & 0xc0) === 0x80) end--;
  bytes = bytes.subarray(0, end);
  return new TextDecoder().decode(bytes);
}
