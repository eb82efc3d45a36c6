/**
 * What a permessage-deflate zip bomb costs a server: the peak resident memory of our server
 * (in this process) while a client (a Node child process with `ws`) sends one message that
 * inflates to far more than `maxMessageSize`.
 *
 *   npm run bench                            every bench, Node, Deno and Bun one after another
 *   node dist/bench/zip-bomb.js [options]    after `tsc -p tsconfig.json`
 *   deno run -A bench/zip-bomb.ts [options]
 *   bun bench/zip-bomb.ts [options]
 *
 * Options: --bomb=MiB inflated size (default 1024), --limits=MiB,MiB the `maxMessageSize`s to try
 * (default 64,1), --rounds=N (default 2). Each measurement runs in a fresh process of this
 * runtime (memory once taken is not given back, so a second one in the same process would see
 * less). Figures: resident memory when the client's connection opened, the peak above it
 * (sampled every 2 ms) until the connection closed, and the close code the client received.
 */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import process from "node:process";
import { runtimeName, serve } from "../adapters/auto.ts";

const arg = (name: string, fallback: string) =>
  process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? fallback;
const bombMiB = Number(arg("bomb", "1024"));
const limits = arg("limits", "64,1").split(",").map(Number);
const rounds = Number(arg("rounds", "2"));
const MiB = 1024 * 1024;
const rss = () => process.memoryUsage().rss;

// The client: ws compresses the whole message (zeros) into one frame of about 1/1000 its size.
const wsModule = fileURLToPath(new URL("../node_modules/ws/index.js", import.meta.url.replace("/dist/bench/", "/bench/")));
const client = `
  const { default: WebSocket } = await import(${JSON.stringify(wsModule)});
  const ws = new WebSocket(process.argv[1], { perMessageDeflate: true });
  ws.on("open", () => ws.send(Buffer.alloc(${bombMiB} * 1024 * 1024), { compress: true }));
  ws.on("close", (code) => process.exit(code === 1009 ? 0 : 1));
  ws.on("error", () => {});
`;

/** One measurement, in this process: prints one line. */
async function measure(limit: number): Promise<void> {
  let base = 0;
  let peak = 0;
  let sampler: ReturnType<typeof setInterval> | undefined;
  let closed!: () => void;
  const done = new Promise<void>((resolve) => (closed = resolve));
  const server = await serve({ port: 0, hostname: "127.0.0.1", perMessageDeflate: true, maxMessageSize: limit * MiB }, {
    open() {
      base = rss();
      peak = base;
      sampler = setInterval(() => (peak = Math.max(peak, rss())), 2);
    },
    message(_ws, data) {
      console.log(`  delivered a message of ${data.length} bytes`);
    },
    close() {
      peak = Math.max(peak, rss());
      clearInterval(sampler);
      closed();
    },
  });
  const child = spawn("node", ["--input-type=module", "-e", client, `ws://127.0.0.1:${server.port}/`], { stdio: "inherit" });
  const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
  await done;
  await server.close();
  console.log(
    `  maxMessageSize ${limit} MiB: the client got ${code === 0 ? "1009" : "no 1009"}; ` +
      `RSS ${(base / MiB).toFixed(1)} MiB at open, peak +${((peak - base) / MiB).toFixed(1)} MiB`,
  );
}

const only = arg("measure", "");
if (only !== "") {
  await measure(Number(only));
} else {
  console.log(`zip bomb on ${runtimeName}: one message inflating to ${bombMiB} MiB`);
  const self = fileURLToPath(import.meta.url);
  for (let r = 0; r < rounds; r++) {
    for (const limit of limits) {
      const args = [self, `--bomb=${bombMiB}`, `--measure=${limit}`];
      const child = spawn(process.execPath, runtimeName === "deno" ? ["run", "-A", ...args] : args, { stdio: "inherit" });
      await new Promise((resolve) => child.once("exit", resolve));
    }
  }
}
