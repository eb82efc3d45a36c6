/**
 * `--workers N`: N chat servers on one port, started one after the other (each takes the rooms
 * from those already running, and the first one's port when the port is 0).
 *
 *  - Node: node:cluster worker processes. Where Node has `reusePort` (22.12 and later, on Linux)
 *    each worker listens on the port itself and the kernel spreads the connections; on Node 20
 *    the primary accepts them and hands them to the workers in turn. The workers talk to each
 *    other through the primary (the cluster backplane driver), or through Redis with --redis.
 *  - Deno and Bun: worker threads, each listening on the port with SO_REUSEPORT, the kernel
 *    spreading the connections (Linux); they talk through BroadcastChannel, or Redis.
 *
 * A worker that dies is replaced; SIGINT or SIGTERM stops them all, each closing its sockets
 * with 1001.
 */
import process from "node:process";
import { runtimeName } from "../../adapters/auto.ts";
import type { Config } from "./config.ts";
import { type Role, signalled } from "./run.ts";

type Run = (config: Config, role: Role) => Promise<number>;
type UrlFor = (host: string, port: number) => string;

/** What the launcher and its workers say to each other (beside the backplane's messages). */
interface Note {
  anywsChat: "ready" | "start" | "listening" | "stop" | "stopped";
  config?: Config;
  worker?: number;
  port?: number;
}

const isNote = (m: unknown): m is Note => typeof m === "object" && m !== null && typeof (m as Note).anywsChat === "string";

/** How `--workers` shares the port on this runtime, for --help. */
export function workersHelp(runtime: string): string {
  if (runtime !== "node") {
    return "worker threads, each listening with reusePort (SO_REUSEPORT: the kernel spreads connections; Linux); they talk through BroadcastChannel, or Redis";
  }
  return nodeReusePort()
    ? "node:cluster worker processes, each listening with reusePort (the kernel spreads connections); they talk through the primary, or Redis"
    : `node:cluster worker processes; the primary accepts connections and hands them out (reusePort needs Node >= 22.12 on Linux; this is ${process.versions.node} on ${process.platform}); they talk through the primary, or Redis`;
}

/** Whether this Node's net takes `reusePort` and the kernel balances it (Node >= 22.12 or >= 23.1, Linux). */
function nodeReusePort(): boolean {
  const [major, minor] = process.versions.node.split(".").map(Number);
  return process.platform === "linux" && (major > 23 || (major === 23 && minor >= 1) || (major === 22 && minor >= 12));
}

/** This process is one of a node:cluster primary's workers. */
export function isWorker(): boolean {
  return runtimeName === "node" && process.env.CHAT_WORKER !== undefined && typeof process.send === "function";
}

/** Runs `config.workers` servers (or, in a node:cluster worker, this worker's one). */
export async function launch(config: Config, run: Run, urlFor: UrlFor): Promise<number> {
  if (runtimeName === "node") return isWorker() ? await clusterWorker(config, run) : await clusterPrimary(config, urlFor);
  return await threads(config, urlFor);
}

// ---- Node: node:cluster ----------------------------------------------------------------------

async function clusterPrimary(config: Config, urlFor: UrlFor): Promise<number> {
  const { default: cluster } = await import("node:cluster");
  const { relayCluster } = await import("./broker.ts");
  if (config.redis === "") relayCluster();
  return await supervise(config, urlFor, (index, onNote, onExit, current) => {
    // With reusePort each worker binds the port itself: the first one's, if --port was 0.
    const worker = cluster.fork({ CHAT_WORKER: String(index), CHAT_WORKER_PORT: String(current()) });
    worker.on("message", (m: unknown) => isNote(m) && onNote(m));
    worker.on("exit", (code, signal) => onExit(signal ? `signal ${signal}` : `code ${code}`));
    return {
      pid: worker.process.pid,
      tell: (note) => {
        try {
          worker.send(note);
        } catch {
          // gone already
        }
      },
      kill: () => worker.process.kill("SIGKILL"),
    };
  });
}

async function clusterWorker(config: Config, run: Run): Promise<number> {
  let stop!: () => void;
  const stopped = new Promise<void>((resolve) => (stop = resolve));
  process.on("message", (m: unknown) => isNote(m) && m.anywsChat === "stop" && stop());
  process.on("disconnect", () => stop()); // the primary is gone
  // Ctrl-C reaches the whole process group: the primary stops the workers in order.
  process.on("SIGINT", () => {});
  process.on("SIGTERM", () => stop());
  const worker = Number(process.env.CHAT_WORKER);
  const reusePort = nodeReusePort();
  return await run(reusePort ? { ...config, port: Number(process.env.CHAT_WORKER_PORT) } : config, {
    worker,
    workers: config.workers,
    reusePort,
    listening: (port) => process.send!({ anywsChat: "listening", worker, port } satisfies Note),
    stop: stopped,
  });
}

// ---- Deno, Bun: worker threads ----------------------------------------------------------------

function threads(config: Config, urlFor: UrlFor): Promise<number> {
  const script = new URL(`./worker.${import.meta.url.endsWith(".js") ? "js" : "ts"}`, import.meta.url);
  return supervise(config, urlFor, (index, onNote, onExit, current) => {
    const worker = new Worker(script.href, { type: "module" });
    let exited = false;
    worker.onmessage = (event: MessageEvent) => {
      if (!isNote(event.data)) return;
      if (event.data.anywsChat === "ready") return handle.start!(current());
      onNote(event.data);
      if (event.data.anywsChat === "stopped") {
        exited = true;
        worker.terminate();
        onExit("stopped");
      }
    };
    worker.onerror = (event: Event) => {
      (event as ErrorEvent).preventDefault?.();
      console.error(`[worker ${index}] ${(event as ErrorEvent).message}`);
      if (exited) return;
      exited = true;
      worker.terminate();
      onExit("an error");
    };
    const handle: Handle = {
      pid: undefined,
      tell: (note) => worker.postMessage(note),
      kill: () => {
        if (exited) return;
        exited = true;
        worker.terminate();
        onExit("terminated");
      },
      start: (port) => worker.postMessage({ anywsChat: "start", worker: index, config: { ...config, port } } satisfies Note),
    };
    return handle;
  });
}

// ---- both: start in order, replace the dead, stop on a signal ---------------------------------

interface Handle {
  pid: number | undefined;
  tell(note: Note): void;
  kill(): void;
  /** Threads are told their settings once loaded (the port: the first one's, if it was 0). */
  start?(port: number): void;
}

type Spawn = (index: number, onNote: (note: Note) => void, onExit: (how: string) => void, current: () => number) => Handle;

async function supervise(config: Config, urlFor: UrlFor, spawn: Spawn): Promise<number> {
  const n = config.workers;
  const running = new Map<number, Handle>();
  let port = config.port;
  let stopping = false;
  let exits: (() => void) | null = null;

  /** Starts worker `index`; resolves once it listens, rejects if it exits before. */
  const start = (index: number) =>
    new Promise<void>((resolve, reject) => {
      let listening = false;
      const handle = spawn(index, (note) => {
        if (note.anywsChat === "listening" && !listening) {
          listening = true;
          port = note.port!;
          resolve();
        }
      }, (how) => {
        running.delete(index);
        exits?.();
        if (!listening) return reject(new Error(`worker ${index} exited (${how}) before listening`));
        if (stopping) return;
        console.error(`worker ${index} exited (${how}); starting a new one`);
        start(index).catch((error) => console.error(String(error.message)));
      }, () => port);
      running.set(index, handle);
    });

  const signal = signalled().then(() => {
    stopping = true;
  });

  try {
    for (let i = 1; i <= n; i++) await start(i);
  } catch (error) {
    console.error((error as Error).message);
    stopping = true;
    for (const handle of running.values()) handle.kill();
    return 1;
  }
  const how = runtimeName !== "node" ? "worker threads, reusePort" : nodeReusePort() ? "node:cluster, reusePort" : "node:cluster";
  const link = config.redis !== "" ? ", linked through Redis" : "";
  console.log(`anyws chat on ${runtimeName}: open ${urlFor(config.host, port)}`);
  console.log(`(${n} workers on port ${port}: ${how}${link})`);

  await signal;
  console.log("shutting down…");
  for (const handle of running.values()) handle.tell({ anywsChat: "stop" });
  const deadline = Date.now() + 5000;
  while (running.size !== 0 && Date.now() < deadline) {
    await new Promise<void>((resolve) => {
      exits = resolve;
      setTimeout(resolve, 250);
    });
  }
  for (const handle of running.values()) handle.kill();
  return 0;
}
