/**
 * The `perMessageDeflate` option of the server and the client, on the codec the runtime entry
 * passes in: the shared layer loads no compression library of its own (node:zlib is a runtime
 * API; adapters/zlib/codec.ts is the codec each runtime entry gives).
 */
import {
  type ClientExtensionFactory,
  type DeflateCodec,
  PERMESSAGE_DEFLATE,
  perMessageDeflateClient,
  perMessageDeflateServer,
  type PerMessageDeflateOptions,
  type ServerExtensionFactory,
} from "../../core/mod.ts";

/** An error for `perMessageDeflate` asked of a server or client built without a codec. */
function noCodec(): Error {
  return new TypeError("anyws: perMessageDeflate needs a codec: pass perMessageDeflate: { codec }, or use a runtime adapter's class");
}

/** `perMessageDeflate: true` or options; false or absent: off. Adds nothing if `extensions` has it already. */
export function serverExtensions(
  extensions: ServerExtensionFactory[] | undefined,
  perMessageDeflate: boolean | PerMessageDeflateOptions | undefined,
  codec: DeflateCodec | undefined,
): ServerExtensionFactory[] | undefined {
  if (!perMessageDeflate || extensions?.some((e) => e.name === PERMESSAGE_DEFLATE)) return extensions;
  const options = perMessageDeflate === true ? {} : perMessageDeflate;
  const chosen = options.codec ?? codec;
  if (chosen === undefined) throw noCodec();
  return [...(extensions ?? []), perMessageDeflateServer({ ...options, codec: chosen })];
}

/**
 * `perMessageDeflate` true (the default) or options; false: off. Adds nothing if `extensions`
 * has it already, nor, by default, when there is no codec to run it on.
 */
export function clientExtensions(
  extensions: ClientExtensionFactory[] | undefined,
  perMessageDeflate: boolean | PerMessageDeflateOptions | undefined,
  codec: DeflateCodec | undefined,
): ClientExtensionFactory[] | undefined {
  if (perMessageDeflate === false || extensions?.some((e) => e.name === PERMESSAGE_DEFLATE)) return extensions;
  const options = perMessageDeflate === true || perMessageDeflate === undefined ? {} : perMessageDeflate;
  const chosen = options.codec ?? codec;
  if (chosen === undefined) {
    if (perMessageDeflate === undefined) return extensions;
    throw noCodec();
  }
  return [...(extensions ?? []), perMessageDeflateClient({ ...options, codec: chosen })];
}
