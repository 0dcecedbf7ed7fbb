"""A tiny HTTP/1.1 target for ``examples/locustfile.py``: a toy shop API, standard library only.

    python examples/target.py --port 8080 [--lifetime 600]

It binds to 127.0.0.1 only and exits by itself after ``--lifetime`` seconds, so a forgotten server never lingers.
With ``--port 0`` the system picks a free port. Either way the first line on stdout is
``target listening on http://127.0.0.1:PORT``, which ``examples/smoke.sh`` waits for. (Locust's own web UI listens
on 8089 by default: give the target another port when you run the example with the UI.)

Routes:

* ``GET /``: a small HTML page.
* ``POST /api/login``: JSON ``{"username": ..., "password": ...}`` in, ``{"token": ...}`` out (any non-empty
  username is accepted; 400 otherwise).
* ``GET /api/items``: ``{"items": [{"id": 1, "name": ...}, ...]}``; needs ``Authorization: Bearer <token>``.
* ``GET /api/items/<id>``: one item (ids 1 to ``ITEM_COUNT``), 404 for any other id; needs the token too.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ITEM_COUNT = 20
ITEMS = [{"id": i, "name": f"item {i}", "price_cents": 100 * i} for i in range(1, ITEM_COUNT + 1)]
INDEX_HTML = b"<!doctype html><html><head><title>toy shop</title></head><body><h1>toy shop</h1></body></html>\n"
ITEM_PATH = re.compile(r"/api/items/(\d+)")
# an idle keep-alive connection holds a thread; this bounds how long
IDLE_TIMEOUT_S = 30.0
MAX_BODY = 64 * 1024

TOKENS: set[str] = set()
TOKENS_LOCK = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a real target would
    server_version = "locust-rs-example-target/1.0"
    timeout = IDLE_TIMEOUT_S
    # headers and body leave in two writes; with Nagle on, the second waits for the client's delayed ACK and every
    # response takes ~40 ms on loopback
    disable_nagle_algorithm = True

    def log_message(self, format, *args):  # noqa: A002 - signature of the base class
        # one line per request would drown the load test's own output
        pass

    def _send(self, status: int, body: bytes, ctype: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, obj) -> None:
        self._send(status, json.dumps(obj).encode(), "application/json")

    def _authorized(self) -> bool:
        scheme, _, token = (self.headers.get("Authorization") or "").partition(" ")
        with TOKENS_LOCK:
            ok = scheme == "Bearer" and token in TOKENS
        if not ok:
            self._json(401, {"error": "missing or unknown token"})
        return ok

    def do_GET(self):
        path = self.path.partition("?")[0]
        if path == "/":
            self._send(200, INDEX_HTML, "text/html; charset=utf-8")
        elif path == "/api/items":
            if self._authorized():
                self._json(200, {"items": ITEMS})
        elif m := ITEM_PATH.fullmatch(path):
            if self._authorized():
                item_id = int(m.group(1))
                if 1 <= item_id <= ITEM_COUNT:
                    self._json(200, ITEMS[item_id - 1])
                else:
                    self._json(404, {"error": f"no item {item_id}"})
        else:
            self._json(404, {"error": "no such route"})

    do_HEAD = do_GET

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self.close_connection = True
            self._json(413, {"error": "body too large"})
            return
        body = self.rfile.read(length) if length else b""
        if self.path.partition("?")[0] != "/api/login":
            self._json(404, {"error": "no such route"})
            return
        try:
            username = json.loads(body or b"{}").get("username")
        except (ValueError, AttributeError):
            username = None
        if not username:
            self._json(400, {"error": "username required"})
            return
        token = secrets.token_hex(16)
        with TOKENS_LOCK:
            TOKENS.add(token)
        self._json(200, {"token": token})


class Server(ThreadingHTTPServer):
    daemon_threads = True
    # the default backlog (5) drops connects when many users start at once
    request_queue_size = 256

    def handle_error(self, request, client_address):
        # A load test that ends closes its connections mid-response: that is the client leaving, not an error of
        # the server, and a traceback per connection would bury what matters.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8080, help="port on 127.0.0.1; 0 picks a free one (default 8080)")
    parser.add_argument("--lifetime", type=float, default=600.0, help="exit after this many seconds (default 600)")
    args = parser.parse_args(argv)

    # armed before anything else, so that nothing below can keep the process alive past it
    killer = threading.Timer(args.lifetime, os._exit, (0,))
    killer.daemon = True
    killer.start()

    server = Server(("127.0.0.1", args.port), Handler)
    print(f"target listening on http://127.0.0.1:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
