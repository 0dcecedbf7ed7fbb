"""A small SOCKS proxy for the proxy tests, meant to run in its own process (stdlib only).

SOCKS5 (RFC 1928: CONNECT, with IPv4, IPv6 or domain-name targets; no authentication, or user/password per
RFC 1929 when ``--auth user:password`` is given) and SOCKS4/4a. Each tunnel appends one JSON line to ``--log``: the
version, the target as the client named it (an address for socks5://, a name for socks5h://) and the user.

On start-up it prints ``{"port": P}``. It exits when its stdin reaches EOF, or after ``--lifetime`` seconds.
"""

from __future__ import annotations

import argparse
import ipaddress
import socket
import sys

from proxy_server import JsonLog, relay, serve

TIMEOUT = 10.0


def recv_exact(sock, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("closed during the SOCKS handshake")
        data += chunk
    return data


def recv_until_nul(sock) -> bytes:
    data = b""
    while not data.endswith(b"\0"):
        if len(data) > 1024:
            raise ValueError("field too long")
        data += recv_exact(sock, 1)
    return data[:-1]


class Socks:
    def __init__(self, log_path: str, auth: str | None) -> None:
        self.record = JsonLog(log_path)
        self.auth = auth

    def handle(self, client) -> None:
        client.settimeout(TIMEOUT)
        try:
            version = recv_exact(client, 1)[0]
            if version == 5:
                self._socks5(client)
            elif version == 4:
                self._socks4(client)
        except (OSError, ValueError):
            pass
        finally:
            try:
                client.close()
            except OSError:
                pass

    def _tunnel(self, client, host: str, port: int, reply_ok: bytes, reply_failed: bytes) -> None:
        try:
            upstream = socket.create_connection((host, port), timeout=TIMEOUT)
        except OSError:
            client.sendall(reply_failed)
            return
        upstream.settimeout(None)
        client.settimeout(None)
        client.sendall(reply_ok)
        relay(client, upstream)

    def _socks5(self, client) -> None:
        methods = recv_exact(client, recv_exact(client, 1)[0])
        user = None
        if self.auth is not None:
            if 2 not in methods:
                client.sendall(b"\x05\xff")
                return
            client.sendall(b"\x05\x02")
            recv_exact(client, 1)  # sub-negotiation version
            user = recv_exact(client, recv_exact(client, 1)[0]).decode()
            password = recv_exact(client, recv_exact(client, 1)[0]).decode()
            if f"{user}:{password}" != self.auth:
                self.record(version=5, target=None, user=user, refused="credentials")
                client.sendall(b"\x01\x01")
                return
            client.sendall(b"\x01\x00")
        elif 0 in methods:
            client.sendall(b"\x05\x00")
        else:
            client.sendall(b"\x05\xff")
            return
        _ver, command, _rsv, atyp = recv_exact(client, 4)
        if atyp == 1:
            host = str(ipaddress.IPv4Address(recv_exact(client, 4)))
        elif atyp == 4:
            host = str(ipaddress.IPv6Address(recv_exact(client, 16)))
        else:
            host = recv_exact(client, recv_exact(client, 1)[0]).decode()
        port = int.from_bytes(recv_exact(client, 2), "big")
        self.record(version=5, target=f"{host}:{port}", user=user)
        bound = b"\x01\x00\x00\x00\x00\x00\x00"
        if command != 1:
            client.sendall(b"\x05\x07\x00" + bound)  # command not supported
            return
        self._tunnel(client, host, port, b"\x05\x00\x00" + bound, b"\x05\x05\x00" + bound)

    def _socks4(self, client) -> None:
        command = recv_exact(client, 1)[0]
        port = int.from_bytes(recv_exact(client, 2), "big")
        address = recv_exact(client, 4)
        user = recv_until_nul(client).decode() or None
        if address[:3] == b"\0\0\0" and address[3] != 0:
            host = recv_until_nul(client).decode()  # SOCKS4a: the name follows
        else:
            host = str(ipaddress.IPv4Address(address))
        self.record(version=4, target=f"{host}:{port}", user=user)
        if command != 1:
            client.sendall(b"\x00\x5b" + b"\0" * 6)
            return
        self._tunnel(client, host, port, b"\x00\x5a" + b"\0" * 6, b"\x00\x5b" + b"\0" * 6)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--log", required=True)
    parser.add_argument("--auth", help="user:password the proxy requires (SOCKS5)")
    parser.add_argument("--lifetime", type=float, default=600.0)
    args = parser.parse_args(argv)
    serve(Socks(args.log, args.auth).handle, args.lifetime)
    return 0


if __name__ == "__main__":
    sys.exit(main())
