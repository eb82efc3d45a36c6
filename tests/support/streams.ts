/** In-memory Web Streams for tests: no socket at all, any runtime. */

export type Streams = { readable: ReadableStream<Uint8Array>; writable: WritableStream<Uint8Array> };

/** Two stream pairs, each end's writable feeding the other end's readable. */
export function pipePair(): [Streams, Streams] {
  const ab = new TransformStream<Uint8Array, Uint8Array>();
  const ba = new TransformStream<Uint8Array, Uint8Array>();
  return [
    { readable: ba.readable, writable: ab.writable },
    { readable: ab.readable, writable: ba.writable },
  ];
}
