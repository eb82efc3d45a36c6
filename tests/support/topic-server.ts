/**
 * The server side of the backplane end-to-end tests: greets each client with `hello WHO` (unless
 * `who` is null), and takes "sub TOPIC" (answered "subscribed TOPIC"), "unsub TOPIC" (answered
 * "unsubscribed TOPIC") and "pub TOPIC TEXT" from it; a binary message is published to
 * `binaryTopic`.
 */
import type { ServerHandlers } from "../../adapters/shared/server.ts";

export function topicHandlers(who: string | null, binaryTopic = "room"): ServerHandlers {
  return {
    open: (ws) => void (who !== null && ws.send(`hello ${who}`)),
    message(ws, data) {
      if (typeof data !== "string") {
        ws.publish(binaryTopic, data);
        return;
      }
      const [command, topic, ...rest] = data.split(" ");
      if (command === "sub") ws.subscribe(topic!), ws.send(`subscribed ${topic}`);
      else if (command === "unsub") ws.unsubscribe(topic!), ws.send(`unsubscribed ${topic}`);
      else if (command === "pub") ws.publish(topic!, rest.join(" "));
    },
  };
}
