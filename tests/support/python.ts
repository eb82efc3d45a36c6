/**
 * The python-websockets peer: tests/interop/python_websockets_peer.py, run with Debian's
 * python3-websockets. It speaks the protocol of tests/support/scripted-peer.ts.
 */
import { findPython, sourcePath } from "./child.ts";

/** The peer script, next to the interop tests. */
export const SCRIPT = sourcePath("../interop/python_websockets_peer.py", import.meta.url);

/** The first python3 that can `import websockets`, or null. */
export const python = findPython();
