/**
 * The chat demo's room copies (examples/chat/rooms.ts): every process applies the same changes,
 * in whatever order they reach it, and must end with the same history and board; a merge adds
 * what another copy has without losing what only this one has.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import type { Entry } from "../../examples/chat/rooms.ts";
import { RoomState } from "../../examples/chat/rooms.ts";

const LIMITS = { history: 4, maxBoardBytes: 64 };

const entry = (node: string, n: number, seq: number, text = `${node}${n}`): Entry => ({
  id: `${node}.${n}`,
  seq,
  from: { id: `${node}.1`, nick: node },
  text,
  ts: 0,
});
const stroke = (x: number) => new Uint8Array([1, 0, 3, 1, x, 0, 0, 0]);

type Change = (room: RoomState) => void;

/** A room after `changes`, in that order. */
function after(changes: Change[]): RoomState {
  const room = new RoomState("lobby", LIMITS);
  for (const change of changes) change(room);
  return room;
}

const view = (room: RoomState) => ({
  history: room.history.map((e) => e.id),
  board: room.board,
  strokes: room.strokes.map((s) => s[4]).sort((a, b) => a - b),
  message: [...room.boardMessage()].length,
});

test("history: two processes writing at once end in one order everywhere, the newest kept", () => {
  // a and b both wrote their first message on top of seq 0, then b answered at seq 2.
  const changes: Change[] = [
    (r) => r.addEntry(entry("a", 1, 1)),
    (r) => r.addEntry(entry("b", 1, 1)),
    (r) => r.addEntry(entry("b", 2, 2)),
    (r) => r.addEntry(entry("a", 2, 3)),
    (r) => r.addEntry(entry("b", 3, 4)),
  ];
  const forward = after(changes);
  const backward = after([...changes].reverse());
  const shuffled = after([changes[2], changes[4], changes[0], changes[3], changes[1]]);
  assert.deepEqual(forward.history.map((e) => e.id), ["b.1", "b.2", "a.2", "b.3"], "(seq, id) order, the oldest forgotten past 4");
  assert.deepEqual(view(backward), view(forward));
  assert.deepEqual(view(shuffled), view(forward));
  assert.equal(forward.seq, 4);
  // The same message twice is kept once.
  assert.equal(forward.addEntry(entry("b", 3, 4)), false);
  assert.equal(forward.history.length, 4);
});

test("board: a clear drops the strokes of the board it cleared, wherever they arrive", () => {
  const changes: Change[] = [
    (r) => r.addStroke(stroke(1), 0, "a.1"),
    (r) => r.addStroke(stroke(2), 0, "b.1"), // drawn by b before it saw a's clear
    (r) => r.clear(1),
    (r) => r.addStroke(stroke(3), 1, "a.2"),
  ];
  const inOrder = after(changes);
  const strokeLate = after([changes[0], changes[2], changes[3], changes[1]]);
  const clearLate = after([changes[0], changes[1], changes[3], changes[2]]);
  assert.deepEqual(view(inOrder), { history: [], board: 1, strokes: [3], message: 9 });
  assert.deepEqual(view(strokeLate), view(inOrder));
  assert.deepEqual(view(clearLate), view(inOrder));
  // The same stroke twice is drawn once; beyond maxBoardBytes the oldest strokes go.
  assert.equal(inOrder.addStroke(stroke(3), 1, "a.2"), false);
  for (let i = 10; i < 20; i++) inOrder.addStroke(stroke(i), 1, `c.${i}`);
  assert.equal(inOrder.boardBytes, 64);
  assert.deepEqual(inOrder.strokes.map((s) => s[4]), [12, 13, 14, 15, 16, 17, 18, 19]);
});

test("merge: a copy gets what the other has and keeps what only it has", () => {
  const here = after([(r) => r.addEntry(entry("a", 1, 1)), (r) => r.addStroke(stroke(1), 0, "a.1")]);
  const there = after([
    (r) => r.addEntry(entry("a", 1, 1)),
    (r) => r.addEntry(entry("b", 1, 2)),
    (r) => r.addStroke(stroke(1), 0, "a.1"),
    (r) => r.addStroke(stroke(2), 0, "b.1"),
  ]);
  here.addEntry(entry("a", 2, 2)); // only here: it never reached the other copy
  here.addStroke(stroke(4), 0, "a.2");
  const snapshot = JSON.parse(JSON.stringify(there.snapshot())); // as it travels
  const bytes = there.boardMessage().subarray(1);
  assert.equal(here.merge(snapshot, bytes), bytes.length);
  assert.deepEqual(here.history.map((e) => e.id), ["a.1", "a.2", "b.1"]);
  assert.deepEqual(here.strokes.map((s) => s[4]), [1, 4, 2]);

  // A copy whose board was cleared since keeps its board.
  const cleared = after([(r) => r.clear(1), (r) => r.addStroke(stroke(7), 1, "c.1")]);
  cleared.merge(snapshot, bytes);
  assert.deepEqual(cleared.strokes.map((s) => s[4]), [7]);
  // A copy that missed the clear takes the newer board.
  const stale = after([(r) => r.addStroke(stroke(1), 0, "a.1")]);
  stale.merge(JSON.parse(JSON.stringify(cleared.snapshot())), cleared.boardMessage().subarray(1));
  assert.deepEqual(view(stale).strokes, [7]);
  assert.equal(stale.board, 1);
});
