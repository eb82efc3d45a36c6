/**
 * The chat rooms and their boards: anyws server handlers that trust nothing from the page.
 *
 * Every message is checked (type, shape, size, rate) before it touches a room. A socket that
 * breaks a rule is closed with a code and a reason that says which (1008, or the core's own
 * 1002/1007/1009 for protocol errors and oversized messages); nothing it sends reaches the
 * others first, and nothing it does can throw out of a handler. Per-socket token buckets bound
 * what one socket can make the server relay; a socket that cannot keep up with what it is sent
 * is closed by the server's backpressure limit rather than buffered without end.
 */
import type { ServerHandlers, ServerWebSocket, UpgradeInfo, UpgradeResponse, WebSocketServer } from "../../adapters/auto.ts";
import type { Limits } from "./config.ts";
import { cleanRoom, cleanText, snapshot, strokeError } from "./protocol.ts";

/** One socket's state, kept as its `data`. */
export interface Peer {
  id: number;
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

interface Entry {
  seq: number;
  from: { id: number; nick: string };
  text: string;
  ts: number;
}

interface Room {
  name: string;
  topic: string;
  members: Set<Socket>;
  history: Entry[];
  seq: number;
  strokes: Uint8Array[];
  boardBytes: number;
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
  /** Changes on every start, so pages can tell a restarted server from a dropped connection. */
  readonly boot = Array.from(crypto.getRandomValues(new Uint8Array(6)), (b) => b.toString(16).padStart(2, "0")).join("");
  private readonly rooms = new Map<string, Room>();
  private readonly perAddress = new Map<string, number>();
  private open = 0;
  private nextId = 1;
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
    const peer: Peer = {
      id: this.nextId++,
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
      this.log(`${peer.nick} left #${room.name} (${code}${reason ? ` ${reason}` : ""}); ${room.members.size} there now`);
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
      for (const other of room.members) {
        if (other.data.sid === sid) {
          // The same page, reconnected before its old socket was found dead: replace it quietly.
          other.data.replaced = true;
          room.members.delete(other);
          other.unsubscribe(room.topic);
          this.kick(other, 1008, "replaced by a newer connection");
        }
      }
    }
    const again = peer.nick !== "";
    peer.nick = nick;
    peer.sid = sid;
    peer.room = room;
    room.members.add(ws);
    room.touched = Date.now();
    ws.subscribe(room.topic);
    const l = this.limits;
    ws.send(JSON.stringify({
      t: "welcome",
      boot: this.boot,
      server: this.serverName,
      extensions: ws.extensions,
      you: { id: peer.id, nick },
      room: room.name,
      users: users(room),
      history: room.history,
      limits: { maxText: l.maxTextLength, chatRate: l.chatRate, drawRate: l.drawRate, maxMessageSize: l.maxMessageSize },
    }));
    if (room.strokes.length !== 0) ws.send(snapshot(room.strokes, room.boardBytes));
    ws.publish(room.topic, JSON.stringify({ t: "presence", users: users(room), joined: { id: peer.id, nick } }));
    this.log(`${nick} ${again ? "moved to" : "joined"} #${room.name} from ${peer.address}; ${room.members.size} there now`);
  }

  private say(ws: Socket, room: Room, m: Record<string, unknown>): void {
    const peer = ws.data;
    const text = cleanText(m.text, this.limits.maxTextLength);
    if (text === null) return this.kick(ws, 1008, `bad message: text is 1 to ${this.limits.maxTextLength} characters`);
    const entry: Entry = { seq: ++room.seq, from: { id: peer.id, nick: peer.nick }, text, ts: Date.now() };
    room.history.push(entry);
    if (room.history.length > this.limits.history) room.history.splice(0, room.history.length - this.limits.history);
    this.server?.publish(room.topic, JSON.stringify({ t: "msg", ...entry }));
  }

  private clear(ws: Socket, room: Room): void {
    room.strokes = [];
    room.boardBytes = 0;
    this.server?.publish(room.topic, JSON.stringify({ t: "clear", by: { id: ws.data.id, nick: ws.data.nick } }));
  }

  private stroke(ws: Socket, data: Uint8Array): void {
    const peer = ws.data;
    const room = peer.room;
    if (room === null) return this.kick(ws, 1008, "join a room first");
    if (!peer.draw.take()) return this.kick(ws, 1008, `too many strokes (the limit is ${this.limits.drawRate} per second)`);
    const error = strokeError(data);
    if (error !== null) return this.kick(ws, 1008, `bad stroke: ${error}`);
    const stroke = data.slice(); // `data` is only valid during the handler
    room.strokes.push(stroke);
    room.boardBytes += stroke.length;
    let forget = 0;
    while (room.boardBytes > this.limits.maxBoardBytes && forget < room.strokes.length) {
      room.boardBytes -= room.strokes[forget++].length;
    }
    if (forget !== 0) room.strokes.splice(0, forget);
    ws.publish(room.topic, stroke);
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
        if (r.members.size === 0 && (stalest === null || r.touched < stalest.touched)) stalest = r;
      }
      if (stalest === null) return null;
      this.rooms.delete(stalest.name);
    }
    room = { name, topic: `room:${name}`, members: new Set(), history: [], seq: 0, strokes: [], boardBytes: 0, touched: Date.now() };
    this.rooms.set(name, room);
    return room;
  }

  private leave(ws: Socket, room: Room): void {
    const peer = ws.data;
    room.members.delete(ws);
    room.touched = Date.now();
    ws.unsubscribe(room.topic);
    this.server?.publish(room.topic, JSON.stringify({ t: "presence", users: users(room), left: { id: peer.id, nick: peer.nick } }));
  }
}

function users(room: Room): { id: number; nick: string }[] {
  return [...room.members].map((ws) => ({ id: ws.data.id, nick: ws.data.nick }));
}
