/**
 * `--workers 2` on Node, in headless Chromium: pages on one port, spread over two node:cluster
 * workers, chat and draw together; when the worker a page is on is killed, the page reconnects
 * to the same URL — the other worker, or the one started in its place — and has the right
 * history and board there.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import { type ChatServer, startChat } from "../support/chat-demo.ts";
import { Browser, type Page } from "../support/chat-page.ts";
import { until } from "../support/time.ts";

const RED = [0xe5, 0x48, 0x4d, 255]; // the palette's second color, #e5484d

let server: ChatServer | null = null;
let browser: Browser | null = null;

before(async () => {
  server = await startChat(["--port", "0", "--workers", "2"]);
  browser = await Browser.start();
});

after(async () => {
  await browser?.close();
  if (server) await server.child.kill(5000);
});

/** The worker serving a page, from its footer ("served by anyws on node, worker 2 of 2 · …"). */
const workerOf = async (page: Page) => Number(/worker (\d) of 2/.exec(await page.eval<string>(`document.getElementById("server-name").textContent`))?.[1]);
/** The pid of worker `n`, from what it printed last (a replaced worker prints again). */
const pidOf = (n: number) => Number([...server!.child.lines.join("\n").matchAll(new RegExp(`\\[worker ${n}\\] listening on port \\d+ \\(pid (\\d+)\\)`, "g"))].at(-1)?.[1]);
const messages = async (page: Page) => (await page.log()).filter((l) => !l.startsWith("*"));

test("pages on both workers chat and draw; a page whose worker is killed reconnects and has the right history and board", { timeout: 120_000 }, async () => {
  // Open pages until two are on different workers.
  const open = async (name: string) => {
    const page = await browser!.open(server!.url, name);
    await page.join(name, "lobby");
    return page;
  };
  const alice = await open("alice");
  let bob = await open("bob");
  for (let i = 0; (await workerOf(bob)) === (await workerOf(alice)); i++) {
    assert.ok(i < 10, "no page landed on the other worker");
    await bob.close();
    browser!.pages.splice(browser!.pages.indexOf(bob), 1);
    bob = await open("bob");
  }
  await alice.waitFor(`[...document.querySelectorAll("#people .name")].map((e) => e.textContent).join() === "alice,bob"`, "bob in alice's list");

  await alice.say("hello from one worker");
  await bob.waitFor(`document.getElementById("log").textContent.includes("hello from one worker")`, "alice's message at bob");
  await bob.say("and from the other");
  await alice.waitFor(`document.getElementById("log").textContent.includes("and from the other")`, "bob's message at alice");
  await alice.eval(`document.querySelectorAll(".swatch")[1].click(); document.querySelectorAll(".size")[2].click()`);
  const line: [number, number][] = [];
  for (let i = 0; i <= 20; i++) line.push([0.2 + (0.5 * i) / 20, 0.4]);
  await alice.draw(line);
  const [fx, fy] = line[10];
  const drawn = (page: Page) =>
    page.waitFor(`(() => {
      const c = document.getElementById("canvas");
      return c.getContext("2d").getImageData(Math.round(${fx} * c.width), Math.round(${fy} * c.height), 1, 1).data[3] === 255;
    })()`, `alice's stroke on ${page.name}'s board`, 20_000);
  await drawn(bob);
  assert.deepEqual(await bob.pixel(fx, fy), RED);

  // Kill the worker bob is on: his page reconnects to the same URL, and so to another process.
  const worker = await workerOf(bob);
  const pid = pidOf(worker);
  assert.ok(pid > 0 && pid !== server!.child.pid, `worker ${worker}'s pid`);
  process.kill(pid, "SIGKILL");
  await bob.waitFor(`document.getElementById("status").dataset.state !== "open"`, "bob's page to notice");
  await bob.waitFor(`document.getElementById("status").dataset.state === "open"`, "bob's page to reconnect", 30_000);
  await until(() => pidOf(worker) !== pid, `worker ${worker} to be replaced`, 30_000);

  const expected = ["alice: hello from one worker", "bob: and from the other"];
  assert.deepEqual(await messages(bob), expected, "bob's history, once each");
  await drawn(bob); // the board was cleared on the welcome and drawn again from the server's snapshot
  assert.deepEqual(await bob.pixel(fx, fy), RED);
  await bob.say("back again");
  await alice.waitFor(`document.getElementById("log").textContent.includes("back again")`, "bob's message after reconnecting");

  // Newcomers, wherever they land (the replacement worker took the rooms from the survivor).
  for (const name of ["carol", "dave"]) {
    const page = await open(name);
    assert.deepEqual(await messages(page), [...expected, "bob: back again"], `${name}'s history on worker ${await workerOf(page)}`);
    await drawn(page);
    assert.deepEqual(await page.pixel(fx, fy), RED);
  }
  assert.equal(server!.child.exit, null, "the primary is still running");
});
