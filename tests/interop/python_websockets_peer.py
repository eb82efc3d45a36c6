"""The python-websockets side of tests/interop/python-websockets.test.ts.

    python3 python_websockets_peer.py '<json parameters>'

Written for the asyncio API that every websockets version since 10 has (Debian bookworm ships
10.4, which has no sync client). Parameters come from the test as JSON on argv; the 1 MiB
message is generated from the same formula as `bigPattern` in tests/support/interop.ts.
Reports are JSON lines on stdout (ASCII only); the test asserts on them.

mode "client": connects to our server at `url`, runs the exchange, pings, closes with `close`;
then connects again, sends "close me" and reports how our server closed it.

mode "server": prints {"port": N}, then serves on 127.0.0.1 until stdin closes (or it is
killed), echoing messages; it pings each new connection with `ping2`, closes a connection
with `close2` when it receives the text "close me", and prints one report per connection.
"""

import asyncio
import hashlib
import json
import sys

import websockets

MAX_SIZE = 4 * 1024 * 1024


def big_pattern(size):
    return bytes((i * 31 + (i >> 8) * 7 + (i >> 16)) & 0xFF for i in range(size))


def describe(message):
    """A message as JSON: text exactly, bytes as length, SHA-256 and (when short) hex."""
    if isinstance(message, str):
        return {"text": message}
    out = {"length": len(message), "sha256": hashlib.sha256(message).hexdigest()}
    if len(message) <= 4096:
        out["hex"] = message.hex()
    return out


def report(obj):
    sys.stdout.write(json.dumps(obj, ensure_ascii=True) + "\n")
    sys.stdout.flush()


async def run_client(p):
    text = p["text"]
    binary = bytes.fromhex(p["binary_hex"])
    big = big_pattern(p["big_size"])
    ping = bytes.fromhex(p["ping_hex"])
    code, reason = p["close"]
    result = {"version": websockets.__version__}

    async with websockets.connect(p["url"], max_size=MAX_SIZE, ping_interval=None) as ws:
        result["extensions"] = [type(e).__name__ for e in ws.extensions]
        result["response_extensions"] = ws.response_headers.get("Sec-WebSocket-Extensions")
        await ws.send(text)
        await ws.send(binary)
        await ws.send(big)
        result["echoes"] = [describe(await asyncio.wait_for(ws.recv(), 10)) for _ in range(3)]
        # Our ping: the waiter resolves only on a pong with this exact payload.
        waiter = await ws.ping(ping)
        await asyncio.wait_for(waiter, 5)
        result["pong"] = True
        # Our server pings (on "ping me"), then says "pinged"; websockets answers by itself.
        await ws.send("ping me")
        result["after_ping"] = describe(await asyncio.wait_for(ws.recv(), 5))
        await asyncio.wait_for(ws.close(code, reason), 10)
        result["close_received"] = [ws.close_code, ws.close_reason]

    async with websockets.connect(p["url"], max_size=MAX_SIZE, ping_interval=None) as ws:
        await ws.send("close me")
        await asyncio.wait_for(ws.wait_closed(), 10)
        result["closed_by_server"] = [ws.close_code, ws.close_reason]

    report(result)


async def run_server(p):
    ping2 = bytes.fromhex(p["ping2_hex"])
    code2, reason2 = p["close2"]
    count = 0

    async def handler(ws, path=None):
        nonlocal count
        count += 1
        conn = {"conn": count, "messages": [], "pong": False}
        conn["request_extensions"] = ws.request_headers.get("Sec-WebSocket-Extensions")
        conn["extensions"] = [type(e).__name__ for e in ws.extensions]
        waiter = None
        try:
            # Our ping: the waiter resolves only on a pong with this exact payload.
            waiter = await ws.ping(ping2)
            waiter.add_done_callback(lambda f: conn.update(pong=not f.cancelled() and f.exception() is None))
            async for message in ws:
                conn["messages"].append(describe(message))
                if message == "close me":
                    await ws.close(code2, reason2)
                else:
                    await ws.send(message)
        finally:
            if waiter is not None and waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                conn["pong"] = True
            conn["pong_state"] = repr(waiter)
            conn["close_received"] = [ws.close_code, ws.close_reason]
            report(conn)

    async with websockets.serve(handler, "127.0.0.1", 0, max_size=MAX_SIZE, ping_interval=None) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        report({"port": port, "version": websockets.__version__})
        loop = asyncio.get_running_loop()
        # Serve until the test closes our stdin.
        await loop.run_in_executor(None, sys.stdin.read)


def main():
    p = json.loads(sys.argv[1])
    if p["mode"] == "client":
        asyncio.run(run_client(p))
    else:
        asyncio.run(run_server(p))


if __name__ == "__main__":
    main()
