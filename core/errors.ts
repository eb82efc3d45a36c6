/**
 * Errors thrown by the core for local misuse. Peer misbehaviour never throws:
 * it becomes an event and a close frame (see connection.ts).
 */

/** Stable machine-readable error codes. */
export type ErrorCode =
  | "ERR_INVALID_STATE" // command not allowed in the current state (e.g. send after close)
  | "ERR_INVALID_CLOSE_CODE" // close code we were asked to send is not sendable (RFC 6455 §7.4)
  | "ERR_REASON_TOO_LONG" // close reason over 123 bytes (RFC 6455 §5.5.1, §5.5)
  | "ERR_CONTROL_PAYLOAD_TOO_LONG" // ping/pong payload over 125 bytes (RFC 6455 §5.5)
  | "ERR_INVALID_UTF8" // text we were asked to send is not valid UTF-16 / UTF-8
  | "ERR_INVALID_HEADER" // header name/value with CR, LF, NUL or bad token chars
  | "ERR_INVALID_PROTOCOL" // subprotocol that is not an RFC 7230 token
  | "ERR_INVALID_ARGUMENT"; // any other bad argument

export class WebSocketError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string) {
    super(message);
    this.name = "WebSocketError";
    this.code = code;
  }
}

/** Close codes (RFC 6455 §7.4.1, IANA registry). */
export const CloseCode = {
  NORMAL: 1000,
  GOING_AWAY: 1001,
  PROTOCOL_ERROR: 1002,
  UNSUPPORTED_DATA: 1003,
  NO_STATUS: 1005, // never on the wire
  ABNORMAL: 1006, // never on the wire
  INVALID_PAYLOAD: 1007,
  POLICY_VIOLATION: 1008,
  MESSAGE_TOO_BIG: 1009,
  MANDATORY_EXTENSION: 1010,
  INTERNAL_ERROR: 1011,
  SERVICE_RESTART: 1012,
  TRY_AGAIN_LATER: 1013,
  BAD_GATEWAY: 1014,
  TLS_HANDSHAKE: 1015, // never on the wire
} as const;

/**
 * Whether a close code may appear in a close frame (RFC 6455 §7.4.1, §7.4.2):
 * 1000–1003 and 1007–1014 are defined, 3000–4999 are for libraries and applications;
 * 1004–1006 and 1015 are reserved or must not be sent, and everything else is invalid.
 */
export function isValidCloseCode(code: number): boolean {
  return (
    (code >= 1000 && code <= 1003) ||
    (code >= 1007 && code <= 1014) ||
    (code >= 3000 && code <= 4999)
  );
}
