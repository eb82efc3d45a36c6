/**
 * Sends kept in order behind Blobs, for the client and the server socket alike: a Blob's bytes
 * arrive asynchronously, so each send made while one is being read waits for it.
 */
import { isBlob, type SendData, utf8Length } from "./data.ts";

/** What a queued send becomes once its Blob (if it was one) has been read. */
export type ReadData = string | ArrayBuffer | ArrayBufferView;

export class BlobQueue {
  /** Bytes of the queued messages not yet handed to the connection; part of `bufferedAmount`. */
  bytes = 0;
  private tail: Promise<void> | null = null;

  /** A Blob is being read: every send waits behind it. */
  get busy(): boolean {
    return this.tail !== null;
  }

  /**
   * Queues `data`: `send` gets it, its Blob read, after everything queued before; a Blob that
   * cannot be read goes to `fail` instead, and the queue goes on.
   */
  push(data: SendData, send: (data: ReadData) => void, fail: (error: Error) => void): void {
    const size = isBlob(data) ? data.size : typeof data === "string" ? utf8Length(data) : data.byteLength;
    this.bytes += size;
    const read = isBlob(data) ? data.arrayBuffer() : Promise.resolve(data);
    const done = (): void => {
      this.bytes -= size;
      if (this.tail === next) this.tail = null;
    };
    const next: Promise<void> = (this.tail ?? Promise.resolve()).then(() => read).then(
      (value) => {
        done();
        send(value);
      },
      (error) => {
        done();
        fail(error instanceof Error ? error : new Error(String(error)));
      },
    );
    this.tail = next;
  }
}
