/**
 * What the chat page and the server say to each other (public/app.js is the other side).
 *
 * Text messages are JSON objects with a `t` field:
 *   page → server   {t:"join", nick, room, sid?}   join a room (again: switch rooms)
 *                   {t:"say", text}                a chat message to the room
 *                   {t:"clear"}                    clear the room's board
 *   server → page   {t:"welcome", boot, server, you, room, users, history, limits}
 *                   {t:"presence", users, joined?, left?}
 *                   {t:"msg", id, seq, from, text, ts}
 *                   {t:"clear", by}
 * `boot` changes when the server restarts, so a reconnecting page knows whether the room's
 * history it has is still the server's. `sid` is the page's own random id, so that a page that
 * reconnects replaces its old connection instead of appearing twice. A message's `id` is unique
 * across the server's processes, so a page that gets the history again (on reconnecting, maybe
 * to another process) shows each message once; `you.id` and the users' ids are strings.
 *
 * Binary messages are strokes, in both directions:
 *   stroke     [1, color, width, n, x1 y1, …, xn yn]   every x and y a little-endian uint16,
 *              0..65535 across the board; color 0..7 is the palette, 8 the eraser; width 1..64
 *              in 1/1000 of the board's width; n 1..255 points (4 + 4n bytes)
 *   snapshot   [2, stroke, stroke, …]                   server → page: the board, on joining
 * A long stroke goes as several messages, each starting where the last one ended.
 */

export const STROKE = 1;
export const SNAPSHOT = 2;
export const COLORS = 9; // 8 colors and the eraser
export const MAX_WIDTH = 64;
export const MAX_POINTS = 255;

/** Why `stroke` is not a valid stroke message, or null if it is one. */
export function strokeError(stroke: Uint8Array): string | null {
  if (stroke.length < 8) return `${stroke.length} bytes is too short for a stroke`;
  if (stroke[0] !== STROKE) return `unknown binary message type ${stroke[0]}`;
  if (stroke[1] >= COLORS) return `no color ${stroke[1]}`;
  if (stroke[2] < 1 || stroke[2] > MAX_WIDTH) return `width ${stroke[2]} out of range`;
  const n = stroke[3];
  if (n < 1) return "a stroke needs a point";
  if (stroke.length !== 4 + 4 * n) return `${n} points take ${4 + 4 * n} bytes, not ${stroke.length}`;
  return null;
}

/** The board as one message: SNAPSHOT followed by the strokes. */
export function snapshot(strokes: readonly Uint8Array[], bytes: number): Uint8Array {
  const out = new Uint8Array(1 + bytes);
  out[0] = SNAPSHOT;
  let offset = 1;
  for (const s of strokes) {
    out.set(s, offset);
    offset += s.length;
  }
  return out;
}

/** Names and text from the page: control characters become spaces, surrounding space goes. */
export function cleanText(value: unknown, max: number): string | null {
  if (typeof value !== "string") return null;
  // deno-lint-ignore no-control-regex
  const text = value.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, " ").trim();
  return text.length === 0 || [...text].length > max ? null : text;
}

/** Room names: letters, digits, space, `_ . -`; case-insensitive (kept in lower case). */
export function cleanRoom(value: unknown): string | null {
  const room = cleanText(value, 32)?.toLowerCase();
  return room !== undefined && /^[\p{L}\p{N}][\p{L}\p{N} _.-]*$/u.test(room) ? room : null;
}
