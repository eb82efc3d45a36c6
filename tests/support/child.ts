/**
 * Foreign peers run as child processes (python-websockets, Chromium), on any runtime through
 * node:child_process: started, read line by line, and always killed by their pid.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

/** A file next to the test sources, whether the test runs from them or compiled in dist/. */
export function sourcePath(relative: string, base: string): string {
  return fileURLToPath(new URL(relative, base.replace("/dist/tests/", "/tests/")));
}

/** The first interpreter that can `import websockets` (Debian's python3-websockets first). */
export function findPython(): { command: string; version: string } | null {
  for (const command of ["/usr/bin/python3", "python3"]) {
    const r = spawnSync(command, ["-c", "import websockets; print(websockets.__version__)"], { encoding: "utf8", timeout: 10_000 });
    if (r.status === 0) return { command, version: String(r.stdout).trim() };
  }
  return null;
}

/** A child process whose stdout is read as lines. */
export class Child {
  readonly process: ChildProcess;
  readonly lines: string[] = [];
  stderr = "";
  exit: { code: number | null; signal: string | null } | null = null;
  private readonly exited: Promise<void>;
  private partial = "";

  constructor(command: string, args: string[], options: { env?: Record<string, string | undefined> } = {}) {
    this.process = spawn(command, args, {
      stdio: ["pipe", "pipe", "pipe"],
      env: options.env ? { ...process.env, ...options.env } : process.env,
    });
    this.process.stdout!.setEncoding("utf8");
    this.process.stdout!.on("data", (chunk: string) => {
      const parts = (this.partial + chunk).split("\n");
      this.partial = parts.pop()!;
      this.lines.push(...parts);
    });
    this.process.stderr!.setEncoding("utf8");
    this.process.stderr!.on("data", (chunk: string) => {
      if (this.stderr.length < 64 * 1024) this.stderr += chunk;
    });
    this.process.stdin!.on("error", () => {});
    this.exited = new Promise((resolve) => {
      this.process.on("error", (error) => {
        this.stderr += `\n${error.message}`;
        this.exit ??= { code: null, signal: null };
        resolve();
      });
      this.process.on("close", (code, signal) => {
        if (this.partial !== "") this.lines.push(this.partial);
        this.partial = "";
        this.exit = { code, signal };
        resolve();
      });
    });
  }

  get pid(): number | undefined {
    return this.process.pid;
  }

  /** Resolves with the exit once the process has exited and its output is read. */
  async done(): Promise<{ code: number | null; signal: string | null }> {
    await this.exited;
    return this.exit!;
  }

  /** Kills it by pid (SIGTERM, then SIGKILL after `grace` ms) and waits for its exit. */
  async kill(grace = 2000): Promise<void> {
    if (this.exit !== null) return;
    const pid = this.process.pid;
    if (pid !== undefined) {
      try {
        process.kill(pid, "SIGTERM");
      } catch {
        // already gone
      }
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const killed = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        try {
          if (pid !== undefined && this.exit === null) process.kill(pid, "SIGKILL");
        } catch {
          // already gone
        }
        resolve();
      }, grace);
    });
    await Promise.race([this.exited, killed]);
    clearTimeout(timer);
    await this.exited;
  }

  /** What it said, for failure messages. */
  describe(): string {
    return `exit ${JSON.stringify(this.exit)}\nstdout:\n${this.lines.join("\n")}\nstderr:\n${this.stderr}`;
  }
}

/** Waits for the process to exit (killing it after `ms`); returns its exit code and output. */
export async function finish(child: Child, ms = 15_000): Promise<{ code: number | null; out: string; err: string }> {
  const timer = setTimeout(() => void child.kill(1000), ms);
  try {
    const { code } = await child.done();
    return { code, out: child.lines.join("\n"), err: child.stderr };
  } finally {
    clearTimeout(timer);
  }
}
