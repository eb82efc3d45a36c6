/**
 * The Web Streams adapter: a `Transport` over any `ReadableStream<Uint8Array>` /
 * `WritableStream<Uint8Array>` pair (a socket's streams, a `TransformStream` pair, a pipe from
 * another TCP stack). Only Web Streams, promises and timers: it runs on Node, Deno and Bun.
 * The transport itself is the shared channel transport (adapters/shared/channel.ts); this file
 * turns a stream pair into its `ByteChannel`.
 */
import { type ByteChannel, createTransport, noop, type TransportOptions } from "../shared/channel.ts";
import type { Transport, TransportHandler } from "../shared/transport.ts";

export type StreamTransportOptions = TransportOptions;

/** A `ByteChannel` over a Web Streams pair. Locks both streams for the transport's lifetime. */
export function streamChannel(streams: {
  readable: ReadableStream<Uint8Array>;
  writable: WritableStream<Uint8Array>;
}): ByteChannel {
  const reader = streams.readable.getReader();
  const writer = streams.writable.getWriter();
  // A rejection we do not wait for must not become an unhandled rejection.
  writer.closed.catch(noop);
  reader.closed.catch(noop);
  return {
    async read() {
      const { value, done } = await reader.read();
      if (done) return null;
      if (!(value instanceof Uint8Array)) {
        throw new TypeError(`anyws: the readable stream produced a ${typeof value}, not a Uint8Array`);
      }
      return value;
    },
    write: (chunk) => writer.write(chunk),
    closeWrite: () => writer.close(),
    close(reason) {
      // Neither abort() nor cancel() is awaited: abort() waits for a write the sink is still
      // busy with, which, through a pipe whose other end stopped reading, may be never.
      // cancel() settles a pending read() at once.
      writer.abort(reason).catch(noop);
      reader.cancel(reason).catch(noop);
      try {
        writer.releaseLock();
      } catch {
        // a write still pending keeps the lock busy in some implementations
      }
      try {
        reader.releaseLock();
      } catch {
        // same
      }
    },
  };
}

/**
 * A `Transport` over a readable/writable byte pair. `bind` is called with the transport before
 * any event and returns the handler for them. `options` also carries the peer's address, if any.
 */
export function streamTransport(
  streams: { readable: ReadableStream<Uint8Array>; writable: WritableStream<Uint8Array> },
  bind: (t: Transport) => TransportHandler,
  options: StreamTransportOptions = {},
): Transport {
  return createTransport(streamChannel(streams), bind, options);
}
