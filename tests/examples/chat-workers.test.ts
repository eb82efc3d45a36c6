/**
 * `--workers 2`: the chat demo as two servers on one port (node:cluster on Node, worker threads
 * with reusePort on Deno and Bun), linked without a broker. Clients land on both workers (the
 * welcome names the worker); what one says or draws reaches the other, and a late joiner gets
 * the same history and board whichever worker it lands on.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import { runtimeName } from "../../adapters/auto.ts";
import { ChatClient, chatProcess, type ChatServer, startChat, stroke } from "../support/chat-demo.ts";
import { finish } from "../support/child.ts";
import { until } from "../support/time.ts";

let server: ChatServer | null = null;
const clients: ChatClient[] = [];

before(async () => {
  server = await startChat(["--port", "0", "--workers", "2"]);
});

after(async () => {
  for (const c of clients) c.close();
  if (server) await server.child.kill(5000);
});

/** Connects and joins until a client is on `worker` (connections are spread among workers). */
async function on(worker: number, nick: string, room: string): Promise<{ client: ChatClient; welcome: any }> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const client = await ChatClient.connect(server!.url);
    clients.push(client);
    const welcome = await client.join(nick, room);
    if (welcome.server === `anyws on ${runtimeName}, worker ${worker} of 2`) return { client, welcome };
    client.close();
  }
  throw new Error(`no connection landed on worker ${worker} in 20 tries\n${server!.child.describe()}`);
}

test(`chat demo --workers 2 on ${runtimeName}: both workers serve, and share rooms, history and board`, { timeout: 60_000 }, async () => {
  const summary = new RegExp(`2 workers on port ${server!.port}: ${runtimeName === "node" ? "node:cluster" : "worker threads, reusePort"}`);
  // The summary is printed right after the URL the start-up waits for.
  await until(() => summary.test(server!.child.lines.join("\n")), "the launcher's summary line");
  const out = server!.child.lines.join("\n");
  assert.match(out, /\[worker 1\] listening on port (\d+)/);
  assert.match(out, /\[worker 2\] listening on port (\d+)/);

  const alice = await on(1, "alice", "lobby");
  const bob = await on(2, "bob", "lobby");
  assert.equal(alice.welcome.boot, bob.welcome.boot, "one chat, one boot, whichever worker");
  // Presence crosses: alice (worker 1) is told bob (worker 2) joined.
  await alice.client.text((m) => m.t === "presence" && m.joined?.nick === "bob", "bob's arrival at alice");
  const present = (await alice.client.text((m) => m.t === "presence" && m.joined?.nick === "bob", "")).users.map((u: any) => u.nick).sort();
  assert.deepEqual(present, ["alice", "bob"]);

  alice.client.say("hello from worker 1");
  const heard = await bob.client.text((m) => m.t === "msg", "alice's message at bob");
  assert.equal(heard.text, "hello from worker 1");
  assert.equal(heard.from.nick, "alice");
  bob.client.say("and from worker 2");
  await alice.client.text((m) => m.t === "msg" && m.text === "and from worker 2", "bob's message at alice");

  const line = stroke(1, [[1000, 2000], [30000, 40000], [60000, 5000]]);
  bob.client.ws.send(line);
  await until(() => alice.client.binaries.length === 1, "bob's stroke at alice");
  assert.deepEqual(alice.client.binaries[0], line);

  // Late joiners, one on each worker: the same history (same ids, same order) and the board.
  const expected = [["alice", "hello from worker 1"], ["bob", "and from worker 2"]];
  const board = new Uint8Array([2, ...line]);
  const ids: string[][] = [];
  for (const worker of [1, 2]) {
    const late = await on(worker, `late${worker}`, "lobby");
    assert.deepEqual(late.welcome.history.map((e: any) => [e.from.nick, e.text]), expected, `history on worker ${worker}`);
    ids.push(late.welcome.history.map((e: any) => e.id));
    assert.deepEqual(late.welcome.users.map((u: any) => u.nick).sort().slice(0, 2), ["alice", "bob"], `presence on worker ${worker}`);
    await until(() => late.client.binaries.length === 1, `the board at the late joiner on worker ${worker}`);
    assert.deepEqual(late.client.binaries[0], board, `board on worker ${worker}`);
  }
  assert.deepEqual(ids[0], ids[1]);

  // Each worker's /stats: linked to the other, its backplane relayed and received, nothing missed.
  const stats = new Map<string, any>();
  for (let i = 0; i < 40 && stats.size < 2; i++) {
    const r = await fetch(`${server!.url}stats`);
    const s: any = await r.json();
    stats.set(s.node, s);
  }
  assert.equal(stats.size, 2, "both workers answered /stats");
  for (const s of stats.values()) {
    assert.equal(s.processes.length, 1, `${s.server} knows the other worker`);
    assert.ok(s.backplane.relayed > 0 && s.backplane.received > 0, `${s.server}: ${JSON.stringify(s.backplane)}`);
    assert.equal(s.backplane.gaps, 0);
    assert.equal(s.boot, alice.welcome.boot);
  }

  // A clear on one worker clears the board a newcomer on the other gets.
  alice.client.ws.send(JSON.stringify({ t: "clear" }));
  await bob.client.text((m) => m.t === "clear", "alice's clear at bob");
  const after = await on(2, "after", "lobby");
  await bob.client.text((m) => m.t === "presence" && m.joined?.nick === "after", "the newcomer's arrival");
  assert.equal(after.client.binaries.length, 0, "no board after the clear");
});

test(`chat demo --workers 2 on ${runtimeName}: a page that reconnects to the other worker replaces its old socket`, { timeout: 60_000 }, async () => {
  const sid = "reconnecting-page-1";
  const first = await on(1, "dora", "attic");
  first.client.ws.send(JSON.stringify({ t: "join", nick: "dora", room: "attic", sid }));
  await first.client.text((m) => m.t === "welcome" && m.room === "attic", "dora's second welcome", 1);
  // The same page (same sid), now on worker 2, before worker 1 noticed the old socket is gone.
  const again = await on(2, "dora", "attic-2");
  const welcome = await again.client.join("dora", "attic", sid);
  await until(() => first.client.closed !== null, "the old socket to be closed");
  assert.deepEqual(first.client.closed, { code: 1008, reason: "replaced by a newer connection" });
  const watcher = await on(1, "eve", "attic");
  // (Only dora is checked: eves that landed on worker 2 first may still be on their way out.)
  const doras = watcher.welcome.users.filter((u: any) => u.nick === "dora");
  assert.deepEqual(doras, [{ id: welcome.you.id, nick: "dora" }], "dora is there once, with her new socket");
});

test(`chat demo on ${runtimeName}: --help says what --workers uses here; bad --workers and --redis are refused`, { timeout: 60_000 }, async () => {
  const run = (flags: string[]) => finish(chatProcess(flags), 20_000);
  const help = await run(["--help"]);
  assert.equal(help.code, 0);
  assert.match(help.out, /--workers\s+CHAT_WORKERS\s+1/);
  assert.match(help.out, /--redis\s+CHAT_REDIS\s+none/);
  assert.match(help.out, runtimeName === "node" ? /--workers N on node: node:cluster/ : new RegExp(`--workers N on ${runtimeName}: worker threads, each listening with reusePort`));
  const zero = await run(["--workers", "0"]);
  assert.equal(zero.code, 2);
  assert.match(zero.err, /--workers must be a number from 1 to 256, not "0"/);
  const url = await run(["--redis", "localhost:6379"]);
  assert.equal(url.code, 2);
  assert.match(url.err, /--redis must be a redis:\/\/ or rediss:\/\/ URL, not "localhost:6379"/);
});

test(`chat demo --workers 2 on ${runtimeName}: SIGTERM stops every worker`, { timeout: 30_000 }, async () => {
  const child = server!.child;
  process.kill(child.pid!, "SIGTERM");
  let timer: ReturnType<typeof setTimeout> | undefined;
  const exit = await Promise.race([child.done(), new Promise((r) => (timer = setTimeout(() => r("timeout"), 15_000)))]);
  clearTimeout(timer);
  assert.deepEqual(exit, { code: 0, signal: null }, child.describe());
  // Nobody listens on the port any more.
  await assert.rejects(ChatClient.connect(server!.url));
});
