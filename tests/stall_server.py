"""A small HTTP/1.1 server for the open-model tests and benchmark: every GET is answered after ``--delay`` seconds
(keep-alive, no body read), except that

- ``GET /stall?secs=S`` starts a stall now: every response due in the next S seconds is held until the stall ends
  (the stall itself is answered at once);
- ``GET /never`` is never answered (the connection is held until the client closes it).

It prints one JSON line, ``{"port": N}``, when it is ready, and exits when its stdin closes (child_servers.py).
asyncio on one thread: a few thousand requests per second, enough for 1,000 iterations/s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from urllib.parse import parse_qs, urlsplit

_OK = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"


class _State:
    delay = 0.001
    stall_until = 0.0
    stalls = 0


class _Http(asyncio.Protocol):
    def connection_made(self, transport) -> None:
        self.transport = transport
        self.buf = b""
        self.queue: asyncio.Queue = asyncio.Queue()
        self.task = asyncio.get_running_loop().create_task(self._serve())

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while (end := self.buf.find(b"\r\n\r\n")) >= 0:
            head, self.buf = self.buf[:end], self.buf[end + 4 :]
            line = head.split(b"\r\n", 1)[0].decode("latin-1")
            parts = line.split(" ")
            self.queue.put_nowait(parts[1] if len(parts) > 1 else "/")

    def connection_lost(self, exc) -> None:
        self.task.cancel()

    async def _serve(self) -> None:
        # One request at a time per connection, in order, as HTTP/1.1 keep-alive needs.
        while True:
            target = await self.queue.get()
            url = urlsplit(target)
            if url.path == "/never":
                await asyncio.Event().wait()
            if url.path == "/stall":
                secs = float(parse_qs(url.query).get("secs", ["1"])[0])
                _State.stall_until = time.monotonic() + secs
                _State.stalls += 1
                self.transport.write(_OK)
                continue
            if url.path == "/stats":
                body = json.dumps({"stalls": _State.stalls}).encode()
                self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
                continue
            await asyncio.sleep(_State.delay)
            hold = _State.stall_until - time.monotonic()
            if hold > 0:
                await asyncio.sleep(hold)
            self.transport.write(_OK)


async def _main(args) -> None:
    _State.delay = args.delay
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_Http, "127.0.0.1", args.port, backlog=4096)
    port = server.sockets[0].getsockname()[1]
    print(json.dumps({"port": port}), flush=True)
    # Exit when stdin closes: the parent's way out, and what happens when the parent dies.
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while await reader.read(1024):
        pass
    server.close()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--delay", type=float, default=0.001, help="seconds before each answer (default 0.001)")
    asyncio.run(_main(p.parse_args()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
