/**
 * The same catalogue against the `ws` package as a client, as a reference for the suite itself
 * (on Bun, Bun's built-in ws-compatible module). A FAILED case fails the test. The server role
 * is in reference-server.test.ts.
 */
import { wsClient } from "./peers.ts";
import { conformanceTests } from "./suite.ts";

conformanceTests({ role: "client", name: wsClient.name, ours: false, client: wsClient });
