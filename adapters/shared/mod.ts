/** What every runtime adapter exports besides `serve` and `WebSocket`. */
export {
  checkOrigin,
  type ClosingHandshake,
  createServe,
  type SendResult,
  type ServeOptions,
  type ServerHandlers,
  type ServerOptions,
  ServerWebSocket,
  type ShutdownOptions,
  type UpgradeInfo,
  type UpgradeResponse,
  WebSocketServer,
} from "./server.ts";
export {
  type BinaryType,
  CloseEvent,
  createWebSocketClass,
  ErrorEvent,
  WebSocket as BaseWebSocket,
  type WebSocketEventHandler,
  type WebSocketEventMap,
  type WebSocketOptions,
} from "./websocket.ts";
export { ConnectionError } from "./errors.ts";
export { closeCodeName, formatTraceRecord, type TraceHook, type TraceRecord } from "../../core/mod.ts";
export type { SendData } from "./data.ts";
export type {
  Dial,
  Listen,
  Listener,
  Runtime,
  TlsClientOptions,
  TlsServerOptions,
  Transport,
  TransportHandler,
} from "./transport.ts";
export { CloseCode, type CloseFrame, type DeflateCodec, HeaderList, type PerMessageDeflateOptions, ReadyState, WebSocketError } from "../../core/mod.ts";
