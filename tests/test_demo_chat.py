"""Route-level tests of the demo server's chat, conversation and admin routes, its stores' caps, and fault injection."""

import http.client
import time
import uuid

import pytest
import requests

from locust_rs import demo

pytestmark = pytest.mark.timeout(30)

ADMIN = ("admin@voiceassist.local", "admin12345")
T = 5  # per-request timeout, seconds
FAST = {"register_per_minute": 0, "login_attempts_per_minute": 0, "password_hash_iterations": 10}


@pytest.fixture(scope="module")
def server():
    with demo.start(chat_latency_ms=0, **FAST) as s:
        yield s


def call(server, method, path, token=None, json=None, params=None, data=None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.request(method, server.url + path, json=json, params=params, data=data, headers=headers, timeout=T)


def user_token(server):
    addr = f"user-{uuid.uuid4().hex[:12]}@example.com"
    r = call(server, "POST", "/api/auth/register", json={"email": addr, "password": "password123"})
    assert r.status_code == 201, r.text
    r = call(server, "POST", "/api/auth/login", json={"email": addr, "password": "password123"})
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


def admin_token(server):
    r = call(server, "POST", "/api/auth/login", json={"email": ADMIN[0], "password": ADMIN[1]})
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


def ask(server, token, query, **extra):
    return call(server, "POST", "/api/chat/query", token, json={"query": query, **extra})


# --- chat -------------------------------------------------------------------------------------


def test_a_matching_query_gets_citations(server):
    token = user_token(server)
    r = ask(server, token, "How much does the Team plan cost?")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["answer"]
    assert body["conversation_id"]
    assert body["citations"], body
    first = body["citations"][0]
    assert first["id"] == "kb-003"
    assert first["title"] and first["snippet"]
    assert all({"id", "title", "snippet"} <= set(c) for c in body["citations"])


def test_a_query_matching_nothing_gets_no_citations(server):
    token = user_token(server)
    r = ask(server, token, "zebra quantum lasagna")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["citations"] == []
    assert body["answer"]
    assert body["conversation_id"]


def test_answers_are_deterministic(server):
    a, b = user_token(server), user_token(server)
    q = "Which integrations and security certifications do you have?"
    first = ask(server, a, q).json()
    second = ask(server, b, q).json()
    assert first["answer"] == second["answer"]
    assert first["citations"] == second["citations"]
    assert first["conversation_id"] != second["conversation_id"]


def test_chat_needs_a_token(server):
    r = call(server, "POST", "/api/chat/query", json={"query": "pricing"})
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"
    r = call(server, "POST", "/api/chat/query", "not-a-token", json={"query": "pricing"})
    assert r.status_code == 401


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "query"),
        ({"query": ""}, "query"),
        ({"query": "   "}, "query"),
        ({"query": 5}, "query"),
        ({"query": "x" * 4001}, "query"),
        ({"query": "pricing", "conversation_id": 7}, "conversation_id"),
    ],
)
def test_a_bad_chat_body_is_a_422_naming_the_field(server, body, field):
    token = user_token(server)
    r = call(server, "POST", "/api/chat/query", token, json=body)
    assert r.status_code == 422, r.text
    assert r.json()["field"] == field


def test_a_non_object_chat_body_is_a_422(server):
    token = user_token(server)
    r = call(server, "POST", "/api/chat/query", token, data=b"[1, 2]")
    assert r.status_code == 422
    assert r.json()["field"] == "body"


def test_an_unknown_or_foreign_conversation_is_a_404(server):
    alice, bob = user_token(server), user_token(server)
    r = ask(server, alice, "pricing", conversation_id="conv_nope")
    assert r.status_code == 404
    assert r.json()["error"] == "not_found"
    conv = ask(server, alice, "pricing").json()["conversation_id"]
    assert ask(server, bob, "pricing", conversation_id=conv).status_code == 404
    assert call(server, "GET", f"/api/conversations/{conv}/messages", bob).status_code == 404
    assert call(server, "GET", "/api/conversations/conv_nope/messages", alice).status_code == 404


# --- conversations ----------------------------------------------------------------------------


def test_conversation_flow(server):
    token = user_token(server)
    r = call(server, "POST", "/api/conversations", token, json={"title": "Billing questions"})
    assert r.status_code == 201, r.text
    conv = r.json()
    assert conv["title"] == "Billing questions"
    assert conv["message_count"] == 0
    cid = conv["id"]
    r1 = ask(server, token, "What does it cost?", conversation_id=cid)
    r2 = ask(server, token, "Is there a free trial?", conversation_id=cid)
    assert r1.status_code == r2.status_code == 200
    assert r1.json()["conversation_id"] == r2.json()["conversation_id"] == cid
    r = call(server, "GET", f"/api/conversations/{cid}/messages", token)
    assert r.status_code == 200
    body = r.json()
    assert body["conversation_id"] == cid
    assert body["total"] == 4
    msgs = body["items"]
    assert [m["role"] for m in msgs] == ["user", "assistant", "user", "assistant"]
    assert msgs[0]["content"] == "What does it cost?"
    assert msgs[1]["content"] == r1.json()["answer"]
    assert msgs[1]["citations"] == r1.json()["citations"]
    assert msgs[3]["id"] == r2.json()["message_id"]
    listed = call(server, "GET", "/api/conversations", token).json()
    assert listed["total"] == 1
    assert listed["items"][0]["id"] == cid
    assert listed["items"][0]["message_count"] == 4


def test_a_query_without_conversation_starts_one(server):
    token = user_token(server)
    cid = ask(server, token, "Tell me about microphone setup").json()["conversation_id"]
    items = call(server, "GET", "/api/conversations", token).json()["items"]
    assert [c["id"] for c in items] == [cid]
    assert items[0]["title"] == "Tell me about microphone setup"


def test_create_conversation_without_body_and_bad_title(server):
    token = user_token(server)
    r = call(server, "POST", "/api/conversations", token)
    assert r.status_code == 201
    assert r.json()["title"] == "New conversation"
    r = call(server, "POST", "/api/conversations", token, json={"title": 3})
    assert r.status_code == 422
    assert r.json()["field"] == "title"
    assert call(server, "POST", "/api/conversations").status_code == 401
    assert call(server, "GET", "/api/conversations").status_code == 401


def test_conversations_are_paginated_newest_first(server):
    token = user_token(server)
    ids = [call(server, "POST", "/api/conversations", token, json={"title": f"c{i}"}).json()["id"] for i in range(5)]
    r = call(server, "GET", "/api/conversations", token, params={"page": 1, "page_size": 2})
    body = r.json()
    assert (body["total"], body["page"], body["page_size"], body["pages"]) == (5, 1, 2, 3)
    assert [c["id"] for c in body["items"]] == ids[::-1][:2]
    last = call(server, "GET", "/api/conversations", token, params={"page": 3, "page_size": 2}).json()
    assert [c["id"] for c in last["items"]] == [ids[0]]
    beyond = call(server, "GET", "/api/conversations", token, params={"page": 9, "page_size": 2}).json()
    assert beyond["items"] == []
    for params, field in [({"page": 0}, "page"), ({"page_size": 101}, "page_size"), ({"page": "x"}, "page")]:
        r = call(server, "GET", "/api/conversations", token, params=params)
        assert r.status_code == 422
        assert r.json()["field"] == field


def test_messages_are_paginated(server):
    token = user_token(server)
    cid = ask(server, token, "pricing").json()["conversation_id"]
    ask(server, token, "security", conversation_id=cid)
    r = call(server, "GET", f"/api/conversations/{cid}/messages", token, params={"page": 2, "page_size": 3})
    body = r.json()
    assert body["total"] == 4
    assert [m["role"] for m in body["items"]] == ["assistant"]


# --- admin ------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/admin/dashboard", "/api/admin/users"])
def test_admin_routes_are_401_403_200(server, path):
    assert call(server, "GET", path).status_code == 401
    r = call(server, "GET", path, user_token(server))
    assert r.status_code == 403
    assert r.json()["error"] == "forbidden"
    assert call(server, "GET", path, admin_token(server)).status_code == 200


def test_dashboard_counts(server):
    token = user_token(server)
    admin = admin_token(server)
    before = call(server, "GET", "/api/admin/dashboard", admin).json()
    ask(server, token, "pricing")
    after = call(server, "GET", "/api/admin/dashboard", admin).json()
    assert after["queries"] == before["queries"] + 1
    assert after["conversations"] == before["conversations"] + 1
    assert after["messages"] == before["messages"] + 2
    assert after["users"] >= 2
    assert after["uptime_seconds"] >= 0


def test_admin_users_are_paginated():
    with demo.start(chat_latency_ms=0, **FAST) as s:
        for _ in range(4):
            user_token(s)
        admin = admin_token(s)
        body = call(s, "GET", "/api/admin/users", admin, params={"page": 1, "page_size": 2}).json()
        assert (body["total"], body["pages"], len(body["items"])) == (5, 3, 2)
        assert body["items"][0]["email"] == ADMIN[0]
        assert "password" not in str(body)
        last = call(s, "GET", "/api/admin/users", admin, params={"page": 3, "page_size": 2}).json()
        assert len(last["items"]) == 1
        r = call(s, "GET", "/api/admin/users", admin, params={"page_size": 0})
        assert r.status_code == 422


# --- caps -------------------------------------------------------------------------------------


def test_stores_are_capped():
    caps = {"max_conversations_per_user": 2, "max_conversations": 3, "max_messages_per_conversation": 4}
    with demo.start(chat_latency_ms=0, **caps, **FAST) as s:
        a, b = user_token(s), user_token(s)
        a_ids = [ask(s, a, f"pricing {i}").json()["conversation_id"] for i in range(3)]
        listed = call(s, "GET", "/api/conversations", a).json()
        assert listed["total"] == 2
        assert [c["id"] for c in listed["items"]] == a_ids[:0:-1]
        assert ask(s, a, "pricing", conversation_id=a_ids[0]).status_code == 404
        for _ in range(2):
            ask(s, b, "security")  # total cap 3: evicts a's oldest remaining
        assert call(s, "GET", "/api/conversations", a).json()["total"] == 1
        for i in range(3):
            assert ask(s, a, f"question {i}", conversation_id=a_ids[2]).status_code == 200
        msgs = call(s, "GET", f"/api/conversations/{a_ids[2]}/messages", a).json()
        assert msgs["total"] == 4
        assert msgs["items"][0]["content"] == "question 1"
        dash = call(s, "GET", "/api/admin/dashboard", admin_token(s)).json()
        assert dash["conversations"] == 3
        assert dash["messages"] == 4 + 2 + 2


@pytest.mark.parametrize(
    "option",
    [
        {"max_conversations": 0},
        {"max_messages_per_conversation": 0},
        {"error_rate": 1.5},
        {"drop_rate": -0.1},
        {"latency_scale": -1.0},
    ],
)
def test_useless_options_are_refused_by_name(option):
    with pytest.raises(ValueError, match=next(iter(option))):
        demo.start(**option)


# --- fault injection --------------------------------------------------------------------------


def test_error_rate_1_answers_500_except_health():
    with demo.start(chat_latency_ms=0, error_rate=1.0, **FAST) as s:
        assert call(s, "GET", "/health").status_code == 200
        for method, path in [("POST", "/api/chat/query"), ("GET", "/api/conversations"), ("POST", "/api/auth/login")]:
            r = call(s, method, path, json={"query": "pricing"})
            assert r.status_code == 500
            assert r.json()["error"] == "internal_error"
            assert "injected" in r.json()["message"]


def test_error_rate_0_changes_nothing(server):
    token = user_token(server)  # the module server has error_rate 0
    for _ in range(20):
        assert ask(server, token, "pricing").status_code == 200


def test_drop_rate_1_breaks_the_chat_body_mid_way():
    with demo.start(chat_latency_ms=0, drop_rate=1.0, **FAST) as s:
        token = user_token(s)  # other routes are not dropped
        for _ in range(3):
            with pytest.raises(requests.exceptions.ChunkedEncodingError, match="IncompleteRead"):
                ask(s, token, "pricing")
        # on the wire: a 200 head with the full Content-Length, then half the body, then EOF
        conn = http.client.HTTPConnection(s.host, s.port, timeout=T)
        try:
            conn.request(
                "POST",
                "/api/chat/query",
                body=b'{"query": "pricing"}',
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            )
            resp = conn.getresponse()
            assert resp.status == 200
            length = int(resp.headers["content-length"])
            with pytest.raises(http.client.IncompleteRead) as e:
                resp.read()
            assert 0 < len(e.value.partial) < length
        finally:
            conn.close()
        assert call(s, "GET", "/api/conversations", token).status_code == 200


def test_drop_rate_0_changes_nothing(server):
    token = user_token(server)
    for _ in range(10):
        r = ask(server, token, "pricing")
        assert r.status_code == 200
        assert r.json()["citations"]


def timed_chat(s, token, n=3):
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        assert ask(s, token, "pricing").status_code == 200
        out.append(time.perf_counter() - t0)
    return out


def test_chat_latency_is_applied_and_scaled():
    with demo.start(chat_latency_ms=150, chat_latency_jitter_ms=0, **FAST) as s:
        token = user_token(s)
        assert min(timed_chat(s, token)) >= 0.145
    with demo.start(chat_latency_ms=100, chat_latency_jitter_ms=0, latency_scale=3.0, **FAST) as s:
        token = user_token(s)
        assert min(timed_chat(s, token)) >= 0.295
    with demo.start(chat_latency_ms=100, chat_latency_jitter_ms=0, latency_scale=0.0, **FAST) as s:
        token = user_token(s)
        assert min(timed_chat(s, token)) < 0.09


def test_zero_chat_latency_is_fast(server):
    token = user_token(server)
    assert min(timed_chat(server, token, n=5)) < 0.05


def test_jitter_spreads_the_latency():
    with demo.start(chat_latency_ms=100, chat_latency_jitter_ms=80, **FAST) as s:
        token = user_token(s)
        r = [ask(s, token, "pricing").json()["latency_ms"] for _ in range(8)]
        assert all(20 <= x <= 180 for x in r), r
        assert len(set(r)) > 1, r


def test_the_cli_knows_the_new_options():
    args = demo.settings_from_args(
        ["--error-rate", "0.5", "--drop-rate", "0", "--chat-latency-ms", "0", "--latency-scale", "2"]
    )
    assert (args.error_rate, args.drop_rate, args.chat_latency_ms, args.latency_scale) == (0.5, 0.0, 0, 2.0)
    defaults = demo.DemoServer.default_options()
    assert defaults["chat_latency_ms"] == 20 and defaults["error_rate"] == 0.0
