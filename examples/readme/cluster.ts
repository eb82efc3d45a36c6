import cluster, { type Worker } from "node:cluster";
import process from "node:process";
import { runtimeName, serve, WebSocket } from "anyws";
import { clusterDriver, clusterHub } from "anyws/backplane";

if (cluster.isPrimary) {
  const hub = clusterHub();                          // relays between the processes
  const listening = (worker: Worker) => new Promise<number>((resolve) => worker.on("message", (m) => m.port && resolve(m.port)));
  const first = cluster.fork({ PORT: "0" });
  const port = await listening(first);
  // The same port: Node's cluster gives every worker's port 0 the first one's; elsewhere, ask for it.
  const second = cluster.fork({ PORT: runtimeName === "node" ? "0" : String(port) });
  await listening(second);

  const [alice, bob] = [1, 2].map(() => new WebSocket(`ws://127.0.0.1:${port}/`));
  await Promise.all([alice, bob].map((ws) => new Promise((resolve) => (ws!.onopen = resolve))));
  bob!.onmessage = (event) => {
    console.log(`bob: ${event.data}`);               // whichever workers the two landed on
    for (const worker of [first, second]) worker.kill();
    hub.close();
  };
  alice!.send("hello from alice");
} else {
  const server = await serve({
    port: Number(process.env.PORT),
    reusePort: runtimeName !== "node",               // Node's cluster shares the port itself
    backplane: { driver: clusterDriver() },
  }, {
    open(ws) { ws.subscribe("room"); },
    message(ws, data) { ws.publish("room", data); },
  });
  await server.backplane!.ready;
  process.send!({ port: server.port });
}
