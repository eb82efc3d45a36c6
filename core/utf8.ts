/**
 * Incremental UTF-8 validation (RFC 3629 §4, as required for text messages by RFC 6455 §8.1).
 * Fails at the first byte that cannot begin or continue a valid sequence, so a message can be
 * rejected as soon as its bad byte arrives, even when a character is split across chunks or
 * fragments: overlongs, surrogates (U+D800–U+DFFF) and code points above U+10FFFF are caught
 * by narrowing the range of the byte after the lead byte, as the WHATWG UTF-8 decoder does.
 */
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
