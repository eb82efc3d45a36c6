/** Helpers for tests over real loopback sockets, on whichever runtime runs them. */
import { ClientConnection, type ConnectionEvent } from "../../core/mod.ts";
import { runtime } from "../../adapters/auto.ts";
import type { Transport } from "../../adapters/shared/transport.ts";
import { until } from "./time.ts";

export { readFixture, TLS_DIR } from "./fixtures.ts";
export { delay, until } from "./time.ts";

/**
 * A hand-driven client: a raw transport with a core ClientConnection on top, so a test can
 * misbehave (stop reading, send half frames, never answer) where a real client would not.
 */
export class RawClient {
  transport!: Transport;
  readonly connection: ClientConnection;
  readonly events: ConnectionEvent[] = [];
  readonly received: Uint8Array[] = [];
  closed = false;
  ended = false;
  /** When false, bytes are kept in `received` instead of going to the connection. */
  parse = true;

  private constructor(connection: ClientConnection) {
    this.connection = connection;
  }

  /** `handshake: false` sends nothing: the test writes raw bytes itself. */
  static async connect(
    port: number,
    options: { path?: string; autoPong?: boolean; protocols?: string[]; handshake?: boolean } = {},
  ) {
    const client = new RawClient(
      new ClientConnection({ host: `127.0.0.1:${port}`, path: options.path, autoPong: options.autoPong, protocols: options.protocols }),
    );
    client.transport = await runtime.dial({ host: "127.0.0.1", port }, () => ({
      onData: (chunk) => {
        client.received.push(chunk);
        if (client.parse) {
          client.connection.receive(chunk);
          client.pump();
        }
      },
      onEnd: () => {
        // The server closed its side: like any peer, close ours.
        client.ended = true;
        client.connection.receiveEof();
        client.pump();
        client.transport.end();
      },
      onDrain: () => {},
      onClose: () => {
        client.closed = true;
        client.connection.receiveEof();
        client.pump();
      },
    }));
    if (options.handshake === false) {
      client.parse = false;
      client.connection.pollOutput();
    }
    client.pump();
    return client;
  }

  /** Writes the connection's output and collects its events. */
  pump(): void {
    // Until no events come: a close frame read after events is answered at the poll after them.
    let events: readonly ConnectionEvent[];
    do {
      const output = this.connection.pollOutput();
      if (output.length && !this.closed) this.transport.write(output);
      events = this.connection.pollEvents();
      this.events.push(...events);
    } while (events.length !== 0);
  }

  async opened(): Promise<void> {
    await until(() => this.events.some((e) => e.type === "open" || e.type === "handshake_failed"), "the handshake");
    const failed = this.events.find((e) => e.type === "handshake_failed");
    if (failed) throw new Error(`handshake failed: ${JSON.stringify(failed)}`);
  }

  write(bytes: Uint8Array): void {
    this.transport.write([bytes]);
  }

  destroy(): void {
    this.transport.destroy();
  }

  async whenClosed(timeout = 5000): Promise<void> {
    await until(() => this.closed, "the transport to close", timeout);
  }
}
