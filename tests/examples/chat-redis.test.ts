/**
 * `--redis URL`: two chat demo processes linked through a real redis-server (started by the test
 * on a free loopback port, with a temporary directory, stopped by pid), and headless Chromium
 * pages on both: they chat and draw together; the second process, started after the first has
 * a history and a board, takes them from it; a page that moves to the other process — even once
 * the first one is dead — gets the right history and board. And through a Redis outage: what is
 * said meanwhile reaches the other process once Redis is back, missed messages or not.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import { runtimeName } from "../../adapters/auto.ts";
import { ChatClient, type ChatServer, startChat, stroke } from "../support/chat-demo.ts";
import { Browser, type Page } from "../support/chat-page.ts";
import { RedisServer, redisAvailable } from "../support/redis.ts";
import { until } from "../support/time.ts";

const RED = [0xe5, 0x48, 0x4d, 255]; // the palette's second color, #e5484d
const BLUE = [0x3e, 0x63, 0xdd, 255]; // its sixth, #3e63dd

/** Whether `needle` occurs in `hay`. */
function contains(hay: Uint8Array, needle: Uint8Array): boolean {
  outer: for (let i = 0; i + needle.length <= hay.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return true;
  }
  return false;
}

/** A line across the board, through fractions of its size. */
function line(y: number): [number, number][] {
  const points: [number, number][] = [];
  for (let i = 0; i <= 20; i++) points.push([0.2 + (0.5 * i) / 20, y]);
  return points;
}

describe(`chat demo on ${runtimeName}: two processes linked by --redis, pages on both`, () => {
  let redis: RedisServer | null = null;
  let first: ChatServer | null = null;
  let second: ChatServer | null = null;
  let browser: Browser | null = null;

  const open = async (server: ChatServer, name: string) => {
    return await browser!.open(server.url, name);
  };
  const messages = async (page: Page) => (await page.log()).filter((l) => !l.startsWith("*"));
  const drawn = (page: Page, [fx, fy]: [number, number]) =>
    page.waitFor(`(() => {
      const c = document.getElementById("canvas");
      return c.getContext("2d").getImageData(Math.round(${fx} * c.width), Math.round(${fy} * c.height), 1, 1).data[3] === 255;
    })()`, `a stroke at ${fx}, ${fy} on ${page.name}'s board`);

  before(async () => {
    assert.ok(redisAvailable(), "redis-server is missing: apt-get install redis-server");
    redis = await RedisServer.start();
    first = await startChat(["--port", "0", "--redis", redis.url]);
    browser = await Browser.start();
  });

  after(async () => {
    await browser?.close();
    if (first) await first.child.kill(3000);
    if (second) await second.child.kill(3000);
    await redis?.stop();
  });

  let alice: Page;
  let bob: Page;
  const red = line(0.3);
  const blue = line(0.6);

  test("the second process takes the rooms from the first; pages on both chat and draw together", async () => {
    assert.match(first!.child.lines.join("\n"), /the first of the chat/);
    alice = await open(first!, "alice");
    await alice.join("alice", "lobby");
    await alice.say("hello from the first process");
    await alice.waitFor(`document.getElementById("log").textContent.includes("hello from the first process")`, "alice's own message");
    await alice.eval(`document.querySelectorAll(".swatch")[1].click(); document.querySelectorAll(".size")[2].click()`);
    await alice.draw(red);

    // Started now, the second process asks the first for the rooms before it listens.
    second = await startChat(["--port", "0", "--redis", redis!.url]);
    assert.notEqual(second.port, first!.port);
    assert.match(second.child.lines.join("\n"), /joined 1 other process/, second.child.describe());

    bob = await open(second, "bob");
    await bob.join("bob", "lobby");
    assert.deepEqual(await messages(bob), ["alice: hello from the first process"], "bob gets the history from the other process");
    await drawn(bob, red[10]);
    assert.deepEqual(await bob.pixel(...red[10]), RED, "and alice's stroke");
    await alice.waitFor(`document.querySelectorAll("#people li").length === 2`, "bob in alice's list");
    assert.deepEqual(await alice.people(), ["alice", "bob"]);
    assert.deepEqual(await bob.people(), ["bob", "alice"]);
    assert.ok((await alice.log()).includes("* bob joined"), "alice sees bob join, from the other process");
    const footers = await Promise.all([alice, bob].map((p) => p.eval<string>(`document.getElementById("server-name").textContent`)));
    assert.deepEqual(footers.map((f) => f.startsWith(`served by anyws on ${runtimeName}`)), [true, true]);

    await bob.say("hi alice, from the second process");
    await alice.waitFor(`document.getElementById("log").textContent.includes("hi alice, from the second process")`, "bob's message at alice");
    await bob.eval(`document.querySelectorAll(".swatch")[5].click(); document.querySelectorAll(".size")[2].click()`);
    await bob.draw(blue);
    await drawn(alice, blue[10]);
    assert.deepEqual(await alice.pixel(...blue[10]), BLUE, "bob's stroke on alice's board");
    await alice.say("nice line");
    await bob.waitFor(`document.getElementById("log").textContent.includes("nice line")`, "alice's answer at bob");

    const expected = ["alice: hello from the first process", "bob: hi alice, from the second process", "alice: nice line"];
    assert.deepEqual(await messages(alice), expected);
    assert.deepEqual(await messages(bob), expected);
  });

  test("a page that moves to the other process gets the same history and board, even with the first one dead", async () => {
    const expected = ["alice: hello from the first process", "bob: hi alice, from the second process", "alice: nice line"];
    // A newcomer on each process gets the same room.
    const carol = await open(first!, "carol");
    await carol.join("carol", "lobby");
    assert.deepEqual(await messages(carol), expected, "history on the first process");
    await drawn(carol, red[10]);
    await drawn(carol, blue[10]);

    // The first process dies; alice's page goes to the second one and finds everything there.
    process.kill(first!.child.pid!, "SIGKILL");
    await first!.child.done();
    await alice.goto(second!.url);
    await alice.join("alice", "lobby");
    assert.deepEqual(await messages(alice), expected, "history on the second process");
    await drawn(alice, red[10]);
    await drawn(alice, blue[10]);
    assert.deepEqual(await alice.pixel(...red[10]), RED);
    assert.deepEqual(await alice.pixel(...blue[10]), BLUE);
    assert.deepEqual(await alice.pixel(0.9, 0.9), [0, 0, 0, 0], "nothing where no one drew");

    // The dead process's people leave the list once it has been silent long enough.
    await bob.waitFor(`[...document.querySelectorAll("#people .name")].map((e) => e.textContent).join() === "bob,alice"`, "the dead process's people to go", 20_000);
    await alice.say("still here");
    await bob.waitFor(`document.getElementById("log").textContent.includes("still here")`, "alice's message on the same process");
    console.log(`screenshot: ${await alice.screenshot("redis-moved")}`);
  });
});

describe(`chat demo on ${runtimeName}: --redis through a Redis outage and lost messages`, () => {
  let redis: RedisServer | null = null;
  const servers: ChatServer[] = [];
  const clients: ChatClient[] = [];

  after(async () => {
    for (const c of clients) c.close();
    for (const s of servers) await s.child.kill(3000);
    await redis?.stop();
  });

  const client = async (server: ChatServer, nick: string) => {
    const c = await ChatClient.connect(server.url);
    clients.push(c);
    return { c, welcome: await c.join(nick, "lobby") };
  };
  /** Everything `c` has been told of the room's history: welcomes (sent again after a resync) and messages. */
  const heard = (c: ChatClient) =>
    new Set(c.texts.flatMap((m) => (m.t === "welcome" ? m.history : m.t === "msg" ? [m] : []).map((e: any) => e.text)));

  test("what is said while Redis is down reaches the other process once it is back, and late joiners get it", { timeout: 90_000 }, async () => {
    assert.ok(redisAvailable(), "redis-server is missing: apt-get install redis-server");
    redis = await RedisServer.start();
    servers.push(await startChat(["--port", "0", "--redis", redis.url]));
    servers.push(await startChat(["--port", "0", "--redis", redis.url]));
    const [a, b] = servers;
    const alice = await client(a, "alice");
    const bob = await client(b, "bob");
    alice.c.say("before the outage");
    await bob.c.text((m) => m.t === "msg" && m.text === "before the outage", "a message before the outage");

    await redis.kill();
    alice.c.say("alice, while Redis is down");
    bob.c.say("bob, while Redis is down");
    // Each process goes on serving its own pages meanwhile.
    await alice.c.text((m) => m.t === "msg" && m.text === "alice, while Redis is down", "alice's own message, Redis down");
    await bob.c.text((m) => m.t === "msg" && m.text === "bob, while Redis is down", "bob's own message, Redis down");
    await redis.restart();

    const all = ["before the outage", "alice, while Redis is down", "bob, while Redis is down"];
    await until(() => all.every((t) => heard(alice.c).has(t)) && all.every((t) => heard(bob.c).has(t)), "both pages to have everything", 30_000)
      .catch((error) => {
        throw new Error(`${error.message}\nalice: ${[...heard(alice.c)]}\nbob: ${[...heard(bob.c)]}\n${a.child.describe()}\n${b.child.describe()}`);
      });
    for (const server of servers) {
      const late = await client(server, "late");
      assert.deepEqual(late.welcome.history.map((e: any) => e.text).sort(), [...all].sort(), `a late joiner on ${server.url}`);
    }
    assert.equal(a.child.exit, null, "the first process is still running");
    assert.equal(b.child.exit, null, "the second process is still running");
  });

  test("a process that misses a stroke (Redis cuts its subscriber off) asks for the rooms again, and its pages get the board", { timeout: 90_000 }, async () => {
    const [a, b] = servers;
    const alice = await client(a, "alice2");
    const bob = await client(b, "bob2");
    const { createClient } = await import("redis");
    const admin = createClient({ url: redis!.url });
    await admin.connect();
    const big = stroke(3, Array.from({ length: 255 }, (_, i) => [i * 200, 30000] as [number, number]));
    const bLog = () => b.child.lines.join("\n");
    const downs = (bLog().match(/backplane down/g) ?? []).length;
    try {
      // A subscriber whose output buffer passes 512 bytes is cut off: the stroke (1,024 bytes) is lost on its way to b.
      await admin.configSet("client-output-buffer-limit", "pubsub 512 256 60");
      alice.c.ws.send(big);
      await until(() => (bLog().match(/backplane down/g) ?? []).length > downs, "Redis to cut the second process's subscriber off", 15_000);
    } finally {
      await admin.configSet("client-output-buffer-limit", "pubsub 33554432 8388608 60");
      await admin.close();
    }
    await until(() => /missed messages/.test(bLog()), "the second process to notice what it missed", 20_000);
    const has = (board: Uint8Array) => board[0] === 2 && board.length >= 1 + big.length && contains(board, big);
    await until(() => bob.c.binaries.some(has), "the board, with the stroke, sent again to bob", 20_000)
      .catch((error) => {
        throw new Error(`${error.message}\nbob got ${bob.c.binaries.map((x) => `[${x[0]}: ${x.length} B]`)}\n${a.child.describe()}\n${b.child.describe()}`);
      });
    const late = await client(b, "late2");
    await until(() => late.c.binaries.length !== 0, "the board at a late joiner");
    assert.ok(has(late.c.binaries[0]), "a late joiner on the second process gets the stroke it missed");
  });
});
