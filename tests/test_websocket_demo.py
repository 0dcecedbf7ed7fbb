"""WebSocketUser against the demo server's realtime endpoint (`WS /api/realtime/ws`): streamed chat, voice mode,
ping, error frames, an oversize frame (1009) and a refused handshake (401), through our client end to end."""

import locust  # noqa: F401,I001 - monkey-patches first

import json

import pytest
from locust.env import Environment

from locust_rs import demo
from locust_rs.fasthttp import FastHttpSession
from locust_rs.websocket import MessageTooBig, WebSocketClosed, WebSocketHandshakeError, WebSocketUser

pytestmark = pytest.mark.timeout(60)

ADMIN = {"email": "admin@voiceassist.local", "password": "admin12345"}
ANSWER = ("chunk", "message_complete")


@pytest.fixture(scope="module")
def server():
    with demo.start(
        chat_latency_ms=0,
        register_per_minute=0,
        login_attempts_per_minute=0,
        password_hash_iterations=10,
        ws_max_message_size=4096,
    ) as s:
        yield s


@pytest.fixture(scope="module")
def token(server):
    session = FastHttpSession(server.url, request_event=locust.events.request, user=None)
    r = session.post("/api/auth/login", json=ADMIN)
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


@pytest.fixture
def user(server):
    cls = type("Voice", (WebSocketUser,), {"host": server.url})
    env = Environment(user_classes=[cls])
    events = []
    env.events.request.add_listener(lambda **kw: events.append(kw))
    u = cls(env)
    u.events = events
    yield u
    u.close_websockets(wait=True)


def test_a_chat_message_streams_chunks_then_message_complete_with_citations(user, token):
    ws = user.connect(f"/api/realtime/ws?token={token}")
    reply = ws.request(
        {"type": "message", "content": "What is a normal resting heart rate?", "id": "q1"},
        reply=ANSWER,
        until="message_complete",
        name="ws: message",
    )
    frames = [json.loads(m) for m in reply.messages]
    assert [f["type"] for f in frames[:-1]] == ["chunk"] * (len(frames) - 1) and len(frames) >= 2
    last = reply.json()
    assert last["type"] == "message_complete" and last["id"] == "q1"
    assert "".join(f["content"] for f in frames[:-1]) == last["answer"]
    assert last["citations"], last  # the question matches the knowledge base
    assert 0 < reply.time_to_first_frame <= reply.response_time
    kinds = [(e["request_type"], e["name"], e["exception"]) for e in user.events]
    assert kinds == [("WS", "/api/realtime/ws", None), ("WSFF", "ws: message", None), ("WSRT", "ws: message", None)]
    assert user.events[2]["response_length"] == reply.response_length == sum(len(m.encode()) for m in reply.messages)
    # a question off the knowledge base gets an answer without citations
    off = ws.request({"type": "message", "content": "zzz qqq xyzzy"}, reply=ANSWER, until="message_complete")
    assert off.json()["citations"] == []


def test_voice_mode_gets_a_transcript_then_the_answer(user, token):
    ws = user.connect(f"/api/realtime/ws?token={token}")
    ws.send_json({"type": "audio_start", "sample_rate": 16000})
    for _ in range(8):
        ws.send(b"\x00" * 4000)  # 32000 bytes: the demo's phrase 0, a question it can cite
    reply = ws.request({"type": "audio_end"}, reply=("transcript", *ANSWER), until="message_complete", name="ws: voice")
    frames = [json.loads(m) for m in reply.messages]
    assert frames[0]["type"] == "transcript" and frames[0]["audio_bytes"] == 32000 and frames[0]["text"]
    assert frames[-1]["type"] == "message_complete"


def test_ping_gets_pong_and_bad_json_an_error_frame_on_a_usable_connection(user, token):
    ws = user.connect(f"/api/realtime/ws?token={token}")
    pong = ws.request({"type": "ping", "id": 7}, reply="pong", name="ws: ping")
    assert pong.json()["id"] == 7
    error = ws.request("{not json", reply="error")
    assert error.json()["error"] == "invalid_json"
    assert ws.request({"type": "ping"}, reply="pong").json()["type"] == "pong"


def test_an_oversize_frame_is_closed_with_1009_and_reported(user, token):
    ws = user.connect(f"/api/realtime/ws?token={token}")
    ws.send("x" * 5000)  # over the server's 4096
    with pytest.raises(WebSocketClosed) as e:
        ws.recv(timeout=10)
    assert e.value.code == 1009
    assert "1009" in str(e.value)
    assert any(ev["request_type"] == "WSRECV" and isinstance(ev["exception"], WebSocketClosed) for ev in user.events)


def test_our_own_max_message_size_fails_a_too_long_answer(server, token):
    cls = type("Small", (WebSocketUser,), {"host": server.url, "ws_max_message_size": 16})
    u = cls(Environment(user_classes=[cls]))
    try:
        ws = u.connect(f"/api/realtime/ws?token={token}")
        with pytest.raises(MessageTooBig):
            ws.request({"type": "ping", "padding": "p" * 64}, reply="pong", timeout=10)
    finally:
        u.close_websockets(wait=True)


@pytest.mark.parametrize("query", ["?token=not-a-token", ""])
def test_a_bad_or_missing_token_is_refused_at_the_handshake(user, query):
    with pytest.raises(WebSocketHandshakeError) as e:
        user.connect(f"/api/realtime/ws{query}")
    assert e.value.status == 401
    assert "401" in str(e.value)
    (event,) = user.events
    assert event["request_type"] == "WS" and event["exception"] is e.value
