/** Errors the shared layer reports to applications. */

/** The connection failed: the peer broke the protocol, or the transport failed. */
export class ConnectionError extends Error {
  /** The close code sent to the peer (RFC 6455 §7.4.1), or 1006 when none could be sent. */
  readonly closeCode: number;
  constructor(message: string, closeCode: number, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "ConnectionError";
    this.closeCode = closeCode;
  }
}
