/**
 * The chat & draw demo (examples/chat/), end to end: its server runs as a program on the
 * runtime running this test, and headless Chromium pages use it as a person would.
 *
 * Chromium is started directly as a child process with `--remote-debugging-port=0`, and driven
 * over the DevTools protocol by our own WebSocket client (tests/support/chat-page.ts).
 * Everything is on loopback, bounded in time, and killed by pid.
 *
 * Screenshots go to /tmp/anyws-chat-<runtime>-*.png.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import { runtimeName, WebSocket } from "../../adapters/auto.ts";
import { type Child, finish } from "../support/child.ts";
import { chatProcess as serverProcess } from "../support/chat-demo.ts";
import { Browser, type Page } from "../support/chat-page.ts";
import { RawClient, until } from "../support/net.ts";
import { withTimeout } from "../support/time.ts";

const JOIN_TIMEOUT = 1500;

// ---- processes -------------------------------------------------------------------------------

async function startServer(port: number): Promise<{ child: Child; url: string; port: number }> {
  const child = serverProcess(["--port", String(port), "--host", "127.0.0.1", "--join-timeout", String(JOIN_TIMEOUT)]);
  let url = "";
  await until(() => {
    url = /open (http:\/\/\S+)/.exec(child.lines.join("\n"))?.[1] ?? "";
    return url !== "" || child.exit !== null;
  }, "the chat server to print its URL", 20_000).catch((error) => {
    throw new Error(`${error.message}\n${child.describe()}`);
  });
  if (!url) throw new Error(`the chat server did not start\n${child.describe()}`);
  return { child, url, port: Number(new URL(url).port) };
}

// ---- a client that breaks the rules ----------------------------------------------------------

/** Our client on the demo's socket; resolves its close once it has one. */
async function hostile(url: string) {
  const ws = new WebSocket(url.replace(/^http/, "ws") + "ws");
  ws.binaryType = "uint8array";
  const received: (string | Uint8Array)[] = [];
  ws.addEventListener("message", (e) => received.push((e as MessageEvent).data));
  const closed = new Promise<{ code: number; reason: string }>((resolve) => {
    ws.addEventListener("close", (e) => resolve({ code: (e as CloseEvent).code, reason: (e as CloseEvent).reason }));
  });
  await new Promise<void>((resolve, reject) => {
    ws.addEventListener("open", () => resolve());
    ws.addEventListener("close", () => reject(new Error("the hostile client could not connect")));
  });
  return { ws, received, closed: withTimeout(closed, 10_000, "the server to close the hostile client") };
}

const join_ = (nick: string, room: string) => JSON.stringify({ t: "join", nick, room });

// ---- the tests -------------------------------------------------------------------------------

test(`chat server on ${runtimeName}: settings from flags and environment, checked`, async () => {
  const run = (flags: string[], env: Record<string, string> = {}) => finish(serverProcess(flags, env), 15_000);
  const help = await run(["--help"]);
  assert.equal(help.code, 0);
  assert.match(help.out, /--port\s+PORT\s+8080/);
  const bad = await run(["--port", "http"]);
  assert.equal(bad.code, 2);
  assert.match(bad.err, /--port must be a number from 0 to 65535, not "http"/);
  const badEnv = await run([], { CHAT_HISTORY: "-1" });
  assert.equal(badEnv.code, 2);
  assert.match(badEnv.err, /CHAT_HISTORY must be a number/);
  const unknown = await run(["--colour", "red"]);
  assert.equal(unknown.code, 2);
  assert.match(unknown.err, /unknown option: --colour/);
});

describe(`chat demo on ${runtimeName}, in headless Chromium`, () => {
  let server: { child: Child; url: string; port: number } | null = null;
  let browser: Browser | null = null;
  let alice: Page;
  let bob: Page;
  let carol: Page;

  const open = async (name: string) => {
    return await browser!.open(server!.url, name);
  };

  before(async () => {
    server = await startServer(0);
    browser = await Browser.start();
  });

  after(async () => {
    await browser?.close();
    if (server) await server.child.kill(3000);
  });

  test("one port serves the page, its files and the WebSocket", async () => {
    const base = server!.url;
    const page = await fetch(base);
    assert.equal(page.status, 200);
    assert.match(page.headers.get("content-type") ?? "", /^text\/html/);
    assert.match(await page.text(), /<canvas id="canvas"/);
    for (const [path, type] of [["app.js", /javascript/], ["style.css", /text\/css/], ["favicon.svg", /svg/]] as const) {
      const r = await fetch(base + path);
      assert.equal(r.status, 200, path);
      assert.match(r.headers.get("content-type") ?? "", type, path);
      await r.arrayBuffer();
    }
    const missing = await fetch(base + "nope");
    assert.equal(missing.status, 404);
    await missing.arrayBuffer();
    const post = await fetch(base, { method: "POST", body: "x" });
    assert.equal(post.status, 405);
    await post.arrayBuffer();
    const plain = await fetch(base + "ws"); // the WebSocket path, without an upgrade
    assert.equal(plain.status, 426);
    await plain.arrayBuffer();
    // A page from another site may not use the socket on its visitor's behalf.
    const foreign = new WebSocket(base.replace(/^http/, "ws") + "ws", [], { origin: "http://evil.example" });
    const failure = await new Promise<string>((resolve) => {
      foreign.onerror = (e) => resolve((e as ErrorEvent).message);
      foreign.onopen = () => resolve("opened");
    });
    assert.match(failure, /403/);
  });

  test("two pages chat in one room, and not in another", async () => {
    alice = await open("alice");
    console.log(`screenshot: ${await alice.screenshot("join")}`);
    await alice.join("alice", "lobby");
    bob = await open("bob");
    await bob.join("bob", "lobby");
    carol = await open("carol");
    await carol.join("carol", "attic");

    await alice.waitFor(`document.querySelectorAll("#people li").length === 2`, "bob in alice's list");
    assert.deepEqual(await alice.people(), ["alice", "bob"]);
    assert.deepEqual(await bob.people(), ["bob", "alice"]);
    assert.deepEqual(await carol.people(), ["carol"]);
    assert.ok((await alice.log()).includes("* bob joined"), "alice sees bob join");
    const footer = await alice.eval<string>(`document.getElementById("server-name").textContent`);
    assert.equal(footer, `served by anyws on ${runtimeName} · permessage-deflate`, "Chromium and the demo compress");

    await alice.say("hello from alice");
    await bob.waitFor(`document.getElementById("log").textContent.includes("hello from alice")`, "alice's message at bob");
    await carol.say("anyone in the attic?");
    await carol.waitFor(`document.getElementById("log").textContent.includes("anyone in the attic?")`, "carol's own message");
    await bob.say("hi alice");
    await alice.waitFor(`document.getElementById("log").textContent.includes("hi alice")`, "bob's answer at alice");

    assert.deepEqual((await alice.log()).filter((l) => !l.startsWith("*")), ["alice: hello from alice", "bob: hi alice"]);
    assert.deepEqual((await bob.log()).filter((l) => !l.startsWith("*")), ["alice: hello from alice", "bob: hi alice"]);
    assert.deepEqual(await carol.log(), ["carol: anyone in the attic?"], "nothing from the lobby reaches the attic");

    // A newcomer sees the room's last messages; when it leaves, the others are told.
    const dave = await open("dave");
    await dave.join("dave", "lobby");
    assert.deepEqual((await dave.log()).filter((l) => !l.startsWith("*")), ["alice: hello from alice", "bob: hi alice"]);
    await alice.waitFor(`document.querySelectorAll("#people li").length === 3`, "dave in alice's list");
    await dave.close();
    browser!.pages.splice(browser!.pages.indexOf(dave), 1);
    await alice.waitFor(`document.getElementById("log").textContent.includes("dave left")`, "dave's leaving at alice");
    assert.deepEqual(await alice.people(), ["alice", "bob"]);
  });

  test("a stroke drawn in one page appears on the others' boards in the room", async () => {
    await alice.eval(`document.querySelectorAll(".swatch")[1].click(); document.querySelectorAll(".size")[2].click()`);
    const line: [number, number][] = [];
    for (let i = 0; i <= 30; i++) line.push([0.2 + (0.5 * i) / 30, 0.3 + 0.2 * Math.sin((i / 30) * Math.PI)]);
    await alice.draw(line);
    // The middle of the line, on bob's canvas: the palette's red (#e5484d), opaque.
    const [fx, fy] = line[15];
    await bob.waitFor(`(() => {
      const c = document.getElementById("canvas");
      return c.getContext("2d").getImageData(Math.round(${fx} * c.width), Math.round(${fy} * c.height), 1, 1).data[3] === 255;
    })()`, "alice's stroke on bob's canvas");
    assert.deepEqual(await bob.pixel(fx, fy), [0xe5, 0x48, 0x4d, 255]);
    assert.deepEqual(await alice.pixel(fx, fy), [0xe5, 0x48, 0x4d, 255]);
    assert.deepEqual(await bob.pixel(0.9, 0.9), [0, 0, 0, 0], "away from the line, nothing");
    assert.deepEqual(await carol.pixel(fx, fy), [0, 0, 0, 0], "the attic's board is untouched");
    // The start and the end made it too (the stroke went in several messages).
    assert.equal((await bob.pixel(...line[1]))[3], 255, "the start of the line");
    assert.equal((await bob.pixel(...line[29]))[3], 255, "the end of the line");

    // A late joiner gets the board as it is.
    const erin = await open("erin");
    await erin.join("erin", "lobby");
    await erin.waitFor(`document.getElementById("paper").dataset.empty === "false"`, "the board at erin");
    assert.deepEqual(await erin.pixel(fx, fy), [0xe5, 0x48, 0x4d, 255]);
    await bob.say("nice curve");
    await alice.waitFor(`document.getElementById("log").textContent.includes("nice curve")`, "bob's message");
    console.log(`screenshot: ${await alice.screenshot("chat")}`);
    await erin.close();
    browser!.pages.splice(browser!.pages.indexOf(erin), 1);
  });

  test("hostile clients are closed with a reason, and the pages keep working", async () => {
    const url = server!.url;
    const seen = (await bob.log()).length;

    // An oversized message: the core closes with 1009 before it reaches the chat. Our client
    // compresses it (permessage-deflate) to a few dozen bytes: the limit is on the inflated size.
    const big = await hostile(url);
    assert.match(big.ws.extensions, /permessage-deflate/);
    big.ws.send(join_("mallory", "lobby"));
    big.ws.send("x".repeat(20_000));
    assert.equal((await big.closed).code, 1009);

    // Not JSON, not an object, an unknown type, a bad stroke, a stroke before joining.
    for (
      const [send, reason] of [
        [(ws: WebSocket) => ws.send("{not json"), /not JSON/],
        [(ws: WebSocket) => ws.send("[1,2,3]"), /not a JSON object/],
        [(ws: WebSocket) => (ws.send(join_("mallory", "lobby")), ws.send(`{"t":"shout"}`)), /unknown type/],
        [(ws: WebSocket) => (ws.send(join_("mallory", "lobby")), ws.send(new Uint8Array([1, 0, 5, 9, 1, 2]))), /bad stroke/],
        [(ws: WebSocket) => ws.send(new Uint8Array([1, 0, 5, 1, 0, 0, 0, 0])), /join a room first/],
        [(ws: WebSocket) => ws.send(join_("", "lobby")), /nickname/],
        [(ws: WebSocket) => ws.send(join_("mallory", "../../etc")), /room name/],
      ] as const
    ) {
      const h = await hostile(url);
      send(h.ws);
      const closed = await h.closed;
      assert.equal(closed.code, 1008, `${reason}: ${JSON.stringify(closed)}`);
      assert.match(closed.reason, reason);
    }

    // A socket that never joins is closed after the join timeout.
    const idle = await hostile(url);
    const idleClosed = await idle.closed;
    assert.deepEqual(idleClosed, { code: 1008, reason: "no join message in time" });

    // Garbage frames: a reserved opcode. The core fails the connection with 1002.
    const raw = await RawClient.connect(server!.port, { path: "/ws" });
    await raw.opened();
    raw.write(new Uint8Array([0x83, 0x80, 1, 2, 3, 4])); // FIN + opcode 3, masked, empty
    await until(() => raw.events.some((e) => e.type === "close"), "the server to close on a reserved opcode", 5000);
    const rawClose = raw.events.find((e) => e.type === "close") as { code: number };
    assert.equal(rawClose.code, 1002);
    raw.destroy();

    // Garbage instead of HTTP: a 400, and the connection closed.
    const junk = await RawClient.connect(server!.port, { handshake: false });
    junk.write(new TextEncoder().encode("\x16\x03\x01 not http at all\r\n\r\n"));
    await junk.whenClosed(5000);
    const answer = new TextDecoder().decode(junk.received[0] ?? new Uint8Array(0));
    assert.match(answer, /^HTTP\/1\.1 400 /);

    // A flood: a burst gets through, then the socket is closed; the pages see no more than the burst.
    const flood = await hostile(url);
    flood.ws.send(join_("flooder", "lobby"));
    for (let i = 0; i < 500; i++) flood.ws.send(JSON.stringify({ t: "say", text: `flood ${i}` }));
    const floodClosed = await flood.closed;
    assert.equal(floodClosed.code, 1008);
    assert.match(floodClosed.reason, /too many messages/);
    // A stroke flood, too.
    const scribbler = await hostile(url);
    scribbler.ws.send(join_("scribbler", "lobby"));
    for (let i = 0; i < 2000; i++) scribbler.ws.send(new Uint8Array([1, 0, 3, 1, i & 255, 0, 0, 0]));
    assert.match((await scribbler.closed).reason, /too many strokes/);

    // The pages are fine: they still talk, and saw at most the flood's burst.
    await alice.say("still here");
    await bob.waitFor(`document.getElementById("log").textContent.includes("still here")`, "alice's message after the attacks");
    const flooded = (await bob.log()).slice(seen).filter((l) => l.startsWith("flooder: ")).length;
    assert.ok(flooded <= 10, `bob saw ${flooded} flood messages`);
    assert.equal(server!.child.exit, null, "the server is still running");
    assert.equal((await alice.state()).status, "open");
    assert.deepEqual(await alice.people(), ["alice", "bob"], "the attackers are gone from the list");
  });

  test("killing and restarting the server shows the banner, then the pages reconnect to their room", async () => {
    const port = server!.port;
    process.kill(server!.child.pid!, "SIGKILL");
    await server!.child.done();
    await alice.waitFor(`document.getElementById("banner").dataset.state === "lost"`, "the connection-lost banner");
    await bob.waitFor(`document.getElementById("status").dataset.state !== "open"`, "bob to notice");
    const lost = await alice.state();
    assert.match(lost.bannerText, /Connection lost/);
    assert.equal(await alice.eval(`document.getElementById("banner").hidden`), false);
    console.log(`screenshot: ${await alice.screenshot("lost")}`);

    server = await startServer(port);
    for (const page of [alice, bob, carol]) {
      await page.waitFor(`document.getElementById("status").dataset.state === "open"`, "the page to reconnect", 20_000);
    }
    await alice.waitFor(`document.querySelectorAll("#people li").length === 2`, "bob back in alice's list", 10_000);
    assert.deepEqual(await alice.people(), ["alice", "bob"]);
    assert.deepEqual(await carol.people(), ["carol"]);
    assert.equal(await alice.eval(`document.getElementById("room-name").textContent`), "lobby");
    assert.ok((await alice.log()).some((l) => /server restarted/.test(l)), "alice is told the server restarted");
    assert.ok((await alice.log()).includes("alice: hello from alice"), "alice keeps what she saw");
    await alice.say("we're back");
    await bob.waitFor(`document.getElementById("log").textContent.includes("we're back")`, "a message after the restart");
    assert.ok(!(await carol.log()).some((l) => l.includes("we're back")), "still not in the attic");
    console.log(`screenshot: ${await alice.screenshot("restored")}`);
  });
});
