/**
 * The chat demo's page in headless Chromium, driven over the DevTools protocol by anyws's own
 * WebSocket client (tests/examples/chat*.test.ts): pages are opened, typed into, drawn on with
 * real mouse events, read (DOM and canvas pixels) and photographed — no browser-automation
 * dependency. Chromium is started as a child process (tests/support/chromium.ts).
 */
import { Buffer } from "node:buffer";
import { readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runtimeName, WebSocket } from "../../adapters/auto.ts";
import { existsSync } from "node:fs";
import { Chromium, CHROMIUM } from "./chromium.ts";
import { delay, until } from "./time.ts";

const SHOTS = tmpdir();

// ---- the DevTools protocol, over our WebSocket client ----------------------------------------

type Json = any; // DevTools results are whatever Chromium sends

export class Cdp {
  private id = 0;
  private readonly pending = new Map<number, { resolve(v: Json): void; reject(e: Error): void; method: string }>();
  private readonly ws: WebSocket;

  private constructor(ws: WebSocket) {
    this.ws = ws;
    ws.addEventListener("message", (event) => {
      const m = JSON.parse((event as MessageEvent).data as string);
      if (m.id === undefined) return; // events: not needed here
      const p = this.pending.get(m.id);
      this.pending.delete(m.id);
      if (m.error) p?.reject(new Error(`${p.method}: ${m.error.message}`));
      else p?.resolve(m.result);
    });
    ws.addEventListener("close", () => {
      for (const p of this.pending.values()) p.reject(new Error(`${p.method}: the DevTools connection closed`));
      this.pending.clear();
    });
  }

  static async connect(url: string): Promise<Cdp> {
    const ws = new WebSocket(url);
    await new Promise<void>((resolve, reject) => {
      ws.onopen = () => resolve();
      ws.onclose = () => reject(new Error(`cannot open the DevTools WebSocket ${url}`));
    });
    return new Cdp(ws);
  }

  send(method: string, params: object = {}, sessionId?: string, timeout = 15_000): Promise<Json> {
    const id = ++this.id;
    this.ws.send(JSON.stringify({ id, method, params, sessionId }));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${method}: no answer from Chromium in ${timeout} ms`));
      }, timeout);
      this.pending.set(id, {
        method,
        resolve: (v) => (clearTimeout(timer), resolve(v)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      });
    });
  }

  close(): void {
    this.ws.close();
  }
}

/** One browser tab showing the demo. */
export class Page {
  readonly name: string;
  private readonly cdp: Cdp;
  private readonly targetId: string;
  private readonly session: string;

  private constructor(cdp: Cdp, name: string, targetId: string, session: string) {
    this.cdp = cdp;
    this.name = name;
    this.targetId = targetId;
    this.session = session;
  }

  static async open(cdp: Cdp, url: string, name: string): Promise<Page> {
    const { targetId } = await cdp.send("Target.createTarget", { url: "about:blank", newWindow: true });
    const { sessionId } = await cdp.send("Target.attachToTarget", { targetId, flatten: true });
    const page = new Page(cdp, name, targetId, sessionId);
    await page.send("Emulation.setDeviceMetricsOverride", { width: 1280, height: 800, deviceScaleFactor: 1, mobile: false });
    await page.goto(url);
    return page;
  }

  /** Loads `url` in this tab and waits for the page to be ready. */
  async goto(url: string): Promise<void> {
    await this.send("Page.navigate", { url });
    await this.waitFor(`location.href === ${JSON.stringify(url)} && document.readyState === "complete" && !!document.querySelector(".swatch")`, `${url} to load`);
  }

  send(method: string, params: object = {}): Promise<Json> {
    return this.cdp.send(method, params, this.session);
  }

  async eval<T = Json>(expression: string): Promise<T> {
    const r = await this.send("Runtime.evaluate", { expression, awaitPromise: true, returnByValue: true });
    if (r.exceptionDetails) {
      throw new Error(`${this.name}: ${r.exceptionDetails.exception?.description ?? r.exceptionDetails.text}`);
    }
    return r.result.value as T;
  }

  async waitFor(expression: string, what: string, timeout = 10_000): Promise<void> {
    const start = Date.now();
    while (!(await this.eval<boolean>(`!!(${expression})`))) {
      if (Date.now() - start > timeout) {
        throw new Error(`${this.name}: timed out after ${timeout} ms waiting for ${what}; log: ${JSON.stringify(await this.log())}`);
      }
      await delay(50);
    }
  }

  async join(nick: string, room: string): Promise<void> {
    await this.eval(`(() => {
      document.getElementById("nick").value = ${JSON.stringify(nick)};
      document.getElementById("room").value = ${JSON.stringify(room)};
      document.getElementById("join-form").requestSubmit();
    })()`);
    await this.waitFor(`document.getElementById("status").dataset.state === "open"`, `${nick} to join #${room}`);
  }

  async say(text: string): Promise<void> {
    await this.eval(`(() => {
      document.getElementById("say").value = ${JSON.stringify(text)};
      document.getElementById("say-form").requestSubmit();
    })()`);
  }

  /** The chat log: messages as "nick: text", notices as "* text". */
  log(): Promise<string[]> {
    return this.eval(`[...document.querySelectorAll("#log li")].map((li) => li.classList.contains("msg")
      ? li.querySelector(".nick").textContent + ": " + li.querySelector(".text").textContent
      : "* " + li.textContent)`);
  }

  people(): Promise<string[]> {
    return this.eval(`[...document.querySelectorAll("#people .name")].map((e) => e.textContent)`);
  }

  state(): Promise<{ status: string; banner: string; bannerText: string }> {
    return this.eval(`({
      status: document.getElementById("status").dataset.state,
      banner: document.getElementById("banner").dataset.state,
      bannerText: document.getElementById("banner-text").textContent,
    })`);
  }

  /** The canvas pixel at a fraction of its width and height, as [r, g, b, a]. */
  pixel(fx: number, fy: number): Promise<number[]> {
    return this.eval(`(() => {
      const c = document.getElementById("canvas");
      return [...c.getContext("2d").getImageData(Math.round(${fx} * c.width), Math.round(${fy} * c.height), 1, 1).data];
    })()`);
  }

  /** Drags the mouse across the canvas through the given fractions of its size. */
  async draw(points: [number, number][]): Promise<void> {
    const r = await this.eval<{ x: number; y: number; w: number; h: number }>(`(() => {
      const r = document.getElementById("canvas").getBoundingClientRect();
      return { x: r.x, y: r.y, w: r.width, h: r.height };
    })()`);
    const at = ([fx, fy]: [number, number]) => ({ x: r.x + fx * r.w, y: r.y + fy * r.h });
    const mouse = (type: string, p: [number, number], buttons: number) =>
      this.send("Input.dispatchMouseEvent", { type, ...at(p), button: "left", buttons, clickCount: 1 });
    await mouse("mousePressed", points[0], 1);
    for (const p of points.slice(1)) {
      await mouse("mouseMoved", p, 1);
      await delay(8);
    }
    await mouse("mouseReleased", points[points.length - 1], 0);
  }

  async screenshot(name: string): Promise<string> {
    const { data } = await this.send("Page.captureScreenshot", { format: "png" });
    const path = join(SHOTS, `anyws-chat-${runtimeName}-${name}.png`);
    await writeFile(path, new Uint8Array(Buffer.from(data, "base64")));
    return path;
  }

  async close(): Promise<void> {
    await this.cdp.send("Target.closeTarget", { targetId: this.targetId }).catch(() => {});
  }
}

/** Chromium with its DevTools port open. */
export function startChromium(): Promise<Chromium> {
  return Chromium.launch("anyws-chat-chromium-", "about:blank", [
    "--disable-background-timer-throttling",
    "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
    "--font-render-hinting=none",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
  ]);
}

/** Our DevTools client, connected to `chromium`. */
export async function devTools({ browser, profile }: Chromium): Promise<Cdp> {
  // Chromium writes the port it picked, and the browser target's path, into the profile.
  let endpoint = "";
  await until(() => {
    if (browser.exit !== null) return true;
    readFile(join(profile, "DevToolsActivePort"), "utf8").then((text) => {
      const [port, path] = text.split("\n");
      if (port && path) endpoint = `ws://127.0.0.1:${port}${path}`;
    }, () => {});
    return endpoint !== "";
  }, "Chromium's DevTools port", 20_000).catch((error) => {
    throw new Error(`${error.message}\n${browser.describe()}`);
  });
  if (!endpoint) throw new Error(`Chromium exited\n${browser.describe()}`);
  return await Cdp.connect(endpoint);
}


/** Headless Chromium, our DevTools client and the pages opened through them; `close()` ends all three. */
export class Browser {
  readonly pages: Page[] = [];
  readonly cdp: Cdp;
  private readonly chromium: Chromium;

  private constructor(chromium: Chromium, cdp: Cdp) {
    this.chromium = chromium;
    this.cdp = cdp;
  }

  static async start(): Promise<Browser> {
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install chromium`);
    const chromium = await startChromium();
    try {
      return new Browser(chromium, await devTools(chromium));
    } catch (error) {
      await chromium.close();
      throw error;
    }
  }

  /** A page of the chat at `url`, joined as `name`; closed with the browser. */
  async open(url: string, name: string): Promise<Page> {
    const page = await Page.open(this.cdp, url, name);
    this.pages.push(page);
    return page;
  }

  async close(): Promise<void> {
    for (const page of this.pages) await page.close();
    this.cdp.close();
    await this.chromium.close();
  }
}
