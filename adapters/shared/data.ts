/** Conversions between what users send and receive and the core's bytes and strings. */

/** Anything `send()` accepts. */
export type SendData = string | ArrayBuffer | ArrayBufferView | Blob;

/** The bytes of an ArrayBuffer or a view, without copying. */
export function viewBytes(data: ArrayBuffer | ArrayBufferView): Uint8Array {
  if (data instanceof Uint8Array) return data;
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return new Uint8Array(data);
}

export function isBlob(data: unknown): data is Blob {
  return typeof Blob !== "undefined" && data instanceof Blob;
}

/** Size in bytes as far as it is known without encoding (a string counts one byte per code unit). */
export function approximateSize(data: SendData): number {
  if (typeof data === "string") return data.length;
  if (isBlob(data)) return data.size;
  return data.byteLength;
}

/** A standalone ArrayBuffer holding exactly the bytes of `view`. */
export function toArrayBuffer(view: Uint8Array): ArrayBuffer {
  if (view.byteOffset === 0 && view.byteLength === view.buffer.byteLength && view.buffer instanceof ArrayBuffer) {
    return view.buffer;
  }
  return view.slice().buffer as ArrayBuffer;
}
