// The only host globals core/ may use (TextEncoder, TextDecoder, typed arrays, and
// crypto.getRandomValues as the default source of randomness), declared by hand so
// tsconfig.core.json can type-check core/ with no DOM, Node, Deno or Bun types at all, which keeps
// core/ runnable on any of them (README, "Architecture"). Every runtime anyws supports provides
// these. Used by tsconfig.core.json only.

interface TextEncoderEncodeIntoResult {
  read: number;
  written: number;
}

interface TextEncoder {
  readonly encoding: string;
  encode(input?: string): Uint8Array<ArrayBuffer>;
  encodeInto(source: string, destination: Uint8Array): TextEncoderEncodeIntoResult;
}

declare var TextEncoder: {
  prototype: TextEncoder;
  new (): TextEncoder;
};

interface TextDecoderOptions {
  fatal?: boolean;
  ignoreBOM?: boolean;
}

interface TextDecodeOptions {
  stream?: boolean;
}

interface TextDecoder {
  readonly encoding: string;
  readonly fatal: boolean;
  readonly ignoreBOM: boolean;
  decode(input?: ArrayBuffer | ArrayBufferView, options?: TextDecodeOptions): string;
}

declare var TextDecoder: {
  prototype: TextDecoder;
  new (label?: string, options?: TextDecoderOptions): TextDecoder;
};

interface Crypto {
  getRandomValues<T extends ArrayBufferView | null>(array: T): T;
}

declare var crypto: Crypto;
