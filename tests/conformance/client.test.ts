/**
 * Conformance of our client: an echo client built on our `WebSocket` class is pointed at the
 * fuzzing server, case by case (Autobahn's sections 1–7, 9, 10, 12, 13), over real
 * loopback sockets, on the runtime running this file. Any FAILED case fails its section.
 */
import { anywsClient } from "./peers.ts";
import { conformanceTests } from "./suite.ts";

conformanceTests({ role: "client", name: anywsClient.name, ours: true, client: anywsClient });
