/**
 * anyws core: the WebSocket protocol (RFC 6455) as a pure state machine — bytes in, events out.
 * Runs on any JavaScript runtime and any byte transport.
 */
export { Connection } from "./connection.ts";
export { ClientConnection, type ClientConnectionOptions } from "./client-connection.ts";
export { type ServerAcceptOptions, ServerConnection, type ServerConnectionOptions } from "./server-connection.ts";
export { type CloseFrame, type ConnectionEvent, ReadyState } from "./events.ts";
export { type ConnectionConfig, type ConnectionOptions, connectionConfig, type SendOptions } from "./options.ts";
export { closePayload } from "./closing.ts";
export { type PreparedMessage, prepareMessage } from "./writer.ts";
export { closeCodeName, formatTraceRecord, type TraceHook, type TraceRecord } from "./trace.ts";
export { type AsciiDecoder, type ByteAllocator, createTuning, PORTABLE_TUNING, type Tuning } from "./tuning.ts";
export { CloseCode, type ErrorCode, isValidCloseCode, WebSocketError } from "./errors.ts";
export {
  type ClientExtensionFactory,
  type EncodedPayload,
  type Extension,
  ExtensionError,
  type ServerExtensionFactory,
} from "./extension.ts";
export { type ExtensionOffer, type ExtensionParam, formatExtensions, parseExtensions } from "./extension-header.ts";
export {
  type Compressor,
  type CompressorOptions,
  DecompressedSizeError,
  type Decompressor,
  type DecompressorOptions,
  type DeflateAgreement,
  type DeflateCodec,
  PERMESSAGE_DEFLATE,
  PerMessageDeflate,
  type PerMessageDeflateOptions,
  perMessageDeflateClient,
  perMessageDeflateServer,
} from "./permessage-deflate.ts";
export { encodeFrame, FrameParser, type FrameHandler, Opcode, RSV1, RSV2, RSV3 } from "./frame.ts";
export {
  acceptKey,
  type AcceptOptions,
  generateKey,
  parseRequestTarget,
  type RejectOptions,
  type UpgradeRequest,
} from "./handshake.ts";
export { HeaderList, type HeadersInit, type HttpLimits } from "./http.ts";
export { applyMask } from "./mask.ts";
export { SlabAllocator } from "./bytes.ts";
export { isValidUtf8, Utf8Validator } from "./utf8.ts";
