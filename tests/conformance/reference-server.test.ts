/**
 * The same catalogue against the `ws` package as a server, as a reference for the suite itself
 * (on Bun, `import "ws"` is Bun's built-in ws-compatible module, its own native implementation,
 * named so). A FAILED case fails the test. The client role is in reference-client.test.ts: one
 * file per role keeps each well inside the per-file time limit on a slow machine.
 */
import { startWsServer, wsName } from "./peers.ts";
import { runtimeName } from "../../adapters/auto.ts";
import { conformanceTests } from "./suite.ts";

conformanceTests({ role: "server", name: `${wsName} WebSocketServer on ${runtimeName}`, ours: false, start: startWsServer });
