/**
 * The backplane: how `publish` reaches subscribers in other processes. The server delivers to
 * its own subscribers first; a driver carries one envelope per publish to the other processes,
 * which deliver it to theirs and never relay it further.
 */

/** Where a driver reports what it receives and how its connection to the broker goes. */
export interface BackplaneSink {
  /** An envelope arrived on `channel` (bytes as published, any process's, our own included). */
  message(channel: string, envelope: Uint8Array): void;
  /** The broker connection failed at `stage`; the driver keeps retrying on its own. */
  error(stage: BackplaneStage, error: unknown): void;
  /** Subscribed and able to publish (first time, and again after each reconnect). */
  up(): void;
  /** Lost the broker: what is published until the next `up()` may not be delivered. */
  down(): void;
}

/** Where a broker error happened. */
export type BackplaneStage = "connect" | "subscribe" | "publish" | "receive" | "decode" | "close";

/**
 * Carries envelopes between processes: Redis, Node cluster IPC, BroadcastChannel, in memory.
 * A driver moves bytes only; envelopes, sequence numbers and gaps are the backplane's.
 */
export interface BackplaneDriver {
  /** Connects and from then on reports to `sink`; resolves once the first `up()` is reported. */
  start(sink: BackplaneSink): Promise<void>;
  /** Sends one envelope on `channel`; rejects (never throws synchronously) when the broker refused it. */
  publish(channel: string, envelope: Uint8Array): Promise<void>;
  /** Starts receiving `channel` (again after every reconnect, without being asked). */
  subscribe(channel: string): Promise<void>;
  unsubscribe(channel: string): Promise<void>;
  /** Stops; resolves when nothing of the driver's is left open. */
  close(): Promise<void>;
}
