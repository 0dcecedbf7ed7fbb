"""The demo server's chat options through the program: refused settings, the command line, and drop_rate on the wire.

The chat, conversation and admin routes are tested in process, in crates/voiceassist-demo/tests/ (chat.rs, admin.rs,
server.rs). What stays here needs the program or a socket: `demo.start()` refusing a setting by name, the options on
its command line, and what a client reads off the connection when drop_rate cuts an answer (the in-process test sees
the body fail half-way; this one checks the server flushes the head and that half before closing the connection).
"""

import http.client
import uuid

import pytest
import requests

from locust_rs import demo

pytestmark = pytest.mark.timeout(30)

T = 5  # per-request timeout, seconds
FAST = {"register_per_minute": 0, "login_attempts_per_minute": 0, "password_hash_iterations": 10}


def user_token(server):
    addr = f"user-{uuid.uuid4().hex[:12]}@example.com"
    r = requests.post(server.url + "/api/auth/register", json={"email": addr, "password": "password123"}, timeout=T)
    assert r.status_code == 201, r.text
    r = requests.post(server.url + "/api/auth/login", json={"email": addr, "password": "password123"}, timeout=T)
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


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


def test_drop_rate_1_truncates_the_answer_on_the_wire():
    with demo.start(chat_latency_ms=0, drop_rate=1.0, **FAST) as s:
        token = user_token(s)
        with pytest.raises(requests.exceptions.ChunkedEncodingError, match="IncompleteRead"):
            requests.post(
                s.url + "/api/chat/query",
                json={"query": "pricing"},
                headers={"Authorization": f"Bearer {token}"},
                timeout=T,
            )
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


def test_the_cli_knows_the_new_options():
    args = demo.settings_from_args(
        ["--error-rate", "0.5", "--drop-rate", "0", "--chat-latency-ms", "0", "--latency-scale", "2"]
    )
    assert (args.error_rate, args.drop_rate, args.chat_latency_ms, args.latency_scale) == (0.5, 0.0, 0, 2.0)
    defaults = demo.DemoServer.default_options()
    assert defaults["chat_latency_ms"] == 20 and defaults["error_rate"] == 0.0
