/**
 * The same catalogue against the `ws` package in both roles, as a reference for the suite
 * itself (on Bun, `import "ws"` is Bun's built-in ws-compatible module, its own native
 * implementation, named so). A FAILED case fails the test.
 */
import { startWsServer, wsClient, wsName } from "./peers.ts";
import { runtimeName } from "../../adapters/auto.ts";
import { conformanceTests } from "./suite.ts";

conformanceTests({ role: "server", name: `${wsName} WebSocketServer on ${runtimeName}`, ours: false, start: startWsServer });
conformanceTests({ role: "client", name: wsClient.name, ours: false, client: wsClient });
