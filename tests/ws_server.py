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
``/garbage`` sends a frame with a reserved opcode.
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
