/**
 * One worker thread of `--workers N` on Deno and Bun (workers.ts starts it): a whole chat server
 * listening with reusePort beside the others, until the launcher says stop.
 */
import type { Config } from "./config.ts";
import { runServer } from "./run.ts";

interface Note {
  anywsChat: string;
  config?: Config;
  worker?: number;
  port?: number;
}

declare const self: { postMessage(message: unknown): void; onmessage: ((event: MessageEvent) => void) | null };

let stop: (() => void) | null = null;
const stopped = new Promise<void>((resolve) => (stop = resolve));

self.onmessage = (event: MessageEvent) => {
  const note = event.data as Note;
  if (note.anywsChat === "stop") return stop?.();
  if (note.anywsChat !== "start") return;
  const worker = note.worker!;
  const config = note.config!;
  runServer(config, {
    worker,
    workers: config.workers,
    reusePort: true,
    listening: (port) => self.postMessage({ anywsChat: "listening", worker, port }),
    stop: stopped,
  }).then(
    (status) => self.postMessage({ anywsChat: "stopped", worker, status }),
    (error) => {
      console.error(`[worker ${worker}] ${(error as Error).stack ?? error}`);
      self.postMessage({ anywsChat: "stopped", worker, status: 1 });
    },
  );
};
// Bun drops what is posted to a worker before its module has loaded: the launcher waits for this.
self.postMessage({ anywsChat: "ready" });
