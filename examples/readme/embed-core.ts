import { createServer } from "node:net";
import { ServerConnection } from "anyws/core";

const server = createServer((socket) => {
  const ws = new ServerConnection({ now: Date.now(), handshakeTimeout: 5_000 });
  let timer: ReturnType<typeof setTimeout> | undefined;
  const flush = () => {
    let events;
    do {
      for (const chunk of ws.pollOutput()) socket.write(chunk);
      events = ws.pollEvents();
      for (const event of events) {
        if (event.type === "upgrade") ws.accept(); // or ws.reject({ status: 403 })
        else if (event.type === "close") console.log(`closed ${event.code}`);
        // Also a text read together with the client's close: the echo goes out before the close reply.
        else if (event.type === "text") ws.sendText(`echo: ${event.data}`); // false once closed: dropped
      }
    } while (events.length > 0);
    if (ws.closeExpected) socket.end();
    // The core sets no timers: wake it at its next deadline (handshake, closing handshake, keepalive).
    clearTimeout(timer);
    if (ws.deadline !== Infinity) timer = setTimeout(() => (ws.tick(Date.now()), flush()), ws.deadline - Date.now());
  };
  socket.on("data", (bytes: Buffer) => (ws.tick(Date.now()), ws.receive(bytes), flush()));
  socket.on("end", () => (ws.receiveEof(), flush()));
  socket.on("error", () => socket.destroy()); // a reset ends this connection, not the server
  socket.on("close", () => clearTimeout(timer));
  flush(); // arms the handshake deadline
});
server.listen(0, "127.0.0.1", () => {
  console.log(`listening on port ${(server.address() as { port: number }).port}`);
});
