"""A real HTTP/1.1 server for the contract tests, meant to run in its own process.

It runs as a subprocess (``python tests/servers.py``) so that it never shares the gevent hub of the test process:
a server that blocks on a monkey-patched socket in the same process as the client under test would hide bugs
(and deadlocks) of the client. Only the stdlib is used.

On start-up it prints one JSON line on stdout, ``{"port": P, "blackhole_port": B}``:

* ``port``: the HTTP server, bound to 127.0.0.1.
* ``blackhole_port``: a listening socket whose accept queue is kept full, so that a new TCP connect to it hangs
  in SYN-SENT: the only portable way on loopback to provoke a *connection* timeout (as opposed to a refusal).

The process exits when its stdin reaches EOF (the parent closed it or died), or after ``--lifetime`` seconds.
Every blocking call in it has a timeout, so no thread can outlive those bounds by much.

Routes (any verb unless noted):

* ``/echo[/anything]``: JSON with method, path, request target (as on the request line, so absolute under a
  proxy), query string, parsed query, headers received (lowercased names; the
  names of ``ECHO_OMITTED_HEADERS`` such as User-Agent only in ``omitted_headers``, without value),
  body received (decoded as UTF-8 with replacement) and its length. HEAD gets the headers of the GET answer only.
* ``/status/<code>``: that status; a short text body except for 1xx/204/304. ``?location=`` adds a Location,
  ``?reason=`` sends that reason phrase instead of the standard one.
* ``/redirect/<n>``: chain of n relative 302s ending at ``/echo``. ``/absolute-redirect/<n>``: same, absolute URLs.
* ``/redirect-to?url=...&status=...``: one redirect (default 302) to ``url``.
* ``/stream/<n>``: chunked transfer-encoding, n JSON lines, one chunk each.
* ``/no-length``: body without Content-Length nor chunking, ``Connection: close``, ended by closing the socket.
* ``/gzip``, ``/deflate`` (zlib stream), ``/deflate-raw`` (raw deflate), ``/brotli``: compressed JSON bodies.
* ``/cookies/set?name=value...``: Set-Cookie (Path=/) for each pair, then 200 with the pairs as JSON.
* ``/cookies/set-redirect?name=value...``: same cookies, then 302 to ``/cookies``.
* ``/cookies/delete?name...``: expires those cookies, then 200.
* ``/cookies``: the cookies received, as JSON.
* ``/basic-auth/<user>/<pass>``: 200 JSON if the Authorization header matches (credentials percent-decoded from the
  path, encoded latin-1 in the header, as Locust does), else 401 + WWW-Authenticate.
* ``/digest-auth/<user>/<pass>``: digest auth (MD5, qop=auth, a fixed nonce): 200 JSON once the answer is
  right, else 401 with the challenge (and a cookie).
* ``/slow?delay=seconds``: answers JSON after the delay (capped at 30 s).
* ``/never``: reads the request, never answers; holds the socket until the client closes it (60 s at most).
* ``/close-mid-body``: headers with Content-Length: 1000, then 100 bytes, then closes the socket.
* ``/close-no-response``: reads the request, then closes the socket without answering.
* ``/reset``: reads the request, then resets the connection (RST) without answering.
* ``/reset-mid-body``: headers with Content-Length: 1000, then 100 bytes, then resets the connection.
* ``/garbage``: answers bytes that are not HTTP, then closes.
* ``/json-invalid``: 200, application/json, body ``{not json``.
* ``/json?...``: 200, application/json, ``{"hello": "world", "query": {...}}``.
* ``/text?charset=...&ctype=...``: ``héllo wörld`` encoded in charset (UTF-8 by default); content type ``ctype``
  (default ``text/plain``) with ``; charset=...`` added only when the charset was given.
* ``/bytes/<n>[?status=S]``: n (at most 64 MiB) deterministic pseudo-random bytes, application/octet-stream,
  status S (200).
* ``/trickle?gap=s``: the whole response (status line, headers, body) in 12-byte pieces ``gap`` seconds apart
  (0.3 by default, at most 5).
* ``/endless``: a chunked body of 64 KiB chunks that only ends when the client goes away (or after 30 s).
* ``/gzip-bomb/<mib>``: a gzip body (about 1 KiB per MiB) that decodes to that many MiB of zeros (at most 256).
* ``/response-headers?Name=value...``: 200 with those response headers (repeated names are sent repeatedly).
* ``/empty``: 200 with ``Content-Length: 0`` and no content type.
* ``/peer``: JSON ``{"client_cert": CN}``, the common name of the client certificate (null without one; with
  ``--tls-cert``, ``--tls-key`` and ``--client-ca`` the server speaks TLS and asks for an optional client certificate).
* ``/hits?tag=T``: how many requests (to any other route) carried the query parameter ``tag=T``. Counted when the
  request line is read, before the route runs, so requests that never get an answer count too.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import hashlib
import json
import os
import random
import re
import select
import socket
import ssl
import struct
import sys
import threading
import time
import zlib
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, unquote, urlsplit
from urllib.request import parse_http_list, parse_keqv_list

try:
    import brotli
except ImportError:  # the route then answers 501, the rest of the server does not depend on it
    brotli = None

# Caps on every wait, so that a misbehaving client cannot keep a server thread alive forever.
IDLE_KEEPALIVE_TIMEOUT = 30.0
MAX_SLOW_DELAY = 30.0
MAX_NEVER_HOLD = 60.0
MAX_REQUEST_BODY = 16 * 1024 * 1024
MAX_REDIRECTS_SERVED = 100
MAX_STREAM_LINES = 10_000
MAX_BYTES = 64 * 1024 * 1024
ENDLESS_CHUNK = 64 * 1024
ENDLESS_SECONDS = 30

TEXT_SAMPLE = "héllo wörld"

# Headers whose value identifies the client library rather than what the caller asked for. /echo reports only that
# they were sent, so that two clients differing only there get byte-identical answers (same length, same body).
ECHO_OMITTED_HEADERS = frozenset({"user-agent"})

# requests carrying a `tag=` query parameter, counted per tag value: lets a test see how often a client retried
HITS: dict[str, int] = {}
HITS_LOCK = threading.Lock()


class _Close(Exception):
    """Raised by a route that has already dealt with the socket and wants the connection dropped."""


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # http.server writes headers and body separately; with Nagle on, each response waits ~40 ms for a delayed ACK.
    disable_nagle_algorithm = True
    server_version = "locust-rs-testserver/1.0"
    # socket timeout: bounds how long an idle keep-alive connection keeps its thread
    timeout = IDLE_KEEPALIVE_TIMEOUT

    def log_message(self, format, *args):  # noqa: A002 - signature of the base class
        # the parent reads our stdout for the port; keep both streams quiet unless debugging
        if os.environ.get("LOCUST_RS_TESTSERVER_DEBUG"):
            sys.stderr.write(f"{self.address_string()} - {format % args}\n")

    # ---- request plumbing -------------------------------------------------------------------------------------

    def do_GET(self):
        self._dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_TRACE = do_GET

    def _read_body(self) -> bytes:
        te = self.headers.get("Transfer-Encoding", "")
        if "chunked" in te.lower():
            chunks = []
            total = 0
            while True:
                size_line = self.rfile.readline(1024)
                if not size_line:
                    break
                size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    # trailers, up to the empty line
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                total += size
                if total > MAX_REQUEST_BODY:
                    raise _Close()
                chunks.append(self.rfile.read(size))
                self.rfile.readline(1024)
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_REQUEST_BODY:
            raise _Close()
        return self.rfile.read(length) if length else b""

    def _send(
        self, status: int, body: bytes = b"", headers: list[tuple[str, str]] | None = None, ctype=None, reason=None
    ):
        self.send_response(status, reason)
        if ctype:
            self.send_header("Content-Type", ctype)
        for name, value in headers or []:
            self.send_header(name, value)
        if status >= 200 and status not in (204, 304):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and status >= 200 and status not in (204, 304):
            self.wfile.write(body)

    def _json(self, status: int, obj, headers=None):
        body = json.dumps(obj, sort_keys=True).encode()
        self._send(status, body, headers, ctype="application/json")

    def _dispatch(self):
        split = urlsplit(self.path)
        self.url_path = split.path
        self.query_string = split.query
        self.query = parse_qsl(split.query, keep_blank_values=True)
        if self.url_path != "/hits":
            for key, value in self.query:
                if key == "tag":
                    with HITS_LOCK:
                        HITS[value] = HITS.get(value, 0) + 1
        try:
            self.body = self._read_body()
            for pattern, route in ROUTES:
                m = pattern.fullmatch(self.url_path)
                if m:
                    route(self, *m.groups())
                    break
            else:
                self._send(404, b"no such route: " + self.url_path.encode(), ctype="text/plain")
        except _Close:
            self.close_connection = True
        except (ConnectionError, TimeoutError):
            self.close_connection = True

    # ---- routes -----------------------------------------------------------------------------------------------

    def setup(self):
        super().setup()
        self.handshake_failed = False
        if isinstance(self.connection, ssl.SSLSocket):
            # The handshake runs here, in the connection's own thread, not in the accept loop.
            try:
                self.connection.do_handshake()
            except (OSError, ssl.SSLError):
                self.handshake_failed = True

    def handle(self):
        if not self.handshake_failed:
            super().handle()

    def r_peer(self):
        cert = self.connection.getpeercert() if isinstance(self.connection, ssl.SSLSocket) else None
        cn = None
        for rdn in (cert or {}).get("subject", ()):
            for key, value in rdn:
                if key == "commonName":
                    cn = value
        self._json(200, {"client_cert": cn})

    def r_echo(self, _rest=None):
        headers: dict[str, str] = {}
        omitted = set()
        for name, value in self.headers.items():
            key = name.lower()
            if key in ECHO_OMITTED_HEADERS:
                omitted.add(key)
                continue
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        self._json(
            200,
            {
                "echo": True,
                "method": self.command,
                "path": self.url_path,
                "target": self.path,
                "query_string": self.query_string,
                "args": [list(kv) for kv in self.query],
                "headers": headers,
                "omitted_headers": sorted(omitted),
                "body": self.body.decode("utf-8", errors="replace"),
                "body_length": len(self.body),
            },
        )

    def r_status(self, code):
        code = int(code)
        headers = [("Location", v) for k, v in self.query if k == "location"]
        if code == 401:
            headers.append(("WWW-Authenticate", 'Basic realm="test"'))
        reason = next((v for k, v in self.query if k == "reason"), None)
        self._send(code, f"status {code}".encode(), headers, ctype="text/plain", reason=reason)

    def r_redirect(self, n):
        n = min(int(n), MAX_REDIRECTS_SERVED)
        location = f"/redirect/{n - 1}" if n > 1 else "/echo"
        self._send(302, b"", [("Location", location)])

    def r_absolute_redirect(self, n):
        n = min(int(n), MAX_REDIRECTS_SERVED)
        host = self.headers.get("Host") or "{}:{}".format(*self.server.server_address[:2])
        location = f"http://{host}/absolute-redirect/{n - 1}" if n > 1 else f"http://{host}/echo"
        self._send(302, b"", [("Location", location)])

    def r_redirect_to(self):
        args = dict(self.query)
        self._send(int(args.get("status", 302)), b"", [("Location", args.get("url", "/echo"))])

    def r_stream(self, n):
        n = min(int(n), MAX_STREAM_LINES)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if self.command == "HEAD":
            return
        for i in range(n):
            line = json.dumps({"id": i, "line": f"line {i}"}).encode() + b"\n"
            self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")

    def r_no_length(self):
        body = b"no content-length here\n" * 20
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.wfile.flush()
        self.close_connection = True

    def _compressed(self, encoding, compress):
        payload = json.dumps({"compressed": encoding, "data": ["x" * 20] * 20}, sort_keys=True).encode()
        self._send(200, compress(payload), [("Content-Encoding", encoding)], ctype="application/json")

    def r_gzip(self):
        # mtime=0 keeps the compressed bytes (and so Content-Length) identical between runs
        self._compressed("gzip", lambda b: gzip.compress(b, mtime=0))

    def r_deflate(self):
        self._compressed("deflate", zlib.compress)

    def r_deflate_raw(self):
        def raw(b):
            c = zlib.compressobj(wbits=-zlib.MAX_WBITS)
            return c.compress(b) + c.flush()

        self._compressed("deflate", raw)

    def r_brotli(self):
        if brotli is None:
            self._send(501, b"brotli module not installed", ctype="text/plain")
            return
        self._compressed("br", brotli.compress)

    def _cookie_headers(self, expire=False):
        headers = []
        for name, value in self.query:
            if expire:
                headers.append(("Set-Cookie", f"{name}=; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0"))
            else:
                headers.append(("Set-Cookie", f"{name}={value}; Path=/"))
        return headers

    def r_cookies_set(self):
        self._json(200, {"set": dict(self.query)}, self._cookie_headers())

    def r_cookies_set_redirect(self):
        self._send(302, b"", self._cookie_headers() + [("Location", "/cookies")])

    def r_cookies_delete(self):
        self._json(200, {"deleted": [k for k, _ in self.query]}, self._cookie_headers(expire=True))

    def r_cookies(self):
        jar = SimpleCookie()
        for header in self.headers.get_all("Cookie") or []:
            jar.load(header)
        self._json(
            200,
            {
                "cookies": {k: m.value for k, m in sorted(jar.items())},
                "cookie_headers": self.headers.get_all("Cookie") or [],
            },
        )

    def r_basic_auth(self, user, password):
        user, password = unquote(user), unquote(password)
        expected = "Basic " + base64.b64encode(f"{user}:{password}".encode("latin1")).decode("ascii")
        if self.headers.get("Authorization") == expected:
            self._json(200, {"authenticated": True, "user": user})
        else:
            self._json(401, {"authenticated": False}, [("WWW-Authenticate", 'Basic realm="test"')])

    def r_digest_auth(self, user, password):
        """RFC 2617 digest (MD5, qop=auth) with a fixed nonce: 401 and a challenge until the answer is right."""
        user, password = unquote(user), unquote(password)
        realm, nonce = "test", "0123456789abcdef"
        header = self.headers.get("Authorization", "")
        if header[:7].lower() == "digest ":
            p = parse_keqv_list(parse_http_list(header[7:]))

            def h(text: str) -> str:
                return hashlib.md5(text.encode()).hexdigest()

            ha1 = h(f"{user}:{realm}:{password}")
            ha2 = h(f"{self.command}:{p.get('uri', '')}")
            expected = h(f"{ha1}:{p.get('nonce')}:{p.get('nc')}:{p.get('cnonce')}:{p.get('qop')}:{ha2}")
            if p.get("username") == user and p.get("response") == expected and p.get("nonce") == nonce:
                self._json(200, {"authenticated": True, "user": user, "uri": p.get("uri")})
                return
        challenge = f'Digest realm="{realm}", qop="auth", nonce="{nonce}", opaque="opaque", algorithm=MD5'
        self._json(401, {"authenticated": False}, [("WWW-Authenticate", challenge), ("Set-Cookie", "seen=1; Path=/")])

    def r_slow(self):
        delay = min(float(dict(self.query).get("delay", 1)), MAX_SLOW_DELAY)
        time.sleep(delay)
        self._json(200, {"slept": delay})

    def _hold_until_closed(self, limit):
        # poll rather than block, so the thread notices the client going away and never outlives `limit`
        deadline = time.monotonic() + limit
        sock = self.connection
        while (left := deadline - time.monotonic()) > 0:
            readable, _, _ = select.select([sock], [], [], min(left, 1.0))
            if readable:
                try:
                    if not sock.recv(65536):
                        break
                except OSError:
                    break
        raise _Close()

    def r_never(self):
        self._hold_until_closed(MAX_NEVER_HOLD)

    def _first_tenth_of_the_body(self):
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", "1000")
        self.end_headers()
        self.wfile.write(b"x" * 100)
        self.wfile.flush()

    def r_close_mid_body(self):
        self._first_tenth_of_the_body()
        self.connection.shutdown(socket.SHUT_RDWR)
        raise _Close()

    def _reset(self):
        # SO_LINGER with a zero timeout makes close() send RST instead of FIN: a reset, not a clean close.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        raise _Close()

    def r_reset(self):
        time.sleep(0.05)  # the client is reading the response by then: a reset on an established connection
        self._reset()

    def r_reset_mid_body(self):
        self._first_tenth_of_the_body()
        time.sleep(0.05)
        self._reset()

    def r_close_no_response(self):
        self.connection.shutdown(socket.SHUT_RDWR)
        raise _Close()

    def r_garbage(self):
        self.wfile.write(b"this is not HTTP at all\r\n\r\n")
        self.wfile.flush()
        self.connection.shutdown(socket.SHUT_RDWR)
        raise _Close()

    def r_json_invalid(self):
        self._send(200, b"{not json", ctype="application/json")

    def r_json(self):
        self._json(200, {"hello": "world", "query": dict(self.query)})

    def r_text(self):
        args = dict(self.query)
        charset = args.get("charset")
        ctype = args.get("ctype", "text/plain")
        body = TEXT_SAMPLE.encode(charset or "utf-8")
        self._send(200, body, ctype=f"{ctype}; charset={charset}" if charset else ctype)

    def r_bytes(self, n):
        n = min(int(n), MAX_BYTES)
        status = int(dict(self.query).get("status", 200))
        self._send(status, random.Random(n).randbytes(n), ctype="application/octet-stream")

    def r_trickle(self):
        # The whole response, status line and headers included, in pieces `gap` seconds apart.
        gap = min(float(dict(self.query).get("gap", "0.3")), 5.0)
        body = b"trickled body"
        head = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n" % len(body)
        raw = head + body
        for i in range(0, len(raw), 12):
            self.wfile.write(raw[i : i + 12])
            self.wfile.flush()
            time.sleep(gap)

    def r_endless(self):
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        chunk = b"%x\r\n%s\r\n" % (ENDLESS_CHUNK, b"x" * ENDLESS_CHUNK)
        deadline = time.monotonic() + ENDLESS_SECONDS
        try:
            while time.monotonic() < deadline:
                self.wfile.write(chunk)
        except OSError:
            pass  # the client gave up: the point of the route
        raise _Close()

    def r_gzip_bomb(self, mib):
        mib = min(int(mib), 256)
        c = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        zeros = bytes(1 << 20)
        body = b"".join(c.compress(zeros) for _ in range(mib)) + c.flush()
        self._send(200, body, [("Content-Encoding", "gzip")], ctype="application/octet-stream")

    def r_response_headers(self):
        self._json(200, {"headers": [list(kv) for kv in self.query]}, list(self.query))

    def r_hits(self):
        tag = dict(self.query).get("tag", "")
        with HITS_LOCK:
            self._json(200, {"tag": tag, "hits": HITS.get(tag, 0)})

    def r_empty(self):
        self._send(200, b"")


ROUTES = [
    (re.compile(r"/echo(/.*)?"), Handler.r_echo),
    (re.compile(r"/status/(\d{3})"), Handler.r_status),
    (re.compile(r"/redirect/(\d+)"), Handler.r_redirect),
    (re.compile(r"/absolute-redirect/(\d+)"), Handler.r_absolute_redirect),
    (re.compile(r"/redirect-to"), Handler.r_redirect_to),
    (re.compile(r"/stream/(\d+)"), Handler.r_stream),
    (re.compile(r"/no-length"), Handler.r_no_length),
    (re.compile(r"/gzip"), Handler.r_gzip),
    (re.compile(r"/deflate"), Handler.r_deflate),
    (re.compile(r"/deflate-raw"), Handler.r_deflate_raw),
    (re.compile(r"/brotli"), Handler.r_brotli),
    (re.compile(r"/cookies/set"), Handler.r_cookies_set),
    (re.compile(r"/cookies/set-redirect"), Handler.r_cookies_set_redirect),
    (re.compile(r"/cookies/delete"), Handler.r_cookies_delete),
    (re.compile(r"/cookies"), Handler.r_cookies),
    (re.compile(r"/basic-auth/([^/]+)/([^/]+)"), Handler.r_basic_auth),
    (re.compile(r"/digest-auth/([^/]+)/([^/]+)"), Handler.r_digest_auth),
    (re.compile(r"/slow"), Handler.r_slow),
    (re.compile(r"/never"), Handler.r_never),
    (re.compile(r"/close-mid-body"), Handler.r_close_mid_body),
    (re.compile(r"/close-no-response"), Handler.r_close_no_response),
    (re.compile(r"/reset"), Handler.r_reset),
    (re.compile(r"/reset-mid-body"), Handler.r_reset_mid_body),
    (re.compile(r"/garbage"), Handler.r_garbage),
    (re.compile(r"/json-invalid"), Handler.r_json_invalid),
    (re.compile(r"/json"), Handler.r_json),
    (re.compile(r"/text"), Handler.r_text),
    (re.compile(r"/bytes/(\d+)"), Handler.r_bytes),
    (re.compile(r"/endless"), Handler.r_endless),
    (re.compile(r"/trickle"), Handler.r_trickle),
    (re.compile(r"/gzip-bomb/(\d+)"), Handler.r_gzip_bomb),
    (re.compile(r"/response-headers"), Handler.r_response_headers),
    (re.compile(r"/empty"), Handler.r_empty),
    (re.compile(r"/peer"), Handler.r_peer),
    (re.compile(r"/hits"), Handler.r_hits),
]


class Server(ThreadingHTTPServer):
    daemon_threads = True
    # the default backlog (5) is too small for a burst of parallel connects from a concurrency test
    request_queue_size = 128


def make_blackhole() -> tuple[socket.socket, list[socket.socket]]:
    """A listener whose accept queue is full: Linux then drops further SYNs, so connecting times out."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    fillers = []
    # listen(0) queues one connection; a few more make sure the queue is full whatever the kernel rounds it to
    for _ in range(3):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        try:
            s.connect(listener.getsockname())
        except BlockingIOError:
            pass
        fillers.append(s)
    time.sleep(0.05)
    return listener, fillers


def exit_after(lifetime: float) -> None:
    """The hard limit on the process's life. Set first, so that nothing after it can keep the process alive past it."""
    killer = threading.Timer(lifetime, os._exit, (3,))
    killer.daemon = True
    killer.start()


def serve_until_stdin_closes(server, ready: dict) -> None:
    """Serves in a thread, prints ``ready`` as the one JSON line the parent waits for, and returns, with the server
    shut down, once stdin reaches EOF: the parent keeps it open and never writes, so EOF means it is done with us, or
    dead. (Also used by otlp_receiver.py.)"""
    serve = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
    serve.start()
    print(json.dumps(ready), flush=True)
    try:
        while sys.stdin.buffer.read(4096):
            pass
    except (OSError, ValueError):
        pass
    server.shutdown()
    server.server_close()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lifetime", type=float, default=600.0, help="hard limit, in seconds, on the process life")
    parser.add_argument("--tls-cert", help="PEM certificate chain: serve https")
    parser.add_argument("--tls-key")
    parser.add_argument("--client-ca", help="CA that issues client certificates (which are then optional)")
    args = parser.parse_args(argv)

    exit_after(args.lifetime)
    server = Server(("127.0.0.1", 0), Handler)
    if args.tls_cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.tls_cert, args.tls_key)
        if args.client_ca:
            context.load_verify_locations(args.client_ca)
            context.verify_mode = ssl.CERT_OPTIONAL
        server.socket = context.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
    blackhole, _fillers = make_blackhole()
    serve_until_stdin_closes(server, {"port": server.server_address[1], "blackhole_port": blackhole.getsockname()[1]})
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
