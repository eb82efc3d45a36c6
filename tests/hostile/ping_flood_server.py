"""A server that never reads: answers one WebSocket upgrade, then writes 125-byte pings.

Prints its port, then one JSON line: how many bytes it wrote, and whether the peer stopped
taking them (nothing could be written for a second) before `budget` bytes were written.
"""
import base64
import hashlib
import json
import select
import socket
import sys

budget = int(sys.argv[1])
listener = socket.create_server(("127.0.0.1", 0))
print(listener.getsockname()[1], flush=True)
conn, _ = listener.accept()
head = b""
while b"\r\n\r\n" not in head:
    head += conn.recv(4096)
key = next(line.split(b":", 1)[1].strip() for line in head.split(b"\r\n") if line.lower().startswith(b"sec-websocket-key:"))
accept = base64.b64encode(hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n")
# RFC 6455 §5.5.2: an unmasked ping from a server, 125 bytes of payload.
batch = (b"\x89\x7d" + b"p" * 125) * 512
conn.setblocking(False)
written = 0
stalled = False
pending = b""
while written < budget:
    if not pending:
        pending = batch
    _, writable, _ = select.select([], [conn], [], 1.0)
    if not writable:
        stalled = True
        break
    n = conn.send(pending)
    written += n
    pending = pending[n:]
print(json.dumps({"written": written, "stalled": stalled}), flush=True)
sys.stdin.read()  # the connection stays open until the test is done with it
