/**
 * The server side of the backplane end-to-end tests: greets each client with `hello WHO`, and
 * takes "sub TOPIC" (answered "subscribed TOPIC") and "pub TOPIC TEXT" from it; a binary
 * message is published to "room".
 */
import type { ServerHandlers } from "../../adapters/shared/server.ts";

export function topicHandlers(who: string): ServerHandlers {
  return {
    open: (ws) => void ws.send(`hello ${who}`),
    message(ws, data) {
      if (typeof data !== "string") {
        ws.publish("room", data);
        return;
      }
      const [command, topic, ...rest] = data.split(" ");
      if (command === "sub") ws.subscribe(topic!), ws.send(`subscribed ${topic}`);
      else if (command === "pub") ws.publish(topic!, rest.join(" "));
    },
  };
}
