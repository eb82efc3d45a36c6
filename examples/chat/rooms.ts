/**
 * A room's state — its history and its board — as every process of the chat keeps a copy of it.
 *
 * Changes come from this process's sockets or from the others (examples/chat/peers.ts) and may
 * arrive in a different order in each process: each change is written so that applying the same
 * set of changes in any order leaves every copy the same.
 *  - History is kept in (seq, id) order: `seq` is a Lamport clock (one more than the highest
 *    seen in the room), `id` names the process and its message, so two messages written at
 *    once in two processes sort the same way everywhere.
 *  - The board has a generation: "clear" starts the next one, and a stroke drawn on an earlier
 *    generation is dropped wherever it arrives after the clear. Strokes have ids too.
 * `snapshot()` and `merge()` carry a whole room to a process that has just started or that
 * noticed it missed something: merging adds what is missing, and keeps what only this copy has.
 */
import { snapshot } from "./protocol.ts";

export interface User {
  id: string;
  nick: string;
}

export interface Entry {
  /** The process that wrote it and its number there: unique in the whole chat. */
  id: string;
  seq: number;
  from: User;
  text: string;
  ts: number;
}

export interface RoomLimits {
  /** Messages kept. */
  history: number;
  /** Bytes of strokes kept; beyond, the oldest strokes are forgotten. */
  maxBoardBytes: number;
}

/** A room as it travels between processes; the strokes travel beside it as bytes. */
export interface RoomSnapshot {
  name: string;
  seq: number;
  board: number;
  history: Entry[];
  /** The ids of the strokes, which travel beside the snapshot one after the other. */
  strokes: string[];
}

export class RoomState {
  readonly name: string;
  readonly topic: string;
  history: Entry[] = [];
  /** The highest `seq` seen here. */
  seq = 0;
  /** The board's generation: each clear starts the next. */
  board = 0;
  strokes: Uint8Array[] = [];
  /** The strokes' ids, in the same order. */
  strokeIds: string[] = [];
  private readonly ids = new Set<string>();
  boardBytes = 0;
  private readonly limits: RoomLimits;

  constructor(name: string, limits: RoomLimits) {
    this.name = name;
    this.topic = `room:${name}`;
    this.limits = limits;
  }

  /** Adds a message in its place; false if it was already there or is older than all kept. */
  addEntry(entry: Entry): boolean {
    this.seq = Math.max(this.seq, entry.seq);
    const h = this.history;
    let i = h.length;
    while (i > 0 && before(entry, h[i - 1])) i--;
    if (i > 0 && h[i - 1].id === entry.id) return false;
    if (i === 0 && h.length >= this.limits.history) return false;
    h.splice(i, 0, entry);
    if (h.length > this.limits.history) h.splice(0, h.length - this.limits.history);
    return true;
  }

  /** Adds a stroke drawn on generation `board`; false if already there or the board was cleared since. */
  addStroke(stroke: Uint8Array, board: number, id: string): boolean {
    if (board < this.board || this.ids.has(id)) return false;
    if (board > this.board) this.clear(board); // cleared elsewhere; that clear is on its way here
    this.strokes.push(stroke);
    this.strokeIds.push(id);
    this.ids.add(id);
    this.boardBytes += stroke.length;
    let forget = 0;
    while (this.boardBytes > this.limits.maxBoardBytes && forget < this.strokes.length) {
      this.boardBytes -= this.strokes[forget].length;
      this.ids.delete(this.strokeIds[forget++]);
    }
    if (forget !== 0) {
      this.strokes.splice(0, forget);
      this.strokeIds.splice(0, forget);
    }
    return true;
  }

  /** Starts board generation `board`; false if this board is already there or past it. */
  clear(board: number): boolean {
    if (board <= this.board) return false;
    this.board = board;
    this.strokes = [];
    this.strokeIds = [];
    this.ids.clear();
    this.boardBytes = 0;
    return true;
  }

  /** The board as the SNAPSHOT message a page gets on joining. */
  boardMessage(): Uint8Array {
    return snapshot(this.strokes, this.boardBytes);
  }

  /** Changes whenever the history or the board does. */
  version(): string {
    const h = this.history;
    return `${h.length} ${h[0]?.id} ${h[h.length - 1]?.id} ${this.board} ${this.strokeIds.length} ${this.strokeIds[0]} ${this.strokeIds[this.strokeIds.length - 1]}`;
  }

  snapshot(): RoomSnapshot {
    return { name: this.name, seq: this.seq, board: this.board, history: this.history, strokes: this.strokeIds };
  }

  /**
   * Adds what another copy of the room has and this one lacks: `s` from its `snapshot()`, and
   * `strokes`, its strokes' bytes one after the other (as in a SNAPSHOT message). Returns the
   * bytes of `strokes` it used.
   */
  merge(s: RoomSnapshot, strokes: Uint8Array): number {
    this.seq = Math.max(this.seq, s.seq);
    for (const e of s.history) this.addEntry(e);
    this.clear(s.board);
    let offset = 0;
    for (const id of s.strokes) {
      if (offset + 4 > strokes.length) break;
      const end = offset + 4 + 4 * strokes[offset + 3];
      this.addStroke(strokes.slice(offset, end), s.board, id);
      offset = end;
    }
    return offset;
  }
}

/** The order of history: by seq, then by id. */
function before(a: Entry, b: Entry): boolean {
  return a.seq < b.seq || (a.seq === b.seq && a.id < b.id);
}
