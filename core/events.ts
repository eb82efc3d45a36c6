/**
 * What a connection reports to its owner: the ready state (RFC 6455 §4.1, as in the WHATWG
 * WebSocket interface) and the events `pollEvents()` returns.
 */
import type { UpgradeRequest } from "./handshake.ts";
import type { HeaderList } from "./http.ts";
import { ConnectionSettings } from "./options.ts";

/** RFC 6455 §4.1 readyState values, as in the WHATWG WebSocket interface. */
export const ReadyState = { CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3 } as const;
export type ReadyState = (typeof ReadyState)[keyof typeof ReadyState];

export type ConnectionEvent =
  /** Server: a valid upgrade request; answer with `accept()` or `reject()`. */
  | { type: "upgrade"; request: UpgradeRequest }
  /** The opening handshake succeeded. `headers`: the request's (server) or the response's (client). */
  | { type: "open"; protocol: string; extensions: string; headers: HeaderList }
  /** The opening handshake failed: a bad request (server, with the status sent) or response (client). */
  | {
    type: "handshake_failed";
    reason: string;
    status?: number;
    statusText?: string;
    headers?: HeaderList;
    body?: Uint8Array;
  }
  | { type: "text"; data: string }
  /** A view of the received bytes: copy it to keep it past the next `receive()` into the same buffer. */
  | { type: "binary"; data: Uint8Array }
  /** A part of a message larger than `streamThreshold`; the last part has `fin` set. */
  | { type: "fragment"; binary: false; data: string; fin: boolean }
  | { type: "fragment"; binary: true; data: Uint8Array; fin: boolean }
  | { type: "ping"; data: Uint8Array }
  | { type: "pong"; data: Uint8Array }
  /** We failed the connection (RFC 6455 §7.1.7) with this close code, because of the peer. */
  | { type: "error"; code: number; reason: string }
  /**
   * The connection is over. `code`/`reason` are from the peer's close frame (1005 if it had no
   * code), or 1006 when none arrived (RFC 6455 §7.1.5); `wasClean`: both close frames were exchanged.
   * `sent` and `received` are the close frames each way (null: none), `initiator` who sent the
   * first one (null: neither did).
   */
  | {
    type: "close";
    code: number;
    reason: string;
    wasClean: boolean;
    sent: CloseFrame | null;
    received: CloseFrame | null;
    initiator: "local" | "remote" | null;
  };

/** A close frame's status code (1005 when it had none, RFC 6455 §7.1.5) and reason. */
export interface CloseFrame {
  code: number;
  reason: string;
}

const NO_EVENTS: readonly ConnectionEvent[] = Object.freeze([]);

/**
 * The events layer (options.ts tells the layers): events not yet polled, and the connection's
 * end held behind them. A failure or the answer to the peer's close frame waits until the events
 * received before it were polled, so that what the owner sends in reaction to them is written
 * before our close frame (RFC 6455 §5.5.1 allows data frames until then).
 */
export class EventQueue extends ConnectionSettings {
  // Created by the first event after a poll: an idle connection holds none.
  private eventList: ConnectionEvent[] | null = null;
  /** The held end. */
  private ending: (() => void) | null = null;
  /** The events before the held end were polled: it takes effect at the next poll (an owner may poll output while handling them). */
  private endingDue = false;

  protected emit(event: ConnectionEvent): void {
    (this.eventList ??= []).push(event);
  }

  /**
   * Events since the last call, oldest first. The owner polls events and output until neither
   * brings anything: a failure or the peer's close frame read after events takes effect at the
   * next call after those events were taken, so that what the owner sends in reaction (and
   * writes meanwhile) comes first.
   */
  pollEvents(): readonly ConnectionEvent[] {
    if (this.endingDue) this.releaseEnd();
    const events = this.eventList;
    if (events === null) return NO_EVENTS;
    this.eventList = null;
    if (this.ending !== null) this.endingDue = true;
    return events;
  }

  /** Runs `step`, which ends the connection, once the events before it have been polled; at once when there are none. */
  protected endAfterEvents(step: () => void): void {
    const first = this.ending;
    if (first !== null) {
      this.ending = () => {
        first();
        step();
      };
    } else if (this.eventList === null) {
      step();
    } else {
      this.ending = step;
    }
  }

  /** The held end takes effect now. */
  protected releaseEnd(): void {
    const step = this.ending;
    this.endingDue = false;
    if (step === null) return;
    this.ending = null;
    step();
  }
}
