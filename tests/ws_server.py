"""A WebSocket test server (the `websockets` package, asyncio) for tests/test_websocket.py.

Run as ``python ws_server.py [--tls PEM]``; prints ``{"port": P, "tls_port": Q, "silent_port": R}`` and serves until
its stdin closes. On every path except the ones below it echoes text and binary messages, and obeys JSON commands:

- ``{"type": "ping"}`` -> ``{"type": "pong"}``
- ``{"type": "stream", "n": N}`` -> N frames ``{"type": "chunk", "i": i}`` then ``{"type": "done", "n": N}``
- ``{"type": "close", "code": C, "reason": R}`` -> closes the connection with that code and reason
- ``{"type": "silence"}`` -> no answer at all
- ``{"type": "big", "size": N}`` -> one binary message of N bytes
- ``{"type": "push", "n": N}`` -> N frames ``{"type": "news", "i": i}`` then ``{"type": "pong"}``
- ``{"type": "headers"}`` -> the upgrade request's headers as a JSON object (lowercase names)
- ``{"type": "ping-me"}`` -> the server pings and answers ``{"type": "pinged"}`` once the client's pong arrived

Paths: ``/refuse`` answers the upgrade with 401; ``/drop`` drops the TCP connection right after the upgrade;
``/garbage`` sends a frame with a reserved opcode; ``/badclose`` a close frame whose reason is not UTF-8, and
``/badtext`` a text frame that is not UTF-8.
Hostile servers, each bounded (64 MiB at most, then it closes the connection):
``/flood`` streams 1 KiB binary frames numbered from 0 (8-byte big-endian prefix), as fast as the client reads;
``/pingflood`` stops reading and sends pings as fast as the client reads; ``/deaf`` stops reading and is silent.
``silent_port`` accepts TCP connections and never answers (a handshake that hangs).
"""

import argparse
import asyncio
import json
import ssl
import sys
from http import HTTPStatus

from websockets.asyncio.server import serve


def pick_subprotocol(connection, offered):
    # Offering none is fine; of those offered, the first one the server knows wins.
    return next((p for p in offered if p in ("chat.v1", "chat.v2")), None)


def refuse(connection, request):
    if request.path.startswith("/refuse"):
        return connection.respond(HTTPStatus.UNAUTHORIZED, "missing or bad token\n")
    return None


async def handler(ws):
    if ws.request.path.startswith("/drop"):
        ws.transport.abort()
        return
    if ws.request.path.startswith("/garbage"):
        ws.transport.write(b"\x83\x00")  # a data frame with the reserved opcode 3
        await asyncio.sleep(5)
        return
    if ws.request.path.startswith("/badclose"):
        ws.transport.write(b"\x88\x04\x03\xe8\xff\xfe")  # code 1000, reason bytes ff fe
        await asyncio.sleep(5)
        return
    if ws.request.path.startswith("/badtext"):
        ws.transport.write(b"\x81\x02\xff\xfe")
        await asyncio.sleep(5)
        return
    if ws.request.path.startswith(("/flood", "/pingflood", "/deaf")):
        await hostile(ws, ws.request.path)
        return
    async for message in ws:
        command = None
        if isinstance(message, str) and message.startswith("{"):
            try:
                command = json.loads(message)
            except ValueError:
                command = None
        kind = command.get("type") if isinstance(command, dict) else None
        if kind == "ping":
            await ws.send('{"type": "pong"}')
        elif kind == "stream":
            for i in range(command["n"]):
                await ws.send(json.dumps({"type": "chunk", "i": i}))
            await ws.send(json.dumps({"type": "done", "n": command["n"]}))
        elif kind == "push":
            for i in range(command["n"]):
                await ws.send(json.dumps({"type": "news", "i": i}))
            await ws.send('{"type": "pong"}')
        elif kind == "close":
            await ws.close(command.get("code", 1000), command.get("reason", ""))
            return
        elif kind == "silence":
            continue
        elif kind == "big":
            await ws.send(b"x" * command["size"])
        elif kind == "headers":
            await ws.send(json.dumps({k.lower(): v for k, v in ws.request.headers.raw_items()}))
        elif kind == "ping-me":
            waiter = await ws.ping()
            await asyncio.wait_for(waiter, 5)
            await ws.send('{"type": "pinged"}')
        else:
            await ws.send(message)


FLOOD_BYTES = 64 * 1024 * 1024


async def hostile(ws, path: str) -> None:
    transport = ws.transport
    if path.startswith("/flood"):
        # websockets' send waits while the kernel's buffers are full: the client's reading paces it.
        for i in range(FLOOD_BYTES // 1024):
            await ws.send(i.to_bytes(8, "big") + b"x" * 1016)
        await ws.close()
        return
    transport.pause_reading()
    if path.startswith("/deaf"):
        await asyncio.sleep(60)
        transport.abort()
        return
    pings = b"\x89\x7d" + b"p" * 125  # ping frames with 125-byte payloads
    batch = pings * 1024
    sent = 0
    while sent < FLOOD_BYTES and not transport.is_closing():
        transport.write(batch)
        sent += len(batch)
        while transport.get_write_buffer_size() > 1024 * 1024 and not transport.is_closing():
            await asyncio.sleep(0.001)
    await asyncio.sleep(5)
    transport.abort()


async def silent(reader, writer):
    try:
        await asyncio.sleep(3600)
    except asyncio.CancelledError:
        writer.close()


async def main(pem: str | None) -> None:
    kwargs = {
        "process_request": refuse,
        "max_size": None,
        "select_subprotocol": pick_subprotocol,
        "ping_interval": None,
    }
    plain = await serve(handler, "127.0.0.1", 0, **kwargs)
    ports = {"port": plain.sockets[0].getsockname()[1]}
    if pem:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(pem)
        secure = await serve(handler, "127.0.0.1", 0, ssl=ctx, **kwargs)
        ports["tls_port"] = secure.sockets[0].getsockname()[1]
    hole = await asyncio.start_server(silent, "127.0.0.1", 0)
    ports["silent_port"] = hole.sockets[0].getsockname()[1]
    print(json.dumps(ports), flush=True)
    # The parent closing stdin (or dying) stops the server.
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--tls")
    args = parser.parse_args()
    asyncio.run(main(args.tls))
