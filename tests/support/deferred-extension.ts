/**
 * An identity extension whose `encode` waits until the test settles it (or answers at once when
 * `sync`): it holds a message between its send and its frames. With its factories for both roles.
 */
import { type ClientExtensionFactory, type EncodedPayload, type Extension, RSV1, type ServerExtensionFactory } from "../../core/mod.ts";

export class DeferredExtension implements Extension {
  readonly name = "x-deferred";
  readonly rsvBits = RSV1;
  sync = false;
  /** The encodings waiting, oldest first. */
  readonly waiting: { resolve(): void; reject(error: unknown): void; size: number }[] = [];
  disposed = false;

  encode(payload: Uint8Array): EncodedPayload | Promise<EncodedPayload> {
    if (this.sync) return { data: payload, rsv: RSV1 };
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve: () => resolve({ data: payload, rsv: RSV1 }), reject, size: payload.length });
    });
  }

  decode(payload: Uint8Array): Uint8Array {
    return payload;
  }

  /** Lets every encoding waiting finish. */
  finishAll(): void {
    for (const w of this.waiting.splice(0)) w.resolve();
  }

  dispose(): void {
    this.disposed = true;
    for (const w of this.waiting.splice(0)) w.reject(new Error("disposed"));
  }
}

/** A server factory that accepts the offer of `extension` with no parameters. */
export const serverFactory = (extension: Extension): ServerExtensionFactory => ({
  name: extension.name,
  negotiate: () => ({ params: [], extension }),
});

/** A client factory that offers `extension` with no parameters. */
export const clientFactory = (extension: Extension): ClientExtensionFactory => ({
  name: extension.name,
  offers: () => [[]],
  accept: () => extension,
});
