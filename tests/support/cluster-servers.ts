/**
 * A node:cluster of WebSocket servers for tests/backplane/cluster.test.ts, on the test's
 * runtime: the primary runs `clusterHub()` and serves too, through `hub.driver()`; two forked
 * workers serve through `clusterDriver()`, on one port: on Node the cluster shares it (both
 * listen on port 0); on Deno and Bun, whose node:cluster does not share anyws's sockets, with
 * `reusePort`. Each prints `listening WHO PORT` once its backplane is up. SIGTERM stops them
 * all. IPC serialization is ANYWS_SERIALIZATION ("advanced" or "json").
 */
import cluster from "node:cluster";
import process from "node:process";
import { runtimeName, serve } from "../../adapters/auto.ts";
import { clusterDriver, clusterHub } from "../../adapters/backplane/cluster.ts";
import { topicHandlers } from "./topic-server.ts";

const print = (line: string) => process.stdout.write(line + "\n");

if (cluster.isPrimary) {
  cluster.setupPrimary({ serialization: process.env.ANYWS_SERIALIZATION as "advanced" | "json" });
  const hub = clusterHub({ error: (error) => print(`error hub ${String(error)}`) });
  const listening = (worker: ReturnType<typeof cluster.fork>) =>
    new Promise<number>((resolve) => worker.on("message", (m: { listening?: number }) => m.listening && resolve(m.listening)));
  const w1 = cluster.fork({ ANYWS_WHO: "w1", ANYWS_PORT: "0" });
  const port = await listening(w1);
  const w2 = cluster.fork({ ANYWS_WHO: "w2", ANYWS_PORT: runtimeName === "node" ? "0" : String(port) });
  await listening(w2);
  const workers = [w1, w2];
  const server = await serve({ port: 0, hostname: "127.0.0.1", backplane: { driver: hub.driver() } }, topicHandlers("primary"));
  await server.backplane!.ready;
  print(`listening primary ${server.port}`);
  process.on("SIGTERM", () => {
    for (const w of workers) w.process.kill("SIGKILL");
    process.exit(0);
  });
} else {
  const who = process.env.ANYWS_WHO!;
  process.on("disconnect", () => process.exit(0)); // the primary is gone
  const server = await serve(
    {
      port: Number(process.env.ANYWS_PORT),
      hostname: "127.0.0.1",
      reusePort: runtimeName !== "node",
      backplane: { driver: clusterDriver(), error: (stage, e) => print(`error ${who} ${stage} ${String(e)}`) },
    },
    topicHandlers(who),
  );
  await server.backplane!.ready;
  print(`listening ${who} ${server.port}`);
  process.send!({ listening: server.port });
}
