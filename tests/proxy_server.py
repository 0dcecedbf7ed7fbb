"""A small HTTP proxy for the proxy tests, meant to run in its own process (stdlib only).

It forwards absolute-form requests (``GET http://host/path``) for plain http and opens CONNECT tunnels for https,
and appends one JSON line per request to ``--log``: method, target and the ``Proxy-Authorization`` it got. With
``--auth user:password`` it answers 407 to anything without those credentials; with ``--cert``/``--key`` it speaks
TLS itself (an ``https://`` proxy).

A forwarded request gets ``Connection: close`` on both sides, so each connection carries one request: simple, and
enough for tests that look at what went through the proxy, not at its throughput.

On start-up it prints ``{"port": P}``. It exits when its stdin reaches EOF, or after ``--lifetime`` seconds.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import select
import socket
import ssl
import sys
import threading
from urllib.parse import urlsplit

TIMEOUT = 10.0


def read_head(sock) -> tuple[bytes, bytes]:
    """Reads up to the end of the header block; returns (head, what was read after it)."""
    data = b""
    while b"\r\n\r\n" not in data:
        if len(data) > 65536:
            raise ValueError("header block too large")
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed before the end of the headers")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def read_body(sock, headers: dict[str, str], rest: bytes) -> bytes:
    if headers.get("transfer-encoding", "").lower() == "chunked":
        # Kept whole (chunk framing included) and relayed as is; ends at the last chunk.
        while not rest.endswith(b"0\r\n\r\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            rest += chunk
        return rest
    length = int(headers.get("content-length", "0") or 0)
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    return rest


def relay(a, b) -> None:
    """Copies bytes both ways until either side closes or stays silent for ``TIMEOUT``, then shuts both down.

    One thread does both directions: an ``ssl.SSLSocket`` (the https proxy's client side) wraps one OpenSSL ``SSL``
    object, which must not be read in one thread while another writes it. Two threads did that here, and a tunnel
    now and then broke mid-handshake (an ``SSLEOFError`` in the client)."""
    peer = {a: b, b: a}
    try:
        while True:
            # Bytes OpenSSL already decrypted are invisible to select(); serve them first.
            ready = [s for s in (a, b) if isinstance(s, ssl.SSLSocket) and s.pending()]
            if not ready:
                ready, _, _ = select.select([a, b], [], [], TIMEOUT)
                if not ready:
                    return
            for s in ready:
                data = s.recv(65536)
                if not data:
                    return
                peer[s].sendall(data)
    except OSError:
        pass
    finally:
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class JsonLog:
    """One JSON line per entry, from any thread (shared with ``socks_server.py``)."""

    def __init__(self, path: str) -> None:
        self.file = open(path, "a", buffering=1)  # noqa: SIM115 - open for the life of the process
        self.lock = threading.Lock()

    def __call__(self, **entry) -> None:
        with self.lock:
            self.file.write(json.dumps(entry) + "\n")


class Proxy:
    def __init__(self, log_path: str, auth: str | None) -> None:
        self.record = JsonLog(log_path)
        self.expected = f"Basic {base64.b64encode(auth.encode()).decode()}" if auth else None

    def handle(self, client) -> None:
        client.settimeout(TIMEOUT)
        try:
            self._handle(client)
        except (OSError, ValueError, ssl.SSLError):
            pass
        finally:
            try:
                client.close()
            except OSError:
                pass

    def _handle(self, client) -> None:
        head, rest = read_head(client)
        lines = head.decode("latin-1").split("\r\n")
        method, target, _version = lines[0].split(" ", 2)
        headers: dict[str, str] = {}
        kept: list[str] = []
        for line in lines[1:]:
            name, _, value = line.partition(":")
            key = name.strip().lower()
            headers[key] = value.strip()
            if key not in ("proxy-authorization", "proxy-connection", "connection", "keep-alive"):
                kept.append(line)
        got = headers.get("proxy-authorization")
        self.record(method=method, target=target, proxy_authorization=got, host=headers.get("host"))
        if self.expected is not None and got != self.expected:
            client.sendall(
                b'HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="proxy"\r\n'
                b"Content-Length: 0\r\nConnection: close\r\n\r\n"
            )
            return
        if method == "CONNECT":
            host, port = target.rsplit(":", 1)
            upstream = socket.create_connection((host.strip("[]"), int(port)), timeout=TIMEOUT)
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            if rest:
                upstream.sendall(rest)
            relay(client, upstream)
            return
        url = urlsplit(target)
        if url.scheme != "http" or not url.hostname:
            client.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return
        body = read_body(client, headers, rest)
        path = (url.path or "/") + (f"?{url.query}" if url.query else "")
        upstream = socket.create_connection((url.hostname, url.port or 80), timeout=TIMEOUT)
        try:
            request = "\r\n".join([f"{method} {path} HTTP/1.1", *kept, "Connection: close", "", ""])
            upstream.sendall(request.encode("latin-1") + body)
            reply_head, reply_rest = read_head(upstream)
            reply_lines = [
                line
                for line in reply_head.decode("latin-1").split("\r\n")
                if line.partition(":")[0].strip().lower() not in ("connection", "keep-alive")
            ]
            client.sendall("\r\n".join([*reply_lines, "Connection: close", "", ""]).encode("latin-1") + reply_rest)
            while data := upstream.recv(65536):
                client.sendall(data)
        finally:
            upstream.close()


def serve(handle, lifetime: float) -> None:
    """Runs ``handle(conn)`` in a thread per connection on a loopback port it prints as ``{"port": P}``, until stdin
    reaches EOF or ``lifetime`` seconds pass. Shared with ``socks_server.py``."""
    killer = threading.Timer(lifetime, os._exit, (3,))
    killer.daemon = True
    killer.start()
    listener = socket.create_server(("127.0.0.1", 0), backlog=128)

    def accept() -> None:
        while True:
            conn, _ = listener.accept()
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    print(json.dumps({"port": listener.getsockname()[1]}), flush=True)
    try:
        while sys.stdin.buffer.read(4096):
            pass
    except (OSError, ValueError):
        pass
    os._exit(0)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--log", required=True)
    parser.add_argument("--auth", help="user:password the proxy requires")
    parser.add_argument("--cert", help="PEM certificate: speak TLS to clients")
    parser.add_argument("--key")
    parser.add_argument("--lifetime", type=float, default=600.0)
    args = parser.parse_args(argv)

    proxy = Proxy(args.log, args.auth)
    context = None
    if args.cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.cert, args.key)

    def handle(conn) -> None:
        if context is not None:
            conn.settimeout(TIMEOUT)
            try:
                conn = context.wrap_socket(conn, server_side=True)
            except (OSError, ssl.SSLError):
                conn.close()
                return
        proxy.handle(conn)

    serve(handle, args.lifetime)
    return 0


if __name__ == "__main__":
    sys.exit(main())
