/** The core on a plain TCP socket: anyws as a state machine in someone else's I/O loop. */
import { createServer } from "node:net";
import { ServerConnection } from "../core/mod.ts";

const server = createServer((socket) => {
  const ws = new ServerConnection({ now: Date.now() });
  const flush = () => {
    let events;
    do {
      for (const chunk of ws.pollOutput()) socket.write(chunk);
      events = ws.pollEvents();
      for (const event of events) {
        if (event.type === "upgrade") ws.accept(); // or ws.reject({ status: 403 })
        else if (event.type === "text") ws.sendText(`echo: ${event.data}`);
        else if (event.type === "close") console.log(`closed ${event.code}`);
      }
    } while (events.length > 0);
    if (ws.closeExpected) socket.end();
  };
  socket.on("data", (bytes) => (ws.tick(Date.now()), ws.receive(bytes as Uint8Array), flush()));
  socket.on("end", () => (ws.receiveEof(), flush()));
  socket.on("error", () => socket.destroy());
}).listen(0, "127.0.0.1", () => console.log(`listening on ${(server.address() as { port: number }).port}`));
