/**
 * A session joins one core connection to one transport: bytes from the transport go into the
 * connection, the connection's output goes to the transport, its deadline drives one timer,
 * and its events go to the owner (a server-side socket or a client WebSocket).
 */
import type { Connection, ConnectionEvent } from "../../core/mod.ts";
import type { AfterReads, Transport, TransportHandler } from "./transport.ts";

/** What a session tells its owner. */
export interface SessionOwner {
  /** A protocol event. Handlers may call back into the session (send, close) from here. */
  onEvent(event: ConnectionEvent): void;
  /** The transport's buffer emptied after backpressure. */
  onDrain(): void;
  /** The transport is closed; the connection has reported its `close` event by now. */
  onTransportClose(error?: Error): void;
  /** The transport holds more than the session's `readLimit`: reading from the peer is paused until drain. */
  onReadLimit?(): void;
}

/**
 * After the transport is ended, how long (ms) the peer has to end its side before the transport
 * is destroyed; the wait starts again while bytes buffered before the end are still being
 * written, so a slow reader gets its close frame and one that reads nothing cannot hold the
 * connection open.
 */
export const DEFAULT_END_TIMEOUT = 2000;

/**
 * The one place where small writes are merged (the core and the transports write what they are
 * given): a session gives its transport what its connection produced in one turn of the event
 * loop as one `write()`, once every read of the turn was handled (`Transport.afterReads`: what
 * several peers' reads publish to one socket goes out together), or at once when this many bytes wait; runs of chunks that
 * together stay within it are copied into one, so that a transport without writev (Bun, Deno,
 * a Web Stream) makes one system call or stream write for them. 128 KiB so that a burst of
 * 64 KiB and its frame headers goes in one write (bench/NOTES.md, Adapters).
 */
export const COALESCE_LIMIT = 128 * 1024;

/** How many free merge buffers (COALESCE_LIMIT bytes each) a SessionHost keeps. */
const MERGE_POOL_MAX = 16;
/** Merges smaller than this get a buffer of their own size: cheap to allocate, and a pool buffer would be mostly idle. */
const MERGE_POOL_MIN = 16 * 1024;

/** Sessions whose output waits for one scheduler's task, all handed out by that one task. */
export class DueList {
  private sessions: Session[] = [];
  private readonly schedule: AfterReads;
  /**
   * The last merge made in this task into a buffer of its own, and the chunks it was made from:
   * a session handed out after it with the very same chunks (a publish reaches every subscriber
   * with the same frames, in the same order) writes that merge instead of copying them again.
   */
  mergedFrom: Uint8Array[] | null = null;
  merged: Uint8Array | null = null;
  constructor(schedule: AfterReads) {
    this.schedule = schedule;
  }
  add(session: Session): void {
    if (this.sessions.length === 0) this.schedule(this.run);
    this.sessions.push(session);
  }
  private readonly run = (): void => {
    const sessions = this.sessions;
    this.sessions = [];
    try {
      for (let i = 0; i < sessions.length; i++) sessions[i].handOut(this);
    } finally {
      this.mergedFrom = null;
      this.merged = null;
    }
  };
}

/** Whether `a` and `b` hold the same chunks (the same objects) in the same order. */
function sameChunks(a: Uint8Array[], b: Uint8Array[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Where a transport gives no `afterReads`: the end of the tick. */
const endOfTick: AfterReads = (task) => queueMicrotask(task);

/** The clock every connection is told the time with. */
export const now: () => number = () => performance.now();

/**
 * Every deadline of a host's sessions in one binary min-heap behind one runtime timer. A
 * server's idle connections each keep a deadline (keepalive, idle timeout); a timer object and
 * a callback per connection would cost more than the rest of an idle connection's state.
 */
export class Deadlines {
  private readonly heap: Session[] = [];
  private timer: ReturnType<typeof setTimeout> | undefined;
  private timerAt = Infinity;
  private firing = false; // the timer's callback is running: it schedules once, at its end

  /** Sets `session`'s deadline (its `deadlineAt` is the heap key), or moves it. */
  set(session: Session, at: number): void {
    const heap = this.heap;
    const earlier = at < session.deadlineAt;
    session.deadlineAt = at;
    if (session.heapIndex === -1) {
      session.heapIndex = heap.length;
      heap.push(session);
      this.up(session.heapIndex);
    } else if (earlier) {
      this.up(session.heapIndex);
    } else {
      this.down(session.heapIndex);
    }
    this.schedule();
  }

  /** Removes `session`'s deadline, if it has one. */
  clear(session: Session): void {
    const i = session.heapIndex;
    session.deadlineAt = Infinity;
    if (i === -1) return;
    session.heapIndex = -1;
    const heap = this.heap;
    const last = heap.pop()!;
    if (i < heap.length) {
      heap[i] = last;
      last.heapIndex = i;
      this.up(i);
      this.down(last.heapIndex);
    }
    this.schedule();
  }

  /**
   * Keeps the runtime timer due no later than the earliest deadline. When that deadline goes away
   * or moves later (a connection closed, a keepalive pushed back), the timer is left as it is: it
   * fires, finds nothing due and re-arms. So a connection that comes and goes costs no timer work
   * unless it is the earliest; with many short connections that is most of the saving. With no
   * deadline left the timer is cleared, so that it keeps no process alive.
   */
  private schedule(): void {
    if (this.firing) return;
    const at = this.heap.length === 0 ? Infinity : this.heap[0].deadlineAt;
    if (at === this.timerAt || (at > this.timerAt && at !== Infinity)) return;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = at;
    if (at !== Infinity) this.timer = setTimeout(this.fire, Math.max(0, Math.ceil(at - now())));
  }

  private readonly fire = (): void => {
    this.timer = undefined;
    this.timerAt = Infinity;
    this.firing = true;
    const t = now();
    const heap = this.heap;
    // Sessions due now; each re-enters the heap if its connection asks for a later deadline.
    const due: Session[] = [];
    while (heap.length !== 0 && heap[0].deadlineAt <= t) {
      const session = heap[0];
      this.clear(session);
      due.push(session);
    }
    for (const session of due) {
      try {
        session.deadlineReached();
      } catch (error) {
        queueMicrotask(() => {
          throw error; // reported as uncaught, as it would be from a timer of its own
        });
      }
    }
    this.firing = false;
    this.schedule();
  };

  private up(i: number): void {
    const heap = this.heap;
    const session = heap[i];
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (heap[parent].deadlineAt <= session.deadlineAt) break;
      heap[i] = heap[parent];
      heap[i].heapIndex = i;
      i = parent;
    }
    heap[i] = session;
    session.heapIndex = i;
  }

  private down(i: number): void {
    const heap = this.heap;
    const session = heap[i];
    const n = heap.length;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= n) break;
      if (child + 1 < n && heap[child + 1].deadlineAt < heap[child].deadlineAt) child++;
      if (heap[child].deadlineAt >= session.deadlineAt) break;
      heap[i] = heap[child];
      heap[i].heapIndex = i;
      i = child;
    }
    heap[i] = session;
    session.heapIndex = i;
  }
}

/**
 * What the sessions of one owner share (a server, or a client WebSocket class; each creates its
 * own and passes it to its sessions): the timer of their deadlines, the task per scheduler that
 * hands their writes out, the merge buffers, and the `onWake` of their connections. Nothing of it
 * is process-wide, so two servers, or two copies of the package, in one process share nothing.
 */
export class SessionHost {
  readonly deadlines: Deadlines = new Deadlines();
  /**
   * Merge buffers no transport holds any more, for the next merges: a fresh zeroed buffer per
   * write costs more than the copy into it (bench/NOTES.md).
   */
  readonly mergePool: Uint8Array[] = [];
  /**
   * One list per scheduler (each runtime passes one function for all its transports), so that
   * one task per loop turn hands out the writes of all the host's sessions.
   */
  private readonly dueLists = new Map<AfterReads, DueList>();
  /** Each connection's session, for `wake`. */
  private readonly sessions = new WeakMap<Connection, Session>();

  /**
   * The `onWake` to give every connection of this host: one function for all, where a closure
   * per connection would cost an idle connection about a hundred bytes.
   */
  readonly wake = (connection: Connection): void => {
    this.sessions.get(connection)?.flush();
  };

  /** @internal */
  register(connection: Connection, session: Session): void {
    this.sessions.set(connection, session);
  }

  /** @internal */
  dueListFor(schedule: AfterReads = endOfTick): DueList {
    let list = this.dueLists.get(schedule);
    if (list === undefined) this.dueLists.set(schedule, (list = new DueList(schedule)));
    return list;
  }
}

const BACKPRESSURED = 1;
const DRAIN_WANTED = 2;
/** Reading from the transport is paused (`readLimit`). */
const READ_PAUSED = 4;
/** `out` waits in the due list for the after-reads task. */
const OUT_DUE = 8;
/** Inside `flush()`; `AGAIN`: it is to run once more. */
const FLUSHING = 16;
const AGAIN = 32;
/** The transport was ended; then closed. */
const ENDED = 64;
const CLOSED = 128;

export class Session implements TransportHandler {
  readonly connection: Connection;
  transport: Transport | null = null;
  /**
   * Bytes waiting to be written (the transport's and the connection's pending ones) beyond which
   * the session stops reading from the peer until the transport drains: what the peer makes us
   * write (pongs, close replies, a handler's answers) then stays bounded. Infinity: never.
   */
  readLimit = Infinity;
  /** See DEFAULT_END_TIMEOUT. */
  endTimeout = DEFAULT_END_TIMEOUT;
  /** When the wait for the peer's end runs out (null: not ended, or closed); null, not Infinity, so that an idle session holds no number box. */
  private endAt: number | null = null;
  /** The transport's `bufferedAmount` when `endAt` was set. */
  private endBuffered = 0;

  /** When the connection's deadline is to be checked (Infinity: never); kept by the host's `deadlines`. */
  deadlineAt = Infinity;
  /** The session's place in the host's `deadlines` heap, -1 when not in it. */
  heapIndex = -1;

  private readonly host: SessionHost;
  private owner: SessionOwner;
  /** Output taken from the connection and not yet given to the transport (null: none). */
  private out: Uint8Array[] | null = null;
  private outBytes = 0;
  /**
   * At least the transport's `bufferedAmount`: what it held when last read, plus what was written
   * to it since. Only the session writes to its transport, and nothing else makes that amount
   * grow; the checks made on every send compare this bound and read the transport only when it
   * is over their limit.
   */
  private transportBuffered = 0;
  /** Where `out` waits to be handed out: the list of the transport's `afterReads`. */
  private due: DueList | null = null;
  /** Pool buffers under chunks given to the transport, back to the pool once it holds nothing. */
  private lent: Uint8Array[] | null = null;
  /** BACKPRESSURED … CLOSED, as bits of one number: a server holds a session per connection. */
  private flags = 0;

  /** `connection` was created with `host.wake` as its `onWake`. */
  constructor(host: SessionHost, connection: Connection, owner: SessionOwner) {
    this.host = host;
    this.connection = connection;
    this.owner = owner;
    host.register(connection, this);
  }

  /** The last write found the transport over its high-water mark; cleared by drain. */
  get backpressured(): boolean {
    return this.is(BACKPRESSURED);
  }
  set backpressured(value: boolean) {
    this.mark(BACKPRESSURED, value);
  }

  /** The owner refused a send over its limit: `onDrain` once the output is written and nothing is pending. */
  get drainWanted(): boolean {
    return this.is(DRAIN_WANTED);
  }
  set drainWanted(value: boolean) {
    this.mark(DRAIN_WANTED, value);
  }

  private is(flag: number): boolean {
    return (this.flags & flag) !== 0;
  }

  private mark(flag: number, on: boolean): void {
    this.flags = on ? this.flags | flag : this.flags & ~flag;
  }

  /** Gives the session's events, from the next one on, to `owner`. */
  handOver(owner: SessionOwner): void {
    this.owner = owner;
  }

  /** The transport's handler, bound to `transport`. */
  bind(transport: Transport): TransportHandler {
    this.transport = transport;
    this.due = this.host.dueListFor(transport.afterReads);
    this.flush();
    return this;
  }

  get transportClosed(): boolean {
    return this.is(CLOSED);
  }

  /** Bytes written by the connection and not yet sent: the transport's and those waiting for the end of the loop turn. */
  get bufferedAmount(): number {
    return (this.transportBuffered = this.transport?.bufferedAmount ?? 0) + this.outBytes;
  }

  /** Whether `bufferedAmount` is at least `limit`. */
  bufferedAtLeast(limit: number): boolean {
    return this.transportBuffered + this.outBytes >= limit && this.bufferedAmount >= limit;
  }

  onData(chunk: Uint8Array): void {
    const connection = this.connection;
    connection.tick(now());
    connection.receive(chunk);
    this.flush();
  }

  onEnd(): void {
    this.connection.tick(now());
    this.connection.receiveEof();
    this.flush();
  }

  onDrain(): void {
    this.backpressured = false;
    if (this.transport !== null) this.reclaim(this.transport);
    this.drainWanted = false;
    if (this.is(READ_PAUSED)) {
      this.mark(READ_PAUSED, false);
      if (!this.is(CLOSED)) this.transport?.resume();
    }
    this.owner.onDrain();
  }

  onClose(error?: Error): void {
    if (this.is(CLOSED)) return;
    this.mark(CLOSED, true);
    this.clearTimer();
    this.connection.receiveEof();
    this.flush();
    this.owner.onTransportClose(error);
  }

  /**
   * Writes the connection's output and dispatches its events, until handlers stop producing
   * more; ends the transport when the connection expects it; re-arms the timer. Re-entrant
   * calls (a handler that sends) are folded into the running loop.
   */
  flush(): void {
    if (this.is(FLUSHING)) {
      this.mark(AGAIN, true);
      return;
    }
    this.mark(FLUSHING, true);
    const connection = this.connection;
    try {
      do {
        this.mark(AGAIN, false);
        this.collect();
        const events = connection.pollEvents();
        for (let i = 0; i < events.length; i++) this.owner.onEvent(events[i]);
        if (events.length !== 0) this.mark(AGAIN, true);
      } while (this.is(AGAIN));
      if (connection.closeExpected && !this.is(ENDED) && this.transport !== null && !this.is(CLOSED)) {
        this.handOut(); // the end follows the last bytes, in order
        this.end(this.transport);
      } else this.scheduleOut();
    } finally {
      this.mark(FLUSHING, false);
    }
    this.afterWrite();
    if (!this.is(CLOSED)) this.arm();
  }

  /**
   * Takes the connection's output, from inside `flush` too (a handler's send), for the transport.
   * False when the bytes waiting to be sent are now over the transport's high-water mark: the
   * owner then gets `onDrain` once they are sent or the transport has drained.
   */
  write(): boolean {
    this.collect();
    const transport = this.transport;
    if (transport === null || this.is(CLOSED) || this.is(ENDED)) return true;
    this.scheduleOut();
    if (!this.bufferedAtLeast(transport.highWaterMark + 1)) return true;
    this.drainWanted = true;
    // A send is not followed by a flush: past the high-water mark it checks the read limit itself.
    if (this.backpressured && !this.is(READ_PAUSED)) this.checkReadLimit();
    return false;
  }

  /** Moves the connection's output to `out`. */
  private collect(): void {
    const output = this.connection.pollOutput();
    if (output.length === 0) return;
    if (this.is(CLOSED) || this.is(ENDED)) return; // nothing more goes out
    const out = (this.out ??= []);
    for (let i = 0; i < output.length; i++) {
      const chunk = output[i];
      if (chunk.length === 0) continue;
      out.push(chunk);
      this.outBytes += chunk.length;
    }
  }

  /** `out` goes to the transport once the loop turn's reads were handled, or now once COALESCE_LIMIT bytes wait. */
  private scheduleOut(): void {
    if (this.out === null || this.transport === null) return;
    if (this.outBytes >= COALESCE_LIMIT) {
      this.handOut();
      return;
    }
    if (this.is(OUT_DUE)) return;
    this.mark(OUT_DUE, true);
    (this.due ??= this.host.dueListFor(this.transport.afterReads)).add(this);
  }

  /** Gives `out` to the transport, as one write; `list` when called by that list's task. */
  handOut(list: DueList | null = null): void {
    const out = this.out;
    const transport = this.transport;
    const scheduled = this.is(OUT_DUE);
    this.mark(OUT_DUE, false);
    if (out === null || transport === null) return;
    this.out = null;
    const bytes = this.outBytes;
    this.outBytes = 0;
    if (this.is(CLOSED) || this.is(ENDED)) return;
    const lends = transport.releasesChunks;
    if (lends) this.reclaim(transport);
    if (!transport.write(out.length === 1 ? out : this.coalesce(out, bytes, lends, list))) this.backpressured = true;
    this.transportBuffered += bytes; // still a bound, without reading the transport
    if (scheduled && !this.is(FLUSHING)) this.afterWrite();
  }

  /**
   * `chunks` (`bytes` in all) with each run of neighbours that fits in COALESCE_LIMIT copied into
   * one chunk; a chunk that fits in no run is kept as it is, uncopied. With `lends`, large merges
   * go into the host's pool buffers, listed in `lent` until the transport has sent them. A small
   * merge is never written to again, so the sessions handed out by one `list` task share it.
   */
  private coalesce(chunks: Uint8Array[], bytes: number, lends: boolean, list: DueList | null): Uint8Array[] {
    const n = chunks.length;
    if (bytes <= COALESCE_LIMIT) {
      // Not a pool buffer, and not passed on to the other end as it is (where its reader owns it).
      const shares = list !== null && lends && bytes < MERGE_POOL_MIN;
      if (shares && list.mergedFrom !== null && sameChunks(chunks, list.mergedFrom)) return [list.merged!];
      const merged = this.concat(chunks, 0, n, bytes, lends);
      if (shares) {
        list.mergedFrom = chunks;
        list.merged = merged;
      }
      return [merged];
    }
    const out: Uint8Array[] = [];
    let i = 0;
    while (i < n) {
      let end = i + 1;
      let total = chunks[i].length;
      while (end < n && total + chunks[end].length <= COALESCE_LIMIT) total += chunks[end++].length;
      out.push(end === i + 1 ? chunks[i] : this.concat(chunks, i, end, total, lends));
      i = end;
    }
    return out;
  }

  private concat(chunks: Uint8Array[], from: number, to: number, total: number, lends: boolean): Uint8Array {
    let merged: Uint8Array;
    if (lends && total >= MERGE_POOL_MIN) {
      const buffer = this.host.mergePool.pop() ?? new Uint8Array(COALESCE_LIMIT);
      (this.lent ??= []).push(buffer);
      merged = buffer.subarray(0, total);
    } else {
      // Cut from a slab as the connection's own frames are, where its tuning pools small buffers.
      const allocator = this.connection.tuning.allocator;
      merged = allocator === null ? new Uint8Array(total) : allocator.allocate(total);
    }
    for (let i = from, offset = 0; i < to; offset += chunks[i++].length) merged.set(chunks[i], offset);
    return merged;
  }

  /** Once the transport holds none of the bytes given, the pool buffers under them are free. */
  private reclaim(transport: Transport): void {
    const lent = this.lent;
    if (lent === null || (this.transportBuffered !== 0 && (this.transportBuffered = transport.bufferedAmount) !== 0)) return;
    this.lent = null;
    const pool = this.host.mergePool;
    for (let i = 0; i < lent.length && pool.length < MERGE_POOL_MAX; i++) pool.push(lent[i]);
  }

  /** Drain owed to the owner, and the read limit, once output went to the transport. */
  private afterWrite(): void {
    if (this.is(CLOSED)) return;
    if (this.drainWanted && !this.backpressured && this.out === null && this.connection.pendingBytes === 0) {
      // The owner was refused or told to wait while bytes waited here or were being compressed;
      // they are with the transport now, under its high-water mark.
      this.drainWanted = false;
      this.owner.onDrain();
    }
    if (this.backpressured && !this.is(READ_PAUSED) && !this.is(ENDED)) this.checkReadLimit();
  }

  /**
   * Pauses reading once more than `readLimit` bytes wait to be written. Only while backpressured:
   * the drain that resumes it is then sure to come.
   */
  private checkReadLimit(): void {
    const transport = this.transport;
    if (transport === null || transport.bufferedAmount + this.outBytes + this.connection.pendingBytes <= this.readLimit) return;
    this.mark(READ_PAUSED, true);
    transport.pause();
    this.owner.onReadLimit?.();
  }

  /**
   * The connection expects the transport closed (RFC 6455 §7.1.1): its output was written just
   * before, so the end follows the last bytes in order. The transport sends what it holds and
   * its FIN; the peer then has `endTimeout` to end its side, as long as the buffered bytes keep
   * moving, before the transport is destroyed.
   */
  private end(transport: Transport): void {
    this.mark(ENDED, true);
    transport.end();
    this.endBuffered = transport.bufferedAmount;
    this.endAt = now() + this.endTimeout;
  }

  /** The end wait ran out: wait on while the buffered bytes still move, else destroy. */
  private endWaited(transport: Transport): void {
    const buffered = transport.bufferedAmount;
    if (buffered !== 0 && buffered < this.endBuffered) {
      this.endBuffered = buffered;
      this.endAt = now() + this.endTimeout;
    } else {
      this.endAt = null;
      transport.destroy();
    }
  }

  /** Ends the connection at once: no closing handshake, the transport is destroyed. */
  destroy(): void {
    this.connection.abort();
    this.out = null;
    this.outBytes = 0;
    this.flush();
    if (this.transport !== null && !this.is(CLOSED)) this.transport.destroy();
  }

  /** Sets the connection's deadline, or the end wait's; a later one waits for the earlier one to be reached first. */
  private arm(): void {
    const at = Math.min(this.connection.deadline, this.endAt ?? Infinity);
    if (at < this.deadlineAt) this.host.deadlines.set(this, at);
  }

  /** Called by the host's `deadlines` when the deadline set by `arm` has come. */
  deadlineReached(): void {
    if (this.endAt !== null && this.endAt <= now() && this.transport !== null && !this.is(CLOSED)) {
      this.endWaited(this.transport);
      if (this.is(CLOSED)) return;
    }
    this.connection.tick(now());
    this.flush();
  }

  private clearTimer(): void {
    this.host.deadlines.clear(this);
  }
}
