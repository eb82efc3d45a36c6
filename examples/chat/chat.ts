/**
 * The chat rooms and their boards: anyws server handlers that trust nothing from the page.
 *
 * Every message is checked (type, shape, size, rate) before it touches a room. A socket that
 * breaks a rule is closed with a code and a reason that says which (1008, or the core's own
 * 1002/1007/1009 for protocol errors and oversized messages); nothing it sends reaches the
 * others first, and nothing it does can throw out of a handler. Per-socket token buckets bound
 * what one socket can make the server relay; a socket that cannot keep up with what it is sent
 * is closed by the server's backpressure limit rather than buffered without end.
 *
 * With `connect()`, the chat is one of several processes (examples/chat/peers.ts): each keeps a
 * copy of every room (examples/chat/rooms.ts), tells the others what its sockets do, and applies
 * what the others tell it, delivering it to its own sockets. Presence is each process's own
 * members, sent to the others as they change and every heartbeat.
 */
import type { ServerHandlers, ServerWebSocket, UpgradeInfo, UpgradeResponse, WebSocketServer } from "../../adapters/auto.ts";
import type { BackplaneDriver, BackplaneStats } from "../../adapters/shared/backplane.ts";
import type { Limits } from "./config.ts";
import { type Header, Peers } from "./peers.ts";
import { cleanRoom, cleanText, strokeError } from "./protocol.ts";
import { type Entry, type RoomSnapshot, RoomState, type User } from "./rooms.ts";

/** One socket's state, kept as its `data`. */
export interface Peer {
  id: number;
  /** The id the pages see: unique across the chat's processes. */
  uid: string;
  address: string;
  nick: string;
  /** The page's own id: a reconnecting page replaces its old socket. */
  sid: string;
  room: Room | null;
  chat: Bucket;
  draw: Bucket;
  joinTimer: ReturnType<typeof setTimeout> | undefined;
  /** Closed by us (a rule broken, or replaced): whatever else it sends is ignored. */
  done: boolean;
  /** Replaced by a newer socket of the same page: it leaves without a notice. */
  replaced: boolean;
}

type Socket = ServerWebSocket<Peer>;

/** A room: its state (shared by every process) and who is in it here. */
interface Room {
  state: RoomState;
  members: Set<Socket>;
  /** Last time someone joined or left, to forget the stalest empty room first. */
  touched: number;
}

/** A token bucket: `rate` per second, holding at most `burst`. */
export class Bucket {
  private readonly rate: number;
  private readonly burst: number;
  private tokens: number;
  private last = performance.now();
  constructor(rate: number, burst: number) {
    this.rate = rate;
    this.burst = burst;
    this.tokens = burst;
  }
  take(): boolean {
    const now = performance.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.rate);
    this.last = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

export class Chat {
  /** Set once the server is listening: used to publish to a whole room. */
  server: WebSocketServer<Peer> | null = null;
  /** This process, among the chat's processes. */
  readonly node = randomHex(6);
  /**
   * Which run of the chat the rooms belong to: pages that see it change know the history they
   * have is gone. A process that joins others takes theirs.
   */
  boot = this.node;
  private readonly rooms = new Map<string, Room>();
  private readonly perAddress = new Map<string, number>();
  /** The other processes' members, by process and room. */
  private readonly remote = new Map<string, Map<string, User[]>>();
  private peers: Peers | null = null;
  private resyncing = false;
  /** Past the first sync: this process's rooms are worth giving to others. */
  private started = false;
  /** Whether this process has had the rooms from another (or is the first and has heard from no one). */
  private synced = false;
  private resyncAgain = false;
  private open = 0;
  private nextId = 1;
  private written = 0;
  readonly limits: Limits;
  /** Shown on the page: which runtime serves it. */
  readonly serverName: string;
  private readonly log: (line: string) => void;

  constructor(limits: Limits, serverName: string, log: (line: string) => void = console.log) {
    this.limits = limits;
    this.serverName = serverName;
    this.log = log;
  }

  readonly handlers: ServerHandlers<Peer> = {
    upgrade: (request) => this.upgrade(request),
    open: (ws) => this.opened(ws),
    message: (ws, data, isBinary) => {
      if (ws.data.done) return;
      if (isBinary) this.stroke(ws, data as Uint8Array);
      else this.request(ws, data as string);
    },
    close: (ws, code, reason) => this.closed(ws, code, reason),
    error: (ws, error) => {
      // A protocol error by the peer (the core is closing with its code), or a bug of ours.
      this.log(`#${ws.data.id} ${ws.data.address}: ${error.message}`);
      if (ws.readyState === 1) this.kick(ws, 1011, "internal error");
      ws.data.done = true;
    },
  };

  // ---- the other processes --------------------------------------------------------------------

  /**
   * Joins the chat's other processes through `driver`, and takes their rooms (waiting up to
   * `syncTimeout` ms for an answer; none: this is the first process). Call before listening.
   */
  async connect(driver: BackplaneDriver, options: { channel?: string; syncTimeout?: number; helloInterval?: number } = {}): Promise<void> {
    const peers = new Peers(driver, {
      node: this.node,
      channel: options.channel ?? "anyws-chat",
      helloInterval: options.helloInterval,
      hello: () => ({ rooms: this.localMembers() }),
      handler: {
        message: (origin, header, body) => this.fromPeer(origin, header, body),
        gap: (origin, from, to) => {
          this.log(`missed messages ${from}..${to} from process ${origin}: asking for the rooms again`);
          this.resync();
        },
        gone: (origin) => this.gone(origin),
        log: this.log,
      },
    });
    this.peers = peers;
    await peers.start();
    await peers.sync(options.syncTimeout ?? 1000, (header, body) => {
      if (header !== null) this.boot = header.boot as string; // no rooms here yet: theirs are the chat's
      this.restore(header, body);
      this.started = true;
    });
    const others = peers.others().length;
    this.log(others === 0 ? `process ${this.node}: the first of the chat` : `process ${this.node}: joined ${others} other process${others === 1 ? "" : "es"}`);
  }

  /**
   * Asks the others for the rooms again, until one answers (while there are others); a gap
   * reported during a resync is covered by one more.
   */
  private resync(attempt = 1): void {
    const peers = this.peers;
    if (peers === null) return;
    if (this.resyncing) {
      this.resyncAgain = true;
      return;
    }
    this.resyncing = true;
    void peers.sync(2000, (header, body) => {
      this.resyncing = false;
      if (header !== null) this.restore(header, body);
      const again = this.resyncAgain || (header === null && attempt < 5 && peers.others().length !== 0);
      this.resyncAgain = false;
      // Jittered, so that two processes retrying at once drift apart.
      if (again) setTimeout(() => this.resync(header === null ? attempt + 1 : 1), 250 + Math.random() * 500);
    });
  }

  /** What `GET /stats` shows: this process, its rooms, and its backplane's counters (null when alone). */
  stats(): { node: string; boot: string; server: string; sockets: number; rooms: number; processes: string[]; backplane: BackplaneStats | null } {
    return {
      node: this.node,
      boot: this.boot,
      server: this.serverName,
      sockets: this.open,
      rooms: this.rooms.size,
      processes: this.peers?.others() ?? [],
      backplane: this.peers?.stats() ?? null,
    };
  }

  /** Leaves the other processes (after the server has closed). */
  async disconnect(): Promise<void> {
    await this.peers?.close();
  }

  private fromPeer(origin: string, m: Header, body: Uint8Array): void {
    // A process this one has not synced with (it started alone, or an answer came too late):
    // the rooms are merged both ways, and both keep the smaller boot.
    if (!this.synced && m.t === "hello") this.resync();
    switch (m.t) {
      case "msg": {
        const room = this.room(m.room as string);
        if (room?.state.addEntry(m.entry as Entry)) this.server?.publish(room.state.topic, JSON.stringify({ t: "msg", ...(m.entry as Entry) }));
        return;
      }
      case "stroke": {
        const room = this.room(m.room as string);
        if (room?.state.addStroke(body, m.board as number, m.id as string)) this.server?.publish(room.state.topic, body);
        return;
      }
      case "clear": {
        const room = this.room(m.room as string);
        if (room?.state.clear(m.board as number)) this.server?.publish(room.state.topic, JSON.stringify({ t: "clear", by: m.by }));
        return;
      }
      case "members": {
        const name = m.room as string;
        const rooms = this.remoteOf(origin);
        const users = m.users as User[];
        if (users.length === 0) rooms.delete(name);
        else rooms.set(name, users);
        const room = this.room(name);
        if (room === null) return;
        if (m.joined && typeof m.sid === "string" && m.sid !== "") {
          // The same page, now on another process: its old socket here goes quietly.
          for (const other of room.members) if (other.data.sid === m.sid) this.replace(other, room);
        }
        room.touched = Date.now();
        this.server?.publish(room.state.topic, JSON.stringify({ t: "presence", users: this.users(room), joined: m.joined, left: m.left }));
        return;
      }
      case "hello": {
        const before = this.remote.get(origin);
        const now = new Map(Object.entries(m.rooms as Record<string, User[]>));
        this.remote.set(origin, now);
        for (const name of new Set([...(before?.keys() ?? []), ...now.keys()])) {
          if (JSON.stringify(before?.get(name) ?? []) === JSON.stringify(now.get(name) ?? [])) continue;
          const room = this.room(name);
          if (room !== null) this.server?.publish(room.state.topic, JSON.stringify({ t: "presence", users: this.users(room) }));
        }
        return;
      }
      case "sync?": {
        if (!this.started) return; // still getting the rooms itself: nothing to give
        const rooms = [...this.rooms.values()].map((r) => r.state);
        const body = new Uint8Array(rooms.reduce((n, r) => n + r.boardBytes, 0)); // every room's strokes, in turn
        let offset = 0;
        for (const r of rooms) for (const s of r.strokes) body.set(s, (offset += s.length) - s.length);
        // Who is where, too: this process's members and those it knows of the others'.
        const members: Record<string, Record<string, User[]>> = { [this.node]: this.localMembers() };
        for (const [node, rooms] of this.remote) if (node !== origin) members[node] = Object.fromEntries(rooms);
        this.peers?.send({ t: "sync", to: origin, q: m.q, boot: this.boot, seen: this.peers.applied(), rooms: rooms.map((r) => r.snapshot()), members }, body);
        return;
      }
    }
  }

  /** Adds what another process's sync answer has to the rooms here; pages here get them afresh. */
  private restore(m: Header | null, body: Uint8Array): void {
    if (m === null) return; // no one else: this process's rooms are the chat's
    this.synced = true;
    if ((m.boot as string) < this.boot) this.boot = m.boot as string;
    for (const [node, rooms] of Object.entries(m.members as Record<string, Record<string, User[]>>)) {
      if (node !== this.node) this.remote.set(node, new Map(Object.entries(rooms)));
    }
    let offset = 0;
    for (const s of m.rooms as RoomSnapshot[]) {
      const room = this.room(s.name);
      if (room === null) break; // too many rooms here
      const before = room.state.version();
      offset += room.state.merge(s, body.subarray(offset));
      if (room.state.version() !== before) for (const ws of room.members) this.welcome(ws, room);
    }
  }

  private gone(origin: string): void {
    const rooms = this.remote.get(origin);
    this.remote.delete(origin);
    this.log(`process ${origin} is gone`);
    for (const [name, users] of rooms ?? []) {
      const room = this.rooms.get(name);
      if (room === undefined) continue;
      for (const left of users) this.server?.publish(room.state.topic, JSON.stringify({ t: "presence", users: this.users(room), left }));
    }
  }

  /** This process's members, by room. */
  private localMembers(): Record<string, User[]> {
    return Object.fromEntries([...this.rooms.values()].filter((r) => r.members.size !== 0).map((r) => [r.state.name, localUsers(r)]));
  }

  private remoteOf(origin: string): Map<string, User[]> {
    let rooms = this.remote.get(origin);
    if (!rooms) this.remote.set(origin, (rooms = new Map()));
    return rooms;
  }

  // ---- connections ----------------------------------------------------------------------------

  private upgrade(request: UpgradeInfo): UpgradeResponse<Peer> {
    // Pages from other sites may not talk to this server on their visitors' behalf (CSWSH).
    if (request.origin !== null) {
      let host = "";
      try {
        host = new URL(request.origin).host;
      } catch {
        // "null" and other opaque origins
      }
      if (host.toLowerCase() !== request.host.toLowerCase()) {
        return { accept: false, status: 403, body: "cross-origin WebSocket requests are not allowed here\n" };
      }
    }
    const l = this.limits;
    if (this.open >= l.maxClients) return { accept: false, status: 503, body: "the server is full\n" };
    if ((this.perAddress.get(request.remoteAddress) ?? 0) >= l.maxClientsPerAddress) {
      return { accept: false, status: 429, body: "too many connections from your address\n" };
    }
    const id = this.nextId++;
    const peer: Peer = {
      id,
      uid: `${this.node}.${id}`,
      address: request.remoteAddress,
      nick: "",
      sid: "",
      room: null,
      chat: new Bucket(l.chatRate, Math.max(2, l.chatRate * 2)),
      draw: new Bucket(l.drawRate, Math.max(2, l.drawRate * 2)),
      joinTimer: undefined,
      done: false,
      replaced: false,
    };
    return { data: peer };
  }

  private opened(ws: Socket): void {
    const peer = ws.data;
    this.open++;
    this.perAddress.set(peer.address, (this.perAddress.get(peer.address) ?? 0) + 1);
    peer.joinTimer = setTimeout(() => this.kick(ws, 1008, "no join message in time"), this.limits.joinTimeout);
  }

  private closed(ws: Socket, code: number, reason: string): void {
    const peer = ws.data;
    clearTimeout(peer.joinTimer);
    this.open--;
    const count = (this.perAddress.get(peer.address) ?? 1) - 1;
    if (count === 0) this.perAddress.delete(peer.address);
    else this.perAddress.set(peer.address, count);
    const room = peer.room;
    if (room !== null && !peer.replaced) {
      this.leave(ws, room);
      this.log(`${peer.nick} left #${room.state.name} (${code}${reason ? ` ${reason}` : ""}); ${room.members.size} there now`);
    }
  }

  /** Closes a socket that broke a rule; the reason says which. */
  private kick(ws: Socket, code: number, reason: string): void {
    const peer = ws.data;
    if (peer.done) return;
    peer.done = true;
    this.log(`closing #${peer.id} ${peer.nick ? `(${peer.nick}) ` : ""}${peer.address}: ${code} ${reason}`);
    try {
      ws.close(code, reason.slice(0, 120));
    } catch {
      ws.terminate();
    }
  }

  /** The same page reconnected before its old socket was found dead: the old one goes quietly. */
  private replace(other: Socket, room: Room): void {
    other.data.replaced = true;
    room.members.delete(other);
    other.unsubscribe(room.state.topic);
    this.kick(other, 1008, "replaced by a newer connection");
    this.peers?.send({ t: "members", room: room.state.name, users: localUsers(room) });
  }

  // ---- what the page sends --------------------------------------------------------------------

  private request(ws: Socket, text: string): void {
    const peer = ws.data;
    if (!peer.chat.take()) return this.kick(ws, 1008, `too many messages (the limit is ${this.limits.chatRate} per second)`);
    let message: unknown;
    try {
      message = JSON.parse(text);
    } catch {
      return this.kick(ws, 1008, "bad message: not JSON");
    }
    if (typeof message !== "object" || message === null || Array.isArray(message)) {
      return this.kick(ws, 1008, "bad message: not a JSON object");
    }
    const m = message as Record<string, unknown>;
    if (m.t === "join") return this.join(ws, m);
    if (peer.room === null) return this.kick(ws, 1008, "join a room first");
    if (m.t === "say") return this.say(ws, peer.room, m);
    if (m.t === "clear") return this.clear(ws, peer.room);
    return this.kick(ws, 1008, `bad message: unknown type ${JSON.stringify(m.t)?.slice(0, 40)}`);
  }

  private join(ws: Socket, m: Record<string, unknown>): void {
    const peer = ws.data;
    const nick = cleanText(m.nick, 24);
    if (nick === null) return this.kick(ws, 1008, "bad join: a nickname is 1 to 24 characters");
    const name = cleanRoom(m.room);
    if (name === null) return this.kick(ws, 1008, "bad join: a room name is 1 to 32 letters, digits, space, _ . -");
    const sid = typeof m.sid === "string" && /^[A-Za-z0-9_-]{8,64}$/.test(m.sid) ? m.sid : "";
    const room = this.room(name);
    if (room === null) return this.kick(ws, 1008, "too many rooms on this server");
    clearTimeout(peer.joinTimer);
    if (peer.room !== null) this.leave(ws, peer.room);
    if (sid !== "") {
      for (const other of room.members) if (other.data.sid === sid) this.replace(other, room);
    }
    const again = peer.nick !== "";
    peer.nick = nick;
    peer.sid = sid;
    peer.room = room;
    room.members.add(ws);
    room.touched = Date.now();
    ws.subscribe(room.state.topic);
    this.welcome(ws, room);
    const joined = { id: peer.uid, nick };
    ws.publish(room.state.topic, JSON.stringify({ t: "presence", users: this.users(room), joined }));
    this.peers?.send({ t: "members", room: name, users: localUsers(room), joined, sid });
    this.log(`${nick} ${again ? "moved to" : "joined"} #${name} from ${peer.address}; ${room.members.size} there now`);
  }

  /** What a page gets on joining: who is there, the history, then the board. */
  private welcome(ws: Socket, room: Room): void {
    const l = this.limits;
    const state = room.state;
    ws.send(JSON.stringify({
      t: "welcome",
      boot: this.boot,
      server: this.serverName,
      extensions: ws.extensions,
      you: { id: ws.data.uid, nick: ws.data.nick },
      room: state.name,
      users: this.users(room),
      history: state.history,
      limits: { maxText: l.maxTextLength, chatRate: l.chatRate, drawRate: l.drawRate, maxMessageSize: l.maxMessageSize },
    }));
    if (state.strokes.length !== 0) ws.send(state.boardMessage());
  }

  private say(ws: Socket, room: Room, m: Record<string, unknown>): void {
    const peer = ws.data;
    const text = cleanText(m.text, this.limits.maxTextLength);
    if (text === null) return this.kick(ws, 1008, `bad message: text is 1 to ${this.limits.maxTextLength} characters`);
    const state = room.state;
    const entry: Entry = { id: `${this.node}.${++this.written}`, seq: state.seq + 1, from: { id: peer.uid, nick: peer.nick }, text, ts: Date.now() };
    state.addEntry(entry);
    this.server?.publish(state.topic, JSON.stringify({ t: "msg", ...entry }));
    this.peers?.send({ t: "msg", room: state.name, entry });
  }

  private clear(ws: Socket, room: Room): void {
    const state = room.state;
    state.clear(state.board + 1);
    const by = { id: ws.data.uid, nick: ws.data.nick };
    this.server?.publish(state.topic, JSON.stringify({ t: "clear", by }));
    this.peers?.send({ t: "clear", room: state.name, board: state.board, by });
  }

  private stroke(ws: Socket, data: Uint8Array): void {
    const peer = ws.data;
    const room = peer.room;
    if (room === null) return this.kick(ws, 1008, "join a room first");
    if (!peer.draw.take()) return this.kick(ws, 1008, `too many strokes (the limit is ${this.limits.drawRate} per second)`);
    const error = strokeError(data);
    if (error !== null) return this.kick(ws, 1008, `bad stroke: ${error}`);
    const stroke = data.slice(); // `data` is only valid during the handler
    const state = room.state;
    const id = `${this.node}.${++this.written}`;
    state.addStroke(stroke, state.board, id);
    ws.publish(state.topic, stroke);
    this.peers?.send({ t: "stroke", room: state.name, board: state.board, id }, stroke);
  }

  // ---- rooms ----------------------------------------------------------------------------------

  /** The room, created if need be; null when there are too many and none can be forgotten. */
  private room(name: string): Room | null {
    let room = this.rooms.get(name);
    if (room) return room;
    if (this.rooms.size >= this.limits.maxRooms) {
      // Forget the empty room left alone the longest, with its history and board.
      let stalest: Room | null = null;
      for (const r of this.rooms.values()) {
        if (r.members.size === 0 && !this.elsewhere(r.state.name) && (stalest === null || r.touched < stalest.touched)) stalest = r;
      }
      if (stalest === null) return null;
      this.rooms.delete(stalest.state.name);
    }
    room = { state: new RoomState(name, this.limits), members: new Set(), touched: Date.now() };
    this.rooms.set(name, room);
    return room;
  }

  /** Whether another process has members in the room. */
  private elsewhere(name: string): boolean {
    for (const rooms of this.remote.values()) if (rooms.has(name)) return true;
    return false;
  }

  private leave(ws: Socket, room: Room): void {
    const peer = ws.data;
    room.members.delete(ws);
    room.touched = Date.now();
    ws.unsubscribe(room.state.topic);
    const left = { id: peer.uid, nick: peer.nick };
    this.server?.publish(room.state.topic, JSON.stringify({ t: "presence", users: this.users(room), left }));
    this.peers?.send({ t: "members", room: room.state.name, users: localUsers(room), left });
  }

  /** Everyone in the room, in every process. */
  private users(room: Room): User[] {
    const all = localUsers(room);
    for (const rooms of this.remote.values()) all.push(...(rooms.get(room.state.name) ?? []));
    return all;
  }
}

function localUsers(room: Room): User[] {
  return [...room.members].map((ws) => ({ id: ws.data.uid, nick: ws.data.nick }));
}

function randomHex(bytes: number): string {
  return Array.from(crypto.getRandomValues(new Uint8Array(bytes)), (b) => b.toString(16).padStart(2, "0")).join("");
}
