/**
 * The client side of the backplane end-to-end tests (see topic-server.ts): clients spread over
 * servers in several processes or threads, publishers, and the check that every subscriber got
 * every message once, in each publisher's order.
 */
import assert from "node:assert/strict";
import { WebSocket } from "../../adapters/auto.ts";
import { assertBytes } from "./bytes.ts";
import { until } from "./time.ts";

export interface TopicClient {
  ws: InstanceType<typeof WebSocket>;
  /** Which server process or thread it landed on (its greeting). */
  who: string;
  /** What arrived after the greeting and the subscription's answer. */
  messages: (string | Uint8Array)[];
}

/** A client on `port`, subscribed to "room". */
export async function topicClient(port: number): Promise<TopicClient> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/`);
  ws.binaryType = "uint8array";
  const inbox: (string | Uint8Array)[] = [];
  ws.addEventListener("message", (e) => inbox.push((e as MessageEvent).data));
  await new Promise((resolve, reject) => {
    ws.addEventListener("open", resolve);
    ws.addEventListener("error", () => reject(new Error(`cannot connect to port ${port}`)));
  });
  await until(() => inbox.length >= 1, "the greeting");
  const who = String(inbox[0]).replace(/^hello /, "");
  ws.send("sub room");
  await until(() => inbox.length >= 2, "the subscription");
  assert.equal(inbox[1], "subscribed room");
  inbox.splice(0, 2);
  return { ws, who, messages: inbox };
}

/** Clients on `ports` until each of `everyone` has `perProcess` of them (ports may be shared, as in a cluster). */
export async function clientsOn(ports: number[], everyone: string[], perProcess: number): Promise<Map<string, TopicClient[]>> {
  const by = new Map<string, TopicClient[]>(everyone.map((w) => [w, []]));
  const extra: TopicClient[] = [];
  for (let attempt = 0; attempt < 50 && [...by.values()].some((l) => l.length < perProcess); attempt++) {
    const c = await topicClient(ports[attempt % ports.length]!);
    const list = by.get(c.who)!;
    if (list.length < perProcess) list.push(c);
    else extra.push(c);
  }
  for (const c of extra) c.ws.close();
  assert.deepEqual([...by].map(([w, l]) => [w, l.length]), everyone.map((w) => [w, perProcess]), "clients on every process");
  return by;
}

/** What publisher `name` sends: text that names it and numbers it, and (if `binary`) bytes from 0 B to 1 MiB. */
export function publication(name: string, binary: boolean): (string | Uint8Array)[] {
  const text = Array.from({ length: 40 }, (_, i) => `${name} ${i} ${"é".repeat(i)}`);
  if (!binary) return text;
  const sizes = [0, 1, 125, 126, 127, 65_535, 65_536, 1024 * 1024];
  return [...text, ...sizes.map((size, n) => Uint8Array.from({ length: size }, (_, i) => (i * 7 + n) & 0xff))];
}

/** Sends `messages` as "pub room TEXT" or as binary (published to "room"). */
export function publish(client: TopicClient, messages: (string | Uint8Array)[]): void {
  for (const m of messages) client.ws.send(typeof m === "string" ? `pub room ${m}` : m);
}

/**
 * Waits until `receiver` has everything `sent` lists, then checks it got each publisher's
 * messages exactly once and in order (publishers interleave freely). Binary messages belong to
 * the one publisher that sends binary.
 */
export async function assertReceived(receiver: TopicClient, sent: Map<string, (string | Uint8Array)[]>, what: string): Promise<void> {
  const total = [...sent.values()].reduce((n, l) => n + l.length, 0);
  await until(() => receiver.messages.length >= total, `${what}: ${total} messages`, 30_000).catch((e) => {
    throw new Error(`${e.message} (got ${receiver.messages.length})`);
  });
  assert.equal(receiver.messages.length, total, `${what}: no more, no fewer`);
  for (const [name, messages] of sent) {
    const binaryPublisher = messages.some((m) => typeof m !== "string");
    const got = receiver.messages.filter((m) => (typeof m === "string" ? m.startsWith(`${name} `) : binaryPublisher));
    assert.equal(got.length, messages.length, `${what}: messages from ${name}`);
    messages.forEach((m, i) => {
      if (typeof m === "string") assert.equal(got[i], m, `${what}: message ${i} from ${name}`);
      else assertBytes(got[i] as Uint8Array, m, `${what}: message ${i} from ${name}`);
    });
  }
}

/** Closes `clients` and waits for their closing handshakes. */
export async function closeAll(clients: TopicClient[]): Promise<void> {
  await Promise.all(clients.map((c) => new Promise((resolve) => {
    if (c.ws.readyState === WebSocket.CLOSED) return resolve(undefined);
    c.ws.addEventListener("close", resolve);
    c.ws.close();
  })));
}
