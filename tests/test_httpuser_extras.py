"""locust-rs HttpUser/HttpSession behaviour that has no counterpart to compare with in Locust: connection sharing
through a native pool, the import swap, and clear errors for what is not supported."""

from locust.env import Environment
from locust.event import EventHook

import gevent
import pytest
import requests
import urllib3

import locust_rs
from locust_rs.clients import HttpSession


def _user(cls_attrs, host):
    cls = type("U", (locust_rs.HttpUser,), {"host": host, **cls_attrs})
    return cls(Environment(user_classes=[cls]))


def test_pool_manager_shares_one_native_pool(http_server):
    pool = locust_rs.ConnectionPool(concurrency=100)
    a, b = _user({"pool_manager": pool}, http_server), _user({"pool_manager": pool}, http_server)
    assert a.client.pool is pool and b.client.pool is pool
    a.client.get("/echo")
    b.client.get("/echo")
    assert pool.idle_connections() == 1  # b reused the connection a left idle


def test_urllib3_pool_manager_maps_to_one_native_pool(http_server):
    manager = urllib3.PoolManager()
    a, b = _user({"pool_manager": manager}, http_server), _user({"pool_manager": manager}, http_server)
    assert a.client.pool is b.client.pool
    c = _user({}, http_server)
    assert c.client.pool is not a.client.pool


def test_concurrent_requests_of_one_session(http_server):
    s = HttpSession(http_server, EventHook(), None)
    jobs = [gevent.spawn(s.get, "/slow?delay=0.3") for _ in range(20)]
    gevent.joinall(jobs, timeout=10)
    assert [j.value.status_code for j in jobs] == [200] * 20


def test_killed_greenlet_leaves_nothing_pending(http_server):
    from locust_rs._gevent import bridge as _bridge

    s = HttpSession(http_server, EventHook(), None)
    g = gevent.spawn(s.get, "/never")
    gevent.sleep(0.2)
    g.kill()
    assert _bridge.pending() == 0
    assert s.get("/echo").status_code == 200


def test_install_swaps_the_names_and_keeps_locust_working():
    import subprocess
    import sys

    code = (
        "import locust_rs, locust_rs.swap as sw\n"
        "names = locust_rs.install()\n"
        "from locust import HttpUser, FastHttpUser\n"
        "from locust.contrib.fasthttp import FastHttpUser as F2, FastHttpSession\n"
        "from locust.clients import HttpSession\n"
        "assert HttpUser is locust_rs.HttpUser and FastHttpUser is locust_rs.FastHttpUser and F2 is FastHttpUser\n"
        "assert FastHttpSession is locust_rs.FastHttpSession and HttpSession is locust_rs.HttpSession\n"
        "assert locust_rs.install() == names and sw.installed()\n"
        "import locust.user.users, locust.web\n"
        "class Mine(HttpUser):\n"
        "    host = 'http://127.0.0.1:1'\n"
        "assert issubclass(Mine, locust.web.HttpUser)\n"
        "from locust.util.load_locustfile import is_user_class\n"
        "assert is_user_class(Mine)\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "ok", out.stderr


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
@pytest.mark.parametrize("impl", ["ref", "rs"])
def test_verify_over_tls_as_locust(impl, tmp_path):
    """verify (session attribute and request argument) against a certificate nobody trusts: the same outcomes and
    exception classes with Locust's HttpSession and ours."""
    import json
    import subprocess
    import sys

    import requests
    import trustme
    from test_tls import SERVER

    if impl == "ref":
        from locust.clients import HttpSession as Session
    else:
        Session = HttpSession
    pem = tmp_path / "server.pem"
    trustme.CA().issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(str(pem))
    proc = subprocess.Popen([sys.executable, "-c", SERVER, str(pem)], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        with gevent.Timeout(20):
            url = f"https://127.0.0.1:{json.loads(proc.stdout.readline())['port']}"
        events = []
        hook = EventHook()
        hook.add_listener(lambda **kw: events.append(kw))
        s = Session(url, hook, None)
        r = s.get("/a")
        assert r.status_code == 0 and isinstance(r.error, requests.exceptions.SSLError)
        assert events[-1]["exception"] is not None
        assert s.get("/b", verify=False).text == "tls ok /b"
        # trust_env off, as HttpUser sets it: otherwise requests lets REQUESTS_CA_BUNDLE override session.verify.
        s = Session(url, hook, None)
        s.trust_env = False
        s.verify = False
        r = s.get("/c")
        assert r.text == "tls ok /c", (r.status_code, r.headers, r.content, getattr(r, "error", None))
        assert events[-1]["exception"] is None
    finally:
        proc.stdin.close()
        proc.wait(timeout=10)


def test_close_drops_own_connections_not_shared_ones(http_server):
    s = HttpSession(http_server, EventHook(), None)
    s.get("/echo")
    assert s.pool.idle_connections() == 1
    s.close()
    assert s.pool.idle_connections() == 0
    assert s.get("/echo").status_code == 200
    shared = locust_rs.ConnectionPool(concurrency=10)
    s2 = HttpSession(http_server, EventHook(), None, pool_manager=shared)
    s2.get("/echo")
    s2.close()
    assert shared.idle_connections() == 1


def test_untouched_session_headers_take_the_short_path(http_server):
    # The client holds the session's default headers; a request merges headers in Python only once they changed.
    s = HttpSession(http_server, EventHook(), None)
    assert s._session_headers() is None
    s.headers["X-A"] = "1"
    assert s._session_headers() is s.headers
    assert s.get("/echo").json()["headers"]["x-a"] == "1"
    s.headers = {"X-B": "2"}
    assert s._session_headers() is s.headers
    assert "x-a" not in s.get("/echo").json()["headers"]


def test_a_url_too_long_for_hyper_raises_invalid_url(http_server):
    s = HttpSession(http_server, EventHook(), None)
    assert s.get("/echo?x=" + "a" * 60_000).status_code == 200
    with pytest.raises(requests.exceptions.InvalidURL, match="URL too long.*65534"):
        s.get("/echo?x=" + "a" * 100_000)


def test_a_nan_timeout_raises_value_error_not_a_header_failure(http_server):
    # The engine's ValueError for a NaN timeout must not be taken for a header it refused.
    s = HttpSession(http_server, EventHook(), None)
    with pytest.raises(ValueError, match="Invalid value NaN") as raised:
        s.get("/echo", timeout=float("nan"))
    assert not isinstance(raised.value, requests.exceptions.InvalidHeader)
