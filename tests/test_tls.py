"""TLS: rustls with Locust's `insecure` rule, against a local HTTPS server with a test CA's certificate."""

import locust  # noqa: F401,I001 - monkey-patches first

import json
import ssl
import subprocess
import sys
import textwrap
from pathlib import Path

import gevent
import pytest
import trustme

import locust_rs
from sessions import recording_session

SERVER = textwrap.dedent(
    """
    import json, ssl, sys, threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        def log_message(self, *a):
            pass
        def do_GET(self):
            body = b"tls ok " + self.path.encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(sys.argv[1])
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    print(json.dumps({"port": srv.server_address[1]}), flush=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    sys.stdin.read()  # the parent closing stdin (or dying) stops the server
    """
)


@pytest.fixture(scope="module")
def https_url(tmp_path_factory):
    ca = trustme.CA()
    pem = tmp_path_factory.mktemp("tls") / "server.pem"
    ca.issue_cert("localhost", "127.0.0.1").private_key_and_cert_chain_pem.write_to_path(str(pem))
    proc = subprocess.Popen([sys.executable, "-c", SERVER, str(pem)], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        with gevent.Timeout(20):
            port = json.loads(proc.stdout.readline())["port"]
        yield f"https://127.0.0.1:{port}"
    finally:
        proc.stdin.close()
        proc.wait(timeout=10)


def test_insecure_accepts_a_certificate_it_cannot_verify(https_url):
    session, events = recording_session(https_url)  # insecure=True is Locust's default
    r = session.get("/hello")
    assert r.status_code == 200, getattr(r, "error", None)
    assert r.content == b"tls ok /hello"
    assert events[-1]["exception"] is None
    # The connection is kept alive across requests, TLS included.
    assert session.get("/again").content == b"tls ok /again"
    assert session.pool.idle_connections() == 1


def test_verification_rejects_an_unknown_issuer(https_url):
    session, events = recording_session(https_url, insecure=False)
    r = session.get("/hello")
    assert r.status_code == 0
    assert isinstance(events[-1]["exception"], ssl.SSLError)
    assert "certificate" in str(events[-1]["exception"]).lower()


def test_fast_http_user_over_tls(https_url):
    from locust.env import Environment

    class User(locust_rs.FastHttpUser):
        host = https_url

    env = Environment(user_classes=[User])
    events = []
    env.events.request.add_listener(lambda **kw: events.append(kw))
    user = User(env)
    assert user.client.get("/u").text == "tls ok /u"
    assert events[-1]["url"] == f"{https_url}/u"


def test_https_through_a_connect_proxy(https_url, tmp_path):
    log = tmp_path / "proxy.log"
    proxy_script = Path(__file__).parent / "proxy_server.py"
    proc = subprocess.Popen(
        [sys.executable, str(proxy_script), "--log", str(log)], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        with gevent.Timeout(20):
            port = json.loads(proc.stdout.readline())["port"]
        session, events = recording_session(https_url, proxy_host="127.0.0.1", proxy_port=port)
        assert session.get("/via-proxy").content == b"tls ok /via-proxy"
        assert session.get("/again").content == b"tls ok /again"
        assert events[-1]["exception"] is None
        # One tunnel, kept alive for both requests.
        seen = [json.loads(line) for line in log.read_text().splitlines()]
        assert [(e["method"], e["target"]) for e in seen] == [("CONNECT", https_url.removeprefix("https://"))]
    finally:
        proc.stdin.close()
        proc.wait(timeout=10)
