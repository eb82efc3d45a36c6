/**
 * adapters/shared/session.ts: the deadlines of many sessions share one runtime timer. Each
 * session here drives a real ServerConnection that never gets an upgrade request, so its
 * deadline is the handshake timeout, answered with 408 (RFC 7231 §6.5.7) and the end of the
 * transport; the transport is an in-memory one that records when that happened.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { ServerConnection } from "../../core/mod.ts";
import { Session, type SessionOwner } from "../../adapters/shared/session.ts";
import type { Transport } from "../../adapters/shared/transport.ts";
import { decodeLatin1 } from "../../core/http.ts";
import { delay } from "../support/time.ts";

/** A session whose connection's handshake times out after `timeout` ms; `ended` lists the order. */
function sessionTimingOut(name: string, timeout: number, ended: string[]) {
  const connection = new ServerConnection({ handshakeTimeout: timeout, now: performance.now() });
  const owner: SessionOwner = { onEvent() {}, onDrain() {}, onTransportClose() {} };
  const session = new Session(connection, owner);
  const written: string[] = [];
  const transport: Transport = {
    write(chunks) {
      for (const chunk of chunks) written.push(decodeLatin1(chunk));
      return true;
    },
    bufferedAmount: 0,
    end() {
      ended.push(name);
      session.onClose();
    },
    destroy() {
      session.onClose();
    },
    pause() {},
    resume() {},
    remoteAddress: "",
    remotePort: 0,
  };
  session.bind(transport);
  return { session, written };
}

describe("session deadlines", () => {
  test("many sessions' deadlines are reached in order, each once; a closed session's never", async () => {
    const ended: string[] = [];
    const c = sessionTimingOut("c", 90, ended);
    const a = sessionTimingOut("a", 30, ended);
    const gone = sessionTimingOut("gone", 45, ended);
    const b = sessionTimingOut("b", 60, ended);
    const alsoA = sessionTimingOut("a2", 30, ended);
    gone.session.onClose(); // the peer went away first: its deadline is dropped
    const deadline = performance.now() + 5000;
    while (ended.length < 4 && performance.now() < deadline) await delay(10);
    assert.deepEqual(ended, ["a", "a2", "b", "c"]);
    for (const s of [a, alsoA, b, c]) {
      assert.equal(s.written.length, 1, "one response each");
      assert.match(s.written[0], /^HTTP\/1\.1 408 /);
    }
    assert.deepEqual(gone.written, []);
    await delay(120);
    assert.deepEqual(ended, ["a", "a2", "b", "c"], "no deadline fires twice");
  });
});
