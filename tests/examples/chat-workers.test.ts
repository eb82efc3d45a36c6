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
import { ChatClient, type ChatServer, startChat, stroke } from "../support/chat-demo.ts";
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
  const out = server!.child.lines.join("\n");
  assert.match(out, /\[worker 1\] listening on port (\d+)/);
  assert.match(out, /\[worker 2\] listening on port (\d+)/);
  assert.match(out, new RegExp(`2 workers on port ${server!.port}: ${runtimeName === "node" ? "node:cluster" : "worker threads, reusePort"}`));

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

  // A clear on one worker clears the board a newcomer on the other gets.
  alice.client.ws.send(JSON.stringify({ t: "clear" }));
  await bob.client.text((m) => m.t === "clear", "alice's clear at bob");
  const after = await on(2, "after", "lobby");
  await bob.client.text((m) => m.t === "presence" && m.joined?.nick === "after", "the newcomer's arrival");
  assert.equal(after.client.binaries.length, 0, "no board after the clear");
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
