/** A runtime whose accepted transports are its own, wrapped to record what each `write()` was given. */
import type { Runtime, Transport } from "../../adapters/shared/transport.ts";

export class LoggedTransport implements Transport {
  /** The number of chunks of each `write()`, in order. */
  readonly writes: number[] = [];
  /** The memory under every chunk written, in order. */
  readonly buffers: ArrayBufferLike[] = [];
  private readonly inner: Transport;
  constructor(inner: Transport) {
    this.inner = inner;
  }
  write(chunks: readonly Uint8Array[]): boolean {
    this.writes.push(chunks.length);
    for (const chunk of chunks) this.buffers.push(chunk.buffer);
    return this.inner.write(chunks);
  }
  get bufferedAmount(): number {
    return this.inner.bufferedAmount;
  }
  get highWaterMark(): number {
    return this.inner.highWaterMark;
  }
  get releasesChunks(): boolean {
    return this.inner.releasesChunks;
  }
  get remoteAddress(): string {
    return this.inner.remoteAddress;
  }
  get remotePort(): number {
    return this.inner.remotePort;
  }
  get afterReads(): Transport["afterReads"] {
    return this.inner.afterReads;
  }
  end(): void {
    this.inner.end();
  }
  destroy(): void {
    this.inner.destroy();
  }
  pause(): void {
    this.inner.pause();
  }
  resume(): void {
    this.inner.resume();
  }
}

/** `inner` with every transport it accepts wrapped in a `LoggedTransport`, listed in `transports` in order. */
export function loggingRuntime(inner: Runtime): { runtime: Runtime; transports: LoggedTransport[] } {
  const transports: LoggedTransport[] = [];
  const runtime: Runtime = {
    name: inner.name,
    dial: inner.dial,
    listen: (options, accept) =>
      inner.listen(options, (transport) => {
        const logged = new LoggedTransport(transport);
        transports.push(logged);
        return accept(logged);
      }),
  };
  return { runtime, transports };
}
