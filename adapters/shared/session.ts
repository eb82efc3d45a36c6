/**
 * A session joins one core connection to one transport: bytes from the transport go into the
 * connection, the connection's output goes to the transport, its deadline drives one timer,
 * and its events go to the owner (a server-side socket or a client WebSocket).
 */
import type { Connection, ConnectionEvent } from "../../core/mod.ts";
import type { Transport, TransportHandler } from "./transport.ts";

/** What a session tells its owner. */
export interface SessionOwner {
  /** A protocol event. Handlers may call back into the session (send, close) from here. */
  onEvent(event: ConnectionEvent): void;
  /** The transport's buffer emptied after backpressure. */
  onDrain(): void;
  /** The transport is closed; the connection has reported its `close` event by now. */
  onTransportClose(error?: Error): void;
}

/** The clock every connection is told the time with. */
export const now: () => number = () => performance.now();

export class Session implements TransportHandler {
  readonly connection: Connection;
  transport: Transport | null = null;
  /** The last write found the transport over its high-water mark; cleared by drain. */
  backpressured = false;

  private readonly owner: SessionOwner;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private timerAt = Infinity;
  private flushing = false;
  private again = false;
  private ended = false;
  private closed = false;

  constructor(connection: Connection, owner: SessionOwner) {
    this.connection = connection;
    this.owner = owner;
  }

  /** The transport's handler, bound to `transport`. */
  bind(transport: Transport): TransportHandler {
    this.transport = transport;
    this.flush();
    return this;
  }

  get transportClosed(): boolean {
    return this.closed;
  }

  onData(chunk: Uint8Array): void {
    const connection = this.connection;
    connection.tick(now());
    connection.receive(chunk);
    this.flush();
  }

  onEnd(): void {
    this.connection.tick(now());
    this.connection.receiveEof();
    this.flush();
  }

  onDrain(): void {
    this.backpressured = false;
    this.owner.onDrain();
  }

  onClose(error?: Error): void {
    if (this.closed) return;
    this.closed = true;
    this.clearTimer();
    this.connection.receiveEof();
    this.flush();
    this.owner.onTransportClose(error);
  }

  /**
   * Writes the connection's output and dispatches its events, until handlers stop producing
   * more; ends the transport when the connection expects it; re-arms the timer. Re-entrant
   * calls (a handler that sends) are folded into the running loop.
   */
  flush(): void {
    if (this.flushing) {
      this.again = true;
      return;
    }
    this.flushing = true;
    const connection = this.connection;
    try {
      do {
        this.again = false;
        const output = connection.pollOutput();
        if (output.length !== 0 && this.transport !== null && !this.closed && !this.ended) {
          if (!this.transport.write(output)) this.backpressured = true;
        }
        const events = connection.pollEvents();
        for (let i = 0; i < events.length; i++) this.owner.onEvent(events[i]);
        if (events.length !== 0) this.again = true;
      } while (this.again);
      if (connection.closeExpected && !this.ended && this.transport !== null && !this.closed) {
        this.ended = true;
        this.transport.end();
      }
    } finally {
      this.flushing = false;
    }
    if (!this.closed) this.arm();
  }

  /** Ends the connection at once: no closing handshake, the transport is destroyed. */
  destroy(): void {
    this.connection.abort();
    this.flush();
    if (this.transport !== null && !this.closed) this.transport.destroy();
  }

  /** Keeps one timer at the connection's deadline; a later deadline waits for the timer to fire first. */
  private arm(): void {
    const at = this.connection.deadline;
    if (at >= this.timerAt) return;
    this.clearTimer();
    if (at === Infinity) return;
    this.timerAt = at;
    this.timer = setTimeout(this.fire, Math.max(0, Math.ceil(at - now())));
  }

  private readonly fire = (): void => {
    this.timer = undefined;
    this.timerAt = Infinity;
    this.connection.tick(now());
    this.flush();
  };

  private clearTimer(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = Infinity;
  }
}
