/**
 * Conformance of our server: the fuzzing client runs the whole catalogue (Autobahn's sections
 * 1–7, 9, 10, 12, 13) against an echo server built with `serve()`, over real
 * loopback sockets, on the runtime running this file. Any FAILED case fails its section.
 */
import { runtimeName } from "../../adapters/auto.ts";
import { startAnywsServer } from "./peers.ts";
import { conformanceTests } from "./suite.ts";

conformanceTests({ role: "server", name: `anyws serve() on ${runtimeName}`, ours: true, start: startAnywsServer });
