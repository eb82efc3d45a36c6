/** A benchmark's server or load generator: a child process that answers in JSON lines on stdout. */
import { type ChildProcess, spawn } from "node:child_process";
import { createInterface } from "node:readline";

export class Child {
  readonly process: ChildProcess;
  readonly what: string;
  readonly exited: Promise<number | null>;
  private readonly lines: string[] = [];
  private waiting: (() => void) | null = null;
  private stderr = "";
  private quitting = false;

  /** `what` names it in errors; an exit with an error code, unless asked to quit, is reported on stderr. */
  constructor(command: string, argv: string[], what: string, cwd: string) {
    this.what = what;
    this.process = spawn(command, argv, { cwd, stdio: ["pipe", "pipe", "pipe"] });
    this.process.stderr!.on("data", (d: Uint8Array) => {
      this.stderr = (this.stderr + new TextDecoder().decode(d)).slice(-10_000);
    });
    createInterface({ input: this.process.stdout! }).on("line", (line) => {
      this.lines.push(line);
      this.waiting?.();
    });
    this.exited = new Promise((resolve) =>
      this.process.on("exit", (code) => {
        resolve(code);
        this.waiting?.();
      })
    );
    void this.exited.then((code) => {
      if (code !== 0 && code !== null && !this.quitting) console.error(`${what} exited with ${code}: ${this.stderr.trim()}`);
    });
  }

  /** What it wrote to stderr (the last 10,000 characters). */
  get errors(): string {
    return this.stderr.trim();
  }

  /** The next JSON line (waits for it). */
  async next(timeoutMs = 60_000): Promise<Record<string, unknown>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const line = this.lines.shift();
      if (line !== undefined) {
        try {
          return JSON.parse(line);
        } catch {
          continue; // something else the process printed
        }
      }
      if (this.process.exitCode !== null || this.process.signalCode !== null) {
        throw new Error(`${this.what} exited (${this.process.exitCode ?? this.process.signalCode}): ${this.stderr.trim()}`);
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${this.what}: no answer within ${timeoutMs} ms. ${this.stderr.trim()}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiting = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.waiting = null;
    }
  }

  send(line: string): void {
    this.process.stdin!.write(line + "\n");
  }

  /** Ends its stdin, which tells it to exit; killed after 5 s. */
  async quit(): Promise<void> {
    this.quitting = true;
    this.process.stdin!.end();
    const timer = setTimeout(() => this.process.kill("SIGKILL"), 5000);
    await this.exited;
    clearTimeout(timer);
  }
}
