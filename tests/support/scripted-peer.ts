/**
 * The protocol of the scripted foreign peers (python_websockets_peer.py on Debian's
 * python3-websockets, native_peer.ts on Deno's and Bun's natives), run as child processes: the
 * parameters every test passes them (the exchange of tests/support/interop.ts, bytes as hex), our
 * server's answers to their clients, and the JSON lines they report what they saw with.
 */
import assert from "node:assert/strict";
import type { Child } from "./child.ts";
import {
  BIG,
  BIG_SIZE,
  BINARY,
  CLOSE_CODE,
  CLOSE_CODE_2,
  CLOSE_REASON,
  CLOSE_REASON_2,
  hex,
  PING,
  PING_2,
  type ServerRecord,
  TEXT,
} from "./interop.ts";

/** The exchange, as a peer script reads it from its argument (with `mode` and, for a client, `url`). */
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
 * Our server's answer to what a peer script's client asks (an `onMessage` for
 * startRecordingServer): "ping me" is a ping with PING_2 and then the text "pinged"; "close me" a
 * close with CLOSE_CODE_2/CLOSE_REASON_2; anything else is echoed.
 */
export function answerScriptedClient(record: ServerRecord, data: string | Uint8Array): boolean {
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

/** The peer's JSON lines so far (anything else it printed is left out). */
export function reports(child: Child): Record<string, unknown>[] {
  return child.lines.filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** The peer's last JSON line, which must exist. */
export function lastReport(child: Child): Record<string, unknown> {
  const last = reports(child).at(-1);
  assert.ok(last, `no report from the peer:\n${child.describe()}`);
  return last;
}

/** A message as a peer describes it: text exactly, bytes by length and SHA-256 (and hex if short). */
type Described = { text: string } | { length: number; sha256: string; hex?: string };

async function sha256(bytes: Uint8Array): Promise<string> {
  return hex(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>)));
}

/** Checks a peer's description of the exchange's three messages against what was sent. */
export async function assertDescribed(messages: unknown, what: string): Promise<void> {
  assert.ok(Array.isArray(messages), `${what}: no messages reported`);
  const m = messages as Described[];
  assert.ok(m.length >= 3, `${what}: ${m.length} messages`);
  assert.deepEqual(m[0], { text: TEXT }, `${what}: the text message`);
  assert.deepEqual(m[1], { length: BINARY.length, sha256: await sha256(BINARY), hex: hex(BINARY) }, `${what}: the binary message`);
  assert.deepEqual(m[2], { length: BIG.length, sha256: await sha256(BIG) }, `${what}: the 1 MiB message`);
}
