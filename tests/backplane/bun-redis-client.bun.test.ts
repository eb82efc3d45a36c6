/**
 * Why the Redis backplane refuses Bun's built-in `Bun.RedisClient`: it hands pub/sub messages to
 * listeners as strings decoded from UTF-8, so bytes that are not UTF-8 (an envelope's random
 * origin, binary payloads) arrive as U+FFFD. Checked against a real redis-server, with ioredis
 * publishing the bytes; and `redisBackplane()` says so when given one.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { Redis } from "ioredis";
import { redisBackplane } from "../../adapters/backplane/mod.ts";
import { RedisServer } from "../support/redis.ts";
import { until } from "../support/time.ts";

describe("Bun.RedisClient and the backplane", () => {
  test("binary pub/sub messages do not survive Bun.RedisClient; redisBackplane() refuses it", async () => {
    const redis = await RedisServer.start();
    const subscriber = new Bun.RedisClient(redis.url);
    const publisher = new Redis(redis.url);
    try {
      const received: unknown[] = [];
      await subscriber.subscribe("bytes", (message) => received.push(message));
      const bytes = Uint8Array.from({ length: 256 }, (_, i) => i);
      await publisher.publish("bytes", Buffer.from(bytes));
      await until(() => received.length === 1, "the message");
      const message = received[0] as string;
      assert.equal(typeof message, "string");
      assert.equal(message.slice(0, 128), String.fromCharCode(...bytes.slice(0, 128)), "ASCII survives");
      assert.equal(message.slice(128), "\ufffd".repeat(128), "every byte from 0x80 on is lost");
      assert.throws(() => redisBackplane(subscriber as never), /Bun\.RedisClient cannot carry binary pub\/sub messages/);
    } finally {
      subscriber.close();
      publisher.disconnect();
      await redis.stop();
    }
  });
});
