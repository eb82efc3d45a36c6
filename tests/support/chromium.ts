/**
 * Headless Chromium for tests (tests/interop/, tests/examples/chat.test.ts): started directly as
 * a child process (node:child_process works on Node, Deno and Bun; no browser-automation
 * dependency) with a temporary profile, and a page served by node:http from 127.0.0.1. A data:
 * URL would not do, as Chromium's Local Network Access checks block a data: page (opaque origin,
 * "public" address space) from opening ws://127.0.0.1. The browser is killed by its pid, any
 * helper it left behind too, and its profile removed.
 */
import { existsSync } from "node:fs";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { Child } from "./child.ts";

export const CHROMIUM = process.env.ANYWS_CHROMIUM ?? "/usr/bin/chromium";

/** The flags every test starts Chromium with. */
const FLAGS = [
  "--headless=new",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--no-default-browser-check",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--disable-extensions",
  "--disable-dev-shm-usage",
];

/** Serves `html` at http://127.0.0.1:<port>/ (and 404 elsewhere). */
export async function servePage(html: string): Promise<{ url: string; close(): Promise<void> }> {
  const server = createServer((request, response) => {
    if (request.url === "/") {
      response.writeHead(200, { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" });
      response.end(html);
    } else {
      response.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** Processes still running with `marker` on their command line (Linux /proc; [] elsewhere). */
async function processesWith(marker: string): Promise<number[]> {
  if (!existsSync("/proc/self/cmdline")) return [];
  const pids: number[] = [];
  for (const name of await readdir("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if ((await readFile(`/proc/${name}/cmdline`, "utf8")).includes(marker)) pids.push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

/** A running headless Chromium with its own temporary profile. */
export class Chromium {
  readonly browser: Child;
  /** The profile directory (Chromium writes DevToolsActivePort there). */
  readonly profile: string;

  private constructor(browser: Child, profile: string) {
    this.browser = browser;
    this.profile = profile;
  }

  /**
   * Starts Chromium on `url` with a fresh profile named after `prefix` (in the system's temporary
   * directory), with the common flags and then `flags`.
   */
  static async launch(prefix: string, url: string, flags: string[] = []): Promise<Chromium> {
    const profile = await mkdtemp(join(tmpdir(), prefix));
    return new Chromium(new Child(CHROMIUM, [...FLAGS, ...flags, `--user-data-dir=${profile}`, url]), profile);
  }

  /** What it said, for failure messages. */
  describe(): string {
    return this.browser.describe();
  }

  /** Kills it by pid, then any of its helpers still running, and removes its profile. */
  async close(): Promise<void> {
    await this.browser.kill(3000);
    // Chromium's helpers (zygote, renderer, network service) normally leave with it; any that
    // did not are found by the profile on their command line and killed by pid.
    for (const pid of await processesWith(this.profile)) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // gone
      }
    }
    await rm(this.profile, { recursive: true, force: true, maxRetries: 3, retryDelay: 100 });
  }
}
