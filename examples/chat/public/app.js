// anyws chat & draw — the page. Plain JavaScript and the browser's own WebSocket.
// The messages it exchanges with the server are described in ../protocol.ts.
// @ts-nocheck — browser code: the project's type check (tsc, no DOM types) leaves it alone.

const $ = (id) => document.getElementById(id);

// ---- board format (see protocol.ts) ----------------------------------------------------------

const STROKE = 1;
const SNAPSHOT = 2;
const MAX_POINTS = 255;
const PALETTE = ["#1f2433", "#e5484d", "#f76b15", "#f5b400", "#30a46c", "#3e63dd", "#8e4ec6", "#e93d82"];
const ERASER = 8;
const SIZES = [3, 6, 12, 24]; // thousandths of the board's width

// ---- state -----------------------------------------------------------------------------------

const sid = sessionStorage.getItem("anyws.sid") ?? randomId();
sessionStorage.setItem("anyws.sid", sid);

let ws = null;
let wanted = null; // { nick, room } the user asked for
let me = null; // { id, nick } from the server
let roomName = null; // the room the server put us in
let boot = null; // the server run our history belongs to
const shown = new Set(); // ids of the messages in the log: a server may send one again
let limits = { maxText: 500, chatRate: 5, drawRate: 60, maxMessageSize: 16384 };
let everOpen = false;
let attempt = 0;
let retryTimer = null;
let countdownTimer = null;
let restoredTimer = null;
let state = "idle";

function randomId() {
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

// ---- connection ------------------------------------------------------------------------------

function socketUrl() {
  const url = new URL("/ws", location.href);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  return url.href;
}

function connect() {
  clearTimeout(retryTimer);
  clearInterval(countdownTimer);
  if (ws) return;
  setState(everOpen ? "reconnecting" : "connecting");
  const socket = new WebSocket(socketUrl());
  socket.binaryType = "arraybuffer";
  ws = socket;
  socket.onopen = () => {
    if (ws !== socket) return;
    send(JSON.stringify({ t: "join", nick: wanted.nick, room: wanted.room, sid }));
  };
  socket.onmessage = (event) => {
    if (ws !== socket) return;
    if (typeof event.data === "string") {
      count("in", new TextEncoder().encode(event.data).length);
      onText(event.data);
    } else {
      count("in", event.data.byteLength);
      onBinary(new Uint8Array(event.data));
    }
  };
  socket.onclose = (event) => {
    if (ws !== socket) return;
    ws = null;
    disconnected(event);
  };
}

/** Backoff: 0.5 s, 1 s, 2 s, 4 s, 8 s, then every 10 s, each ±25%. */
function disconnected(event) {
  endStroke();
  attempt++;
  const delay = Math.min(10_000, 500 * 2 ** (attempt - 1)) * (0.75 + Math.random() * 0.5);
  const why = event.reason || (event.code === 1006 ? "" : `code ${event.code}`);
  const until = Date.now() + delay;
  setState("waiting", { until, why });
  countdownTimer = setInterval(() => setState("waiting", { until, why }), 250);
  retryTimer = setTimeout(connect, delay);
}

function retryNow() {
  if (ws || !wanted) return;
  connect();
}

addEventListener("online", retryNow);
$("retry").addEventListener("click", retryNow);

function setState(next, info = {}) {
  const previous = state;
  state = next;
  const status = $("status");
  const banner = $("banner");
  const text = $("banner-text");
  status.dataset.state = next;
  $("app").dataset.offline = String(next !== "open");
  $("paper").dataset.disabled = String(next !== "open");
  $("say-form").querySelector("button").disabled = next !== "open";
  clearTimeout(restoredTimer);
  switch (next) {
    case "connecting":
      $("status-text").textContent = "Connecting…";
      banner.hidden = true;
      banner.dataset.state = "hidden";
      break;
    case "open":
      $("status-text").textContent = "Connected";
      if (previous === "reconnecting" || previous === "waiting") {
        banner.hidden = false;
        banner.dataset.state = "restored";
        text.textContent = `Reconnected — you're back in #${roomName}.`;
        restoredTimer = setTimeout(() => {
          banner.hidden = true;
          banner.dataset.state = "hidden";
        }, 3000);
      } else {
        banner.hidden = true;
        banner.dataset.state = "hidden";
      }
      break;
    case "waiting": {
      const seconds = Math.max(0, Math.ceil((info.until - Date.now()) / 1000));
      $("status-text").textContent = "Offline";
      banner.hidden = false;
      banner.dataset.state = "lost";
      const what = everOpen ? "Connection lost" : "Can't reach the server";
      text.textContent = `${what}${info.why ? ` (${info.why})` : ""}. Reconnecting in ${seconds} s…`;
      break;
    }
    case "reconnecting":
      $("status-text").textContent = "Reconnecting…";
      banner.hidden = false;
      banner.dataset.state = "reconnecting";
      text.textContent = "Reconnecting…";
      break;
  }
}

/** Sends a message and counts it for the traffic line under the board. */
function send(data) {
  ws.send(data);
  count("out", typeof data === "string" ? new TextEncoder().encode(data).length : data.byteLength);
}

const traffic = { in: { messages: 0, bytes: 0 }, out: { messages: 0, bytes: 0 } };
let trafficShown = false;

function count(direction, bytes) {
  traffic[direction].messages++;
  traffic[direction].bytes += bytes;
  if (!trafficShown) {
    trafficShown = true;
    requestAnimationFrame(() => {
      trafficShown = false;
      const size = (n) => (n < 1024 ? `${n} B` : n < 1048576 ? `${(n / 1024).toFixed(1)} kB` : `${(n / 1048576).toFixed(1)} MB`);
      const t = traffic;
      $("traffic").textContent = `messages sent ${t.out.messages} (${size(t.out.bytes)})  ·  received ${t.in.messages} (${size(t.in.bytes)})`;
    });
  }
}

// ---- messages from the server ----------------------------------------------------------------

function onText(text) {
  let m;
  try {
    m = JSON.parse(text);
  } catch {
    return;
  }
  switch (m.t) {
    case "welcome":
      return welcome(m);
    case "presence":
      renderPeople(m.users);
      if (m.joined && m.joined.id !== me?.id) note(`${m.joined.nick} joined`);
      if (m.left && m.left.id !== me?.id) note(`${m.left.nick} left`);
      return;
    case "msg":
      return message(m);
    case "clear":
      clearBoard();
      return note(`${m.by.id === me?.id ? "You" : m.by.nick} cleared the board`);
  }
}

function welcome(m) {
  const sameRoom = roomName === m.room;
  me = m.you;
  if (!sameRoom) {
    $("log").replaceChildren();
    shown.clear();
  } else if (m.boot !== boot) {
    note("The server restarted: the board and the history start afresh.", "warn");
    shown.clear();
  }
  for (const entry of m.history) message(entry); // those already shown are skipped
  clearBoard(); // the server's board follows, if it has one
  boot = m.boot;
  roomName = m.room;
  limits = m.limits;
  chatBucket = bucket(limits.chatRate);
  attempt = 0;
  everOpen = true;
  $("room-title").hidden = false;
  $("room-name").textContent = m.room;
  $("switch").hidden = false;
  $("invite").hidden = false;
  $("server-name").textContent = `served by ${m.server}${m.extensions ? ` · ${m.extensions.split(";")[0]}` : ""}`;
  $("say").maxLength = limits.maxText;
  document.title = `#${m.room} · anyws chat & draw`;
  history.replaceState(null, "", `#${encodeURIComponent(m.room)}`);
  renderPeople(m.users);
  setState("open");
}

function onBinary(bytes) {
  if (bytes[0] === STROKE) {
    drawMessage(bytes, 0);
  } else if (bytes[0] === SNAPSHOT) {
    clearBoard();
    for (let offset = 1; offset + 4 <= bytes.length;) offset = drawMessage(bytes, offset);
  }
}

// ---- chat ------------------------------------------------------------------------------------

const AVATAR_COLORS = ["#e5484d", "#f76b15", "#d6a100", "#30a46c", "#12a594", "#0090ff", "#3e63dd", "#8e4ec6", "#d6409f", "#978365"];

/** A nickname's color: FNV-1a over its characters, so the same name always gets the same one. */
function colorOf(nick) {
  let h = 0x811c9dc5;
  for (const ch of nick) h = Math.imul(h ^ ch.codePointAt(0), 0x01000193) >>> 0;
  return AVATAR_COLORS[h % AVATAR_COLORS.length];
}

function avatar(nick) {
  const el = document.createElement("span");
  el.className = "avatar";
  el.style.setProperty("--c", colorOf(nick));
  el.textContent = [...nick][0]?.toUpperCase() ?? "?";
  return el;
}

function renderPeople(users) {
  const list = $("people");
  const sorted = [...users].sort((a, b) => (a.id === me?.id ? -1 : b.id === me?.id ? 1 : a.nick.localeCompare(b.nick)));
  list.replaceChildren(...sorted.map((u) => {
    const li = document.createElement("li");
    li.dataset.id = u.id;
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = u.nick;
    li.append(avatar(u.nick), name);
    if (u.id === me?.id) {
      const you = document.createElement("span");
      you.className = "you";
      you.textContent = "(you)";
      li.append(you);
    }
    return li;
  }));
  $("people-count").textContent = users.length;
}

// The log follows new messages unless the reader has scrolled up to read older ones.
let followLog = true;
const logList = $("log");
logList.addEventListener("scroll", () => {
  followLog = logList.scrollHeight - logList.scrollTop - logList.clientHeight < 40;
});
new ResizeObserver(() => {
  if (followLog) logList.scrollTop = logList.scrollHeight;
}).observe(logList);

function append(item) {
  logList.append(item);
  while (logList.children.length > 500) logList.firstElementChild.remove();
  if (followLog) logList.scrollTop = logList.scrollHeight;
}

function message(m) {
  if (shown.has(m.id)) return;
  shown.add(m.id);
  if (shown.size > 2000) shown.delete(shown.values().next().value);
  const li = document.createElement("li");
  li.className = "msg" + (m.from.id === me?.id ? " mine" : "");
  const body = document.createElement("div");
  body.className = "body";
  const meta = document.createElement("div");
  meta.className = "meta";
  const nick = document.createElement("span");
  nick.className = "nick";
  nick.textContent = m.from.nick;
  nick.style.setProperty("--c", colorOf(m.from.nick));
  const time = document.createElement("time");
  const at = new Date(m.ts);
  time.dateTime = at.toISOString();
  time.textContent = at.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  meta.append(nick, time);
  const text = document.createElement("div");
  text.className = "text";
  text.textContent = m.text;
  body.append(meta, text);
  li.append(avatar(m.from.nick), body);
  append(li);
}

function note(text, kind = "") {
  const li = document.createElement("li");
  li.className = `note ${kind}`.trim();
  li.textContent = text;
  append(li);
}

/** The server closes a socket that sends faster than its limit: stay under it. */
function bucket(rate) {
  const burst = Math.max(2, rate * 2) - 1;
  let tokens = burst;
  let last = performance.now();
  return () => {
    const now = performance.now();
    tokens = Math.min(burst, tokens + ((now - last) / 1000) * rate * 0.9);
    last = now;
    if (tokens < 1) return false;
    tokens -= 1;
    return true;
  };
}
let chatBucket = bucket(limits.chatRate);

$("say-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const input = $("say");
  const text = input.value.trim();
  if (!text || !ws || state !== "open") return;
  if (!chatBucket()) {
    note("Slow down a little — too many messages at once.", "warn");
    return;
  }
  send(JSON.stringify({ t: "say", text: text.slice(0, limits.maxText) }));
  input.value = "";
});

// ---- board -----------------------------------------------------------------------------------

const canvas = $("canvas");
const ctx = canvas.getContext("2d", { willReadFrequently: false });
let color = 0;
let size = 1;

function clearBoard() {
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  $("paper").dataset.empty = "true";
}

/** Draws points ([x, y] in 0..65535) as one line. */
function drawLine(colorIndex, width, points) {
  const W = canvas.width;
  const H = canvas.height;
  ctx.save();
  ctx.globalCompositeOperation = colorIndex === ERASER ? "destination-out" : "source-over";
  ctx.strokeStyle = ctx.fillStyle = colorIndex === ERASER ? "#000" : PALETTE[colorIndex] ?? PALETTE[0];
  ctx.lineWidth = (width * W) / 1000;
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
  const x = (p) => (p[0] / 65535) * W;
  const y = (p) => (p[1] / 65535) * H;
  if (points.length === 1) {
    ctx.beginPath();
    ctx.arc(x(points[0]), y(points[0]), ctx.lineWidth / 2, 0, Math.PI * 2);
    ctx.fill();
  } else {
    ctx.beginPath();
    ctx.moveTo(x(points[0]), y(points[0]));
    for (let i = 1; i < points.length; i++) ctx.lineTo(x(points[i]), y(points[i]));
    ctx.stroke();
  }
  ctx.restore();
  if (colorIndex !== ERASER) $("paper").dataset.empty = "false";
}

/** Draws the stroke at `offset`; returns the offset after it (or the end, if it is malformed). */
function drawMessage(bytes, offset) {
  const n = bytes[offset + 3];
  const end = offset + 4 + 4 * n;
  if (n === 0 || end > bytes.length) return bytes.length;
  const view = new DataView(bytes.buffer, bytes.byteOffset + offset + 4, 4 * n);
  const points = [];
  for (let i = 0; i < n; i++) points.push([view.getUint16(4 * i, true), view.getUint16(4 * i + 2, true)]);
  drawLine(bytes[offset + 1], bytes[offset + 2], points);
  return end;
}

function encode(colorIndex, width, points) {
  const bytes = new Uint8Array(4 + 4 * points.length);
  bytes[0] = STROKE;
  bytes[1] = colorIndex;
  bytes[2] = width;
  bytes[3] = points.length;
  const view = new DataView(bytes.buffer);
  points.forEach(([x, y], i) => {
    view.setUint16(4 + 4 * i, x, true);
    view.setUint16(6 + 4 * i, y, true);
  });
  return bytes;
}

// A stroke being drawn: drawn here at once, sent in pieces a few times a second, each piece
// starting at the last point of the one before, so the others see one continuous line.
let stroke = null; // { pointerId, color, width, last, pending: [], sent: bool }
let flushTimer = null;

function boardPoint(event) {
  const r = canvas.getBoundingClientRect();
  const fx = Math.min(1, Math.max(0, (event.clientX - r.left) / r.width));
  const fy = Math.min(1, Math.max(0, (event.clientY - r.top) / r.height));
  return [Math.round(fx * 65535), Math.round(fy * 65535)];
}

function flush() {
  clearTimeout(flushTimer);
  flushTimer = null;
  if (!stroke || stroke.pending.length === 0 || !ws || state !== "open") return;
  while (stroke.pending.length > 0) {
    const piece = stroke.anchor ? [stroke.anchor] : [];
    const take = stroke.pending.splice(0, MAX_POINTS - piece.length);
    piece.push(...take);
    send(encode(stroke.color, stroke.width, piece));
    stroke.anchor = piece[piece.length - 1];
  }
}

function scheduleFlush() {
  if (flushTimer === null) flushTimer = setTimeout(flush, Math.max(33, 1100 / limits.drawRate));
}

canvas.addEventListener("pointerdown", (event) => {
  if (state !== "open" || stroke || event.button !== 0) return;
  canvas.setPointerCapture(event.pointerId);
  const p = boardPoint(event);
  stroke = { pointerId: event.pointerId, color, width: SIZES[size], last: p, pending: [p], anchor: null };
  drawLine(stroke.color, stroke.width, [p]);
  scheduleFlush();
});

canvas.addEventListener("pointermove", (event) => {
  if (!stroke || event.pointerId !== stroke.pointerId) return;
  const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [event];
  for (const e of events.length ? events : [event]) {
    const p = boardPoint(e);
    if (p[0] === stroke.last[0] && p[1] === stroke.last[1]) continue;
    drawLine(stroke.color, stroke.width, [stroke.last, p]);
    stroke.last = p;
    stroke.pending.push(p);
  }
  if (stroke.pending.length >= MAX_POINTS - 1) flush();
  else scheduleFlush();
});

function endStroke(event) {
  if (!stroke || (event && event.pointerId !== stroke.pointerId)) return;
  flush();
  stroke = null;
}
canvas.addEventListener("pointerup", endStroke);
canvas.addEventListener("pointercancel", endStroke);

function buildTools() {
  const swatches = $("swatches");
  [...PALETTE, null].forEach((hex, i) => {
    const b = document.createElement("button");
    b.type = "button";
    b.className = hex ? "swatch" : "swatch eraser";
    b.setAttribute("role", "radio");
    b.title = hex ? `Color ${i + 1}` : "Eraser";
    b.setAttribute("aria-label", b.title);
    if (hex) b.style.setProperty("--c", hex);
    b.addEventListener("click", () => {
      color = hex ? i : ERASER;
      for (const s of swatches.children) s.setAttribute("aria-checked", String(s === b));
    });
    b.setAttribute("aria-checked", String(i === 0));
    swatches.append(b);
  });
  const sizes = $("sizes");
  SIZES.forEach((w, i) => {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "size";
    b.setAttribute("role", "radio");
    b.setAttribute("aria-label", `Brush ${i + 1}`);
    const dot = document.createElement("span");
    const px = 4 + i * 5;
    dot.style.width = dot.style.height = `${px}px`;
    b.append(dot);
    b.addEventListener("click", () => {
      size = i;
      for (const s of sizes.children) s.setAttribute("aria-checked", String(s === b));
    });
    b.setAttribute("aria-checked", String(i === size));
    sizes.append(b);
  });
  $("clear").addEventListener("click", () => {
    if (ws && state === "open" && chatBucket()) send(JSON.stringify({ t: "clear" }));
  });
}

// ---- joining ---------------------------------------------------------------------------------

function showJoin() {
  $("nick").value = wanted?.nick ?? localStorage.getItem("anyws.nick") ?? "";
  $("room").value = wanted?.room ?? (decodeURIComponent(location.hash.slice(1)) || "lobby");
  $("cancel-join").hidden = !wanted;
  $("join").hidden = false;
  ($("nick").value ? $("room") : $("nick")).focus();
}

function joinError(text) {
  let p = $("join-form").querySelector(".error");
  if (!p) {
    p = document.createElement("p");
    p.className = "error";
    $("join-form").querySelector(".actions").before(p);
  }
  p.textContent = text;
}

$("join-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const nick = $("nick").value.trim();
  const room = $("room").value.trim().toLowerCase();
  if (!nick) return joinError("Pick a nickname.");
  if (!/^[\p{L}\p{N}][\p{L}\p{N} _.-]{0,31}$/u.test(room)) {
    return joinError("A room name is letters, digits, spaces and _ . - (up to 32).");
  }
  localStorage.setItem("anyws.nick", nick);
  wanted = { nick, room };
  $("join").hidden = true;
  $("join-form").querySelector(".error")?.remove();
  if (ws && state === "open") send(JSON.stringify({ t: "join", nick, room, sid }));
  else if (!ws) connect();
  $("say").focus();
});

$("switch").addEventListener("click", showJoin);
$("invite").addEventListener("click", async () => {
  const button = $("invite");
  try {
    await navigator.clipboard.writeText(location.href); // only in a secure context (https, localhost)
    button.textContent = "Link copied";
    setTimeout(() => (button.textContent = "Copy invite link"), 2000);
  } catch {
    prompt("Copy this link to invite someone to the room:", location.href);
  }
});
$("cancel-join").addEventListener("click", () => ($("join").hidden = true));
addEventListener("keydown", (event) => {
  if (event.key === "Escape" && wanted && !$("join").hidden) $("join").hidden = true;
});

buildTools();
showJoin();
