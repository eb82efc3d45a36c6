/**
 * The python-websockets peer (tests/interop/python_websockets_peer.py, run with Debian's
 * python3-websockets) and the parameters every test passes it: the exchange of
 * tests/support/interop.ts, with bytes as hex.
 */
import { findPython, sourcePath } from "./child.ts";
import { BIG_SIZE, BINARY, CLOSE_CODE, CLOSE_CODE_2, CLOSE_REASON, CLOSE_REASON_2, hex, PING, PING_2, type ServerRecord, TEXT } from "./interop.ts";

/** The peer script, next to the interop tests. */
export const SCRIPT = sourcePath("../interop/python_websockets_peer.py", import.meta.url);

/** The first python3 that can `import websockets`, or null. */
export const python = findPython();

/** The exchange, as the script reads it from its argument (with `mode` and, for a client, `url`). */
export const PARAMETERS = {
  text: TEXT,
  binary_hex: hex(BINARY),
  big_size: BIG_SIZE,
  ping_hex: hex(PING),
  ping2_hex: hex(PING_2),
  close: [CLOSE_CODE, CLOSE_REASON],
  close2: [CLOSE_CODE_2, CLOSE_REASON_2],
};

/**
 * Our server's answer to what the script's client asks (an `onMessage` for startRecordingServer):
 * "ping me" is a ping with PING_2 and then the text "pinged"; "close me" a close with
 * CLOSE_CODE_2/CLOSE_REASON_2; anything else is echoed.
 */
export function answerPythonClient(record: ServerRecord, data: string | Uint8Array): boolean {
  if (data === "ping me") {
    record.socket.ping(PING_2);
    record.socket.send("pinged");
    return true;
  }
  if (data === "close me") {
    record.socket.close(CLOSE_CODE_2, CLOSE_REASON_2);
    return true;
  }
  return false;
}
