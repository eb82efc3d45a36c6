/**
 * The in-process backplane: several servers in one process (tests, examples, a worker-less
 * setup) share a `MemoryHub` as they would share a broker.
 */
import type { BackplaneDriver, BackplaneSink } from "../shared/backplane.ts";

/** A broker in memory: what one of its drivers publishes on a channel, every driver subscribed to it receives. */
export class MemoryHub {
  private readonly drivers = new Set<MemoryDriver>();
  private available = true;

  /** A new driver on this hub, for one server. */
  driver(): BackplaneDriver {
    return new MemoryDriver(this);
  }

  /** Makes the hub unreachable: its drivers report down, and publishes are refused until `up()`. */
  down(): void {
    if (!this.available) return;
    this.available = false;
    for (const driver of this.drivers) driver.sink?.down();
  }

  /** Makes the hub reachable again: its drivers report up. */
  up(): void {
    if (this.available) return;
    this.available = true;
    for (const driver of this.drivers) driver.wentUp();
  }

  get isUp(): boolean {
    return this.available;
  }

  /** @internal */
  attach(driver: MemoryDriver): void {
    this.drivers.add(driver);
  }

  /** @internal */
  detach(driver: MemoryDriver): void {
    this.drivers.delete(driver);
  }

  /** @internal */
  publish(channel: string, envelope: Uint8Array): Promise<void> {
    if (!this.available) return Promise.reject(new Error("memory backplane hub is down"));
    // Later, as from a broker, and in publish order (microtasks run first in, first out).
    queueMicrotask(() => {
      if (!this.available) return;
      for (const driver of this.drivers) {
        if (driver.channels.has(channel)) driver.sink?.message(channel, envelope);
      }
    });
    return Promise.resolve();
  }
}

class MemoryDriver implements BackplaneDriver {
  sink: BackplaneSink | null = null;
  readonly channels = new Set<string>();
  private started: (() => void) | null = null;
  private readonly hub: MemoryHub;

  constructor(hub: MemoryHub) {
    this.hub = hub;
  }

  start(sink: BackplaneSink): Promise<void> {
    this.sink = sink;
    this.hub.attach(this);
    const started = new Promise<void>((resolve) => (this.started = resolve));
    if (this.hub.isUp) this.wentUp();
    return started;
  }

  /** @internal */
  wentUp(): void {
    this.sink?.up();
    this.started?.();
    this.started = null;
  }

  publish(channel: string, envelope: Uint8Array): Promise<void> {
    if (this.sink === null) return Promise.reject(new Error("memory backplane driver is not started"));
    return this.hub.publish(channel, envelope);
  }

  subscribe(channel: string): Promise<void> {
    this.channels.add(channel);
    return Promise.resolve();
  }

  unsubscribe(channel: string): Promise<void> {
    this.channels.delete(channel);
    return Promise.resolve();
  }

  close(): Promise<void> {
    this.hub.detach(this);
    this.sink = null;
    this.channels.clear();
    return Promise.resolve();
  }
}

const defaultHub = new MemoryHub();

/** A driver on `hub` (by default, one hub shared by the whole process). */
export function memoryBackplane(hub: MemoryHub = defaultHub): BackplaneDriver {
  return hub.driver();
}
