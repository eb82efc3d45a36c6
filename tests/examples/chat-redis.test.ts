/**
 * `--redis URL`: two chat demo processes linked through a real redis-server (started by the test
 * on a free loopback port, with a temporary directory, stopped by pid), and headless Chromium
 * pages on both: they chat and draw together; the second process, started after the first has
 * a history and a board, takes them from it; a page that moves to the other process — even once
 * the first one is dead — gets the right history and board.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import process from "node:process";
import { runtimeName } from "../../adapters/auto.ts";
import { type ChatServer, startChat } from "../support/chat-demo.ts";
import { type Cdp, devTools, Page, startChromium } from "../support/chat-page.ts";
import { type Chromium, CHROMIUM } from "../support/chromium.ts";
import { RedisServer, redisAvailable } from "../support/redis.ts";

const RED = [0xe5, 0x48, 0x4d, 255]; // the palette's second color, #e5484d
const BLUE = [0x3e, 0x63, 0xdd, 255]; // its sixth, #3e63dd

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
  let chromium: Chromium | null = null;
  let cdp: Cdp | null = null;
  const pages: Page[] = [];

  const open = async (server: ChatServer, name: string) => {
    const page = await Page.open(cdp!, server.url, name);
    pages.push(page);
    return page;
  };
  const messages = async (page: Page) => (await page.log()).filter((l) => !l.startsWith("*"));
  const drawn = (page: Page, [fx, fy]: [number, number]) =>
    page.waitFor(`(() => {
      const c = document.getElementById("canvas");
      return c.getContext("2d").getImageData(Math.round(${fx} * c.width), Math.round(${fy} * c.height), 1, 1).data[3] === 255;
    })()`, `a stroke at ${fx}, ${fy} on ${page.name}'s board`);

  before(async () => {
    assert.ok(redisAvailable(), "redis-server is missing: apt-get install redis-server");
    assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install chromium`);
    redis = await RedisServer.start();
    first = await startChat(["--port", "0", "--redis", redis.url]);
    chromium = await startChromium();
    cdp = await devTools(chromium);
  });

  after(async () => {
    for (const page of pages) await page.close();
    cdp?.close();
    await chromium?.close();
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
