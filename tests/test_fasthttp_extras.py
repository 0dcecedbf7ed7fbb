"""What locust_rs.FastHttpSession offers beyond the contract with Locust: history, elapsed, cookies view, pools."""

import locust  # noqa: F401,I001 - monkey-patches first

from datetime import timedelta


import locust_rs
from sessions import recording_session


def test_history_lists_the_redirects_followed(http_server):
    session, events = recording_session(http_server)
    r = session.get("/redirect/2")
    assert r.status_code == 200
    assert [(h.status_code, h.url.removeprefix(http_server)) for h in r.history] == [
        (302, "/redirect/2"),
        (302, "/redirect/1"),
    ]
    assert r.history[0].headers["location"] == "/redirect/1"
    assert r.url == f"{http_server}/echo"
    assert events[-1]["url"] == f"{http_server}/redirect/2"


def test_elapsed_is_the_rust_measured_response_time(http_server):
    session, events = recording_session(http_server)
    r = session.get("/slow?delay=0.2")
    assert isinstance(r.elapsed, timedelta)
    assert 0.19 <= r.elapsed.total_seconds() < 2
    # timedelta keeps microseconds
    assert abs(r.elapsed.total_seconds() * 1000 - events[-1]["response_time"]) < 0.001


def test_cookiejar_shows_the_cookies_the_engine_holds(http_server):
    session, _ = recording_session(http_server)
    session.get("/cookies/set?flavour=oatmeal")
    assert {c.name: c.value for c in session.cookiejar} == {"flavour": "oatmeal"}
    session.cookiejar.clear()
    assert list(session.cookiejar) == []
    assert session.get("/cookies").json()["cookies"] == {}


def test_users_of_one_connection_pool_share_connections(http_server):
    pool = locust_rs.ConnectionPool(concurrency=4)
    a, _ = recording_session(http_server, client_pool=pool)
    b, _ = recording_session(http_server, client_pool=pool)
    a.get("/bytes/1")
    b.get("/bytes/1")
    # b reused the connection a left behind.
    assert pool.idle_connections() == 1


def test_worker_threads_are_configurable():
    assert locust_rs.configure() >= 1


def test_a_cookie_set_on_the_jar_is_sent(http_server):
    from requests.cookies import create_cookie

    session, _ = recording_session(http_server)
    session.cookiejar.set_cookie(create_cookie("session", "abc123", domain="127.0.0.1", path="/"))
    assert session.get("/cookies").json()["cookies"] == {"session": "abc123"}
    session.get("/cookies/set?other=1")
    session.cookiejar.clear(name="session")
    assert session.get("/cookies").json()["cookies"] == {"other": "1"}


def test_a_url_too_long_for_hyper_is_a_clear_failure(http_server):
    # Locust sends any length; hyper's URI type holds at most 65,534 bytes (docs/compatibility.md).
    session, events = recording_session(http_server)
    assert session.get("/echo?x=" + "a" * 60_000).status_code == 200
    r = session.get("/echo?x=" + "a" * 100_000)
    assert r.status_code == 0
    assert isinstance(r.error, ValueError) and "URL too long" in str(r.error) and "65534" in str(r.error)
    assert events[-1]["exception"] is r.error
