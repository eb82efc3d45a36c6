/** Drives a client and a server core against each other in memory, for tests. */
import {
  ClientConnection,
  type ClientConnectionOptions,
  type Connection,
  type ConnectionEvent,
  ServerConnection,
  type ServerConnectionOptions,
  type ServerAcceptOptions,
  type Tuning,
} from "../../core/mod.ts";
import { concatBytes } from "../../core/bytes.ts";

export interface Pair {
  client: ClientConnection;
  server: ServerConnection;
  clientEvents: ConnectionEvent[];
  serverEvents: ConnectionEvent[];
  /** Moves bytes both ways until neither side has anything to write. */
  pump(): void;
}

/** Collects a connection's output as one buffer. */
export function drainOutput(connection: Connection): Uint8Array {
  return concatBytes(connection.pollOutput());
}

export function createPair(
  options: {
    server?: ServerConnectionOptions;
    client?: Partial<ClientConnectionOptions>;
    accept?: ServerAcceptOptions | false;
    /** Both sides' tuning, unless their own options name one. */
    tuning?: Tuning;
  } = {},
): Pair {
  const server = new ServerConnection({ tuning: options.tuning, ...options.server });
  const client = new ClientConnection({ host: "example.com", tuning: options.tuning, ...options.client });
  const clientEvents: ConnectionEvent[] = [];
  const serverEvents: ConnectionEvent[] = [];
  const pump = () => {
    for (let round = 0; round < 1000; round++) {
      const toServer = drainOutput(client);
      const toClient = drainOutput(server);
      if (toServer.length) server.receive(toServer);
      if (toClient.length) client.receive(toClient);
      for (const event of server.pollEvents()) {
        serverEvents.push(event);
        if (event.type === "upgrade" && options.accept !== false) server.accept(options.accept || {});
      }
      clientEvents.push(...client.pollEvents());
      if (!toServer.length && !toClient.length) return;
    }
    throw new Error("pump did not settle");
  };
  pump();
  return { client, server, clientEvents, serverEvents, pump };
}
