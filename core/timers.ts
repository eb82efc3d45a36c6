/**
 * Time without timers: the deadlines of a connection (opening handshake, idle, keepalive ping and
 * its pong, closing handshake, a client's wait for the server's TCP close), computed from the
 * owner's clock as told by `tick()`. The owner keeps the one real timer, set to `deadline`.
 * A layer of the connection (options.ts tells the layers).
 */
import { ClosingHandshake } from "./closing.ts";
import { ReadyState } from "./events.ts";
import type { ConnectionOptions } from "./options.ts";

/** What a reached deadline asks the connection to do. */
export const Due = {
  NOTHING: 0,
  /** The opening handshake took too long. */
  HANDSHAKE_TIMEOUT: 1,
  /** No answer to our keepalive ping: fail with 1011, without waiting for a close frame. */
  PONG_TIMEOUT: 2,
  /** Nothing either way for `idleTimeout`: close with 1001. */
  IDLE_TIMEOUT: 3,
  /** Nothing received for `keepaliveInterval`: send a ping. */
  KEEPALIVE_PING: 4,
  /** RFC 6455 §7.1.1: give up on the peer's close frame. */
  CLOSE_TIMEOUT: 5,
  /** RFC 6455 §7.1.1: a client may close TCP itself if the server does not. */
  TCP_CLOSE_TIMEOUT: 6,
} as const;

/** The timers layer (options.ts tells the layers). */
export class Timers extends ClosingHandshake {
  /** The time now, as last told by the owner. */
  protected now: number;
  private readonly startedAt: number;
  protected lastReceived: number;
  protected lastSent: number;
  /** When our keepalive ping went out; -1: none awaits an answer. */
  protected pingSentAt = -1;

  constructor(isClient: boolean, options: ConnectionOptions) {
    super(isClient, options);
    this.now = this.startedAt = this.lastReceived = this.lastSent = options.now ?? 0;
  }

  /** When `tick()` should be called next (ms on the owner's clock); Infinity if never. */
  get deadline(): number {
    const o = this.options;
    switch (this.state) {
      case ReadyState.CONNECTING:
        return o.handshakeTimeout > 0 && !this.transportDone ? this.startedAt + o.handshakeTimeout : Infinity;
      case ReadyState.OPEN: {
        let next = Infinity;
        if (o.idleTimeout > 0) next = Math.max(this.lastReceived, this.lastSent) + o.idleTimeout;
        if (o.keepaliveInterval > 0) {
          next = Math.min(
            next,
            this.pingSentAt >= 0 ? this.pingSentAt + o.pongTimeout : this.lastReceived + o.keepaliveInterval,
          );
        }
        return next;
      }
      case ReadyState.CLOSING:
        return this.stateChangedAt + o.closeTimeout;
      default:
        return this.transportDone ? Infinity : this.stateChangedAt + o.closeTimeout;
    }
  }

  /** Which deadline `now` has reached, one at a time, in order of precedence. */
  protected dueNow(): number {
    const now = this.now;
    if (now < this.deadline) return Due.NOTHING;
    const o = this.options;
    switch (this.state) {
      case ReadyState.CONNECTING:
        return Due.HANDSHAKE_TIMEOUT;
      case ReadyState.OPEN:
        if (this.pingSentAt >= 0 && now >= this.pingSentAt + o.pongTimeout) return Due.PONG_TIMEOUT;
        if (o.idleTimeout > 0 && now >= Math.max(this.lastReceived, this.lastSent) + o.idleTimeout) return Due.IDLE_TIMEOUT;
        if (o.keepaliveInterval > 0 && this.pingSentAt < 0) return Due.KEEPALIVE_PING;
        return Due.NOTHING;
      case ReadyState.CLOSING:
        return Due.CLOSE_TIMEOUT;
      default:
        return Due.TCP_CLOSE_TIMEOUT;
    }
  }
}
