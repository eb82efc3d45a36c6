/**
 * A redis-server of the test's own (Debian's binary, never the system service): a free loopback
 * port, a temporary directory, no persistence; stopped (and restarted on the same port) by pid.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { Child } from "./child.ts";
import { until } from "./time.ts";

const BINARY = "redis-server";

/** Whether redis-server can run here. */
export function redisAvailable(): boolean {
  const r = spawnSync(BINARY, ["--version"], { encoding: "utf8", timeout: 10_000 });
  return r.status === 0;
}

/** A loopback port nobody listens on (now). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => resolve(port));
    });
  });
}

export class RedisServer {
  readonly port: number;
  private readonly dir: string;
  private child: Child | null = null;

  private constructor(port: number, dir: string) {
    this.port = port;
    this.dir = dir;
  }

  static async start(): Promise<RedisServer> {
    if (!redisAvailable()) throw new Error("no redis-server on the PATH: apt-get install redis-server");
    const server = new RedisServer(await freePort(), mkdtempSync(join(tmpdir(), "anyws-redis-")));
    await server.restart();
    return server;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Starts it (again) on its port and waits until it accepts connections. */
  async restart(): Promise<void> {
    if (this.child) throw new Error("redis-server is running");
    const child = new Child(BINARY, [
      "--port", String(this.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
      "--dir", this.dir, "--loglevel", "notice",
    ]);
    this.child = child;
    try {
      await until(() => child.exit !== null || child.lines.some((l) => l.includes("Ready to accept connections")), "redis-server to start", 10_000);
    } catch (error) {
      await this.kill();
      throw error;
    }
    if (child.exit !== null) {
      this.child = null;
      throw new Error(`redis-server did not start: ${child.describe()}`);
    }
  }

  /** Kills it by pid at once (SIGKILL: no goodbye to its clients, as in a crash). */
  async kill(): Promise<void> {
    const child = this.child;
    if (!child) return;
    this.child = null;
    try {
      if (child.pid !== undefined && child.exit === null) process.kill(child.pid, "SIGKILL");
    } catch {
      // already gone
    }
    await child.done();
  }

  /** Stops it and removes its directory. */
  async stop(): Promise<void> {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
