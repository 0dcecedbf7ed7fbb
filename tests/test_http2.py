"""HTTP/2: chosen by ALPN over TLS, and spoken without TLS by prior knowledge (h2c) when asked.

The server is Hypercorn with an ASGI app that reports the HTTP version it was spoken to with.
"""

import locust  # noqa: F401,I001 - monkey-patches first

import socket
import subprocess
import sys
import textwrap
import time

import gevent
import pytest
import trustme

from sessions import recording_session

APP = textwrap.dedent(
    """
    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        body = f"{scope['http_version']} {scope['method']} {scope['path']}".encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
    """
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(tmp_path, *extra):
    (tmp_path / "h2app.py").write_text(APP)
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "hypercorn", "--bind", f"127.0.0.1:{port}", *extra, "h2app:app"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, port
        except OSError:
            gevent.sleep(0.1)
    proc.kill()
    raise RuntimeError("hypercorn did not start")


@pytest.fixture(scope="module")
def h2_servers(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("h2")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert.cert_chain_pems[0].write_to_path(str(tmp / "cert.pem"))
    cert.private_key_pem.write_to_path(str(tmp / "key.pem"))
    tls_proc, tls_port = _serve(tmp, "--certfile", "cert.pem", "--keyfile", "key.pem")
    plain_proc, plain_port = _serve(tmp)
    try:
        yield {"tls": f"https://127.0.0.1:{tls_port}", "plain": f"http://127.0.0.1:{plain_port}"}
    finally:
        for p in (tls_proc, plain_proc):
            p.terminate()
            p.wait(timeout=10)


def test_alpn_picks_http2_over_tls(h2_servers):
    session, events = recording_session(h2_servers["tls"], concurrency=8)
    assert session.get("/a").text == "2 GET /a"
    # Many requests at once share the one multiplexed connection.
    greenlets = [gevent.spawn(session.get, f"/m{i}") for i in range(20)]
    gevent.joinall(greenlets, timeout=20, raise_error=True)
    assert [g.value.text for g in greenlets] == [f"2 GET /m{i}" for i in range(20)]
    assert all(e["exception"] is None for e in events)
    assert session.pool.idle_connections() == 1


def test_plain_http_stays_http1_by_default(h2_servers):
    session, _ = recording_session(h2_servers["plain"])
    assert session.get("/b").text == "1.1 GET /b"


def test_h2c_by_prior_knowledge(h2_servers):
    session, events = recording_session(h2_servers["plain"], http2_prior_knowledge=True)
    assert session.post("/c", data="x").text == "2 POST /c"
    assert events[-1]["exception"] is None
