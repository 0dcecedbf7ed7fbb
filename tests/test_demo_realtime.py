"""The demo server's realtime WebSocket, ``WS /api/realtime/ws``, through a real WebSocket client (websocket-client).

Covers the frame protocol of docs/demo-server.md ("Realtime WebSocket"): streamed chat answers, ping/pong, voice mode,
error frames, the 1009 close of an oversize message, the handshake's 401/503, token revocation mid-session, fault
injection, the connection cap, the server's stop with sockets open, and a bounded concurrency run.
"""

import json
import time
import uuid
from contextlib import closing

import pytest
import requests
import websocket
from gevent import joinall, spawn
from gevent.event import Event
from websocket import ABNF

from locust_rs import demo

pytestmark = pytest.mark.timeout(60)

ADMIN = ("admin@voiceassist.local", "admin12345")
T = 5  # per-call timeout, seconds
FAST = {"register_per_minute": 0, "login_attempts_per_minute": 0, "password_hash_iterations": 10}
# what the voice mode "hears" for n audio bytes: TRANSCRIPTS[n % 8] (crates/voiceassist-demo/src/realtime.rs)
TRANSCRIPTS = [
    "How much does the Team plan cost?",
    "How do I set up my microphone for voice mode?",
    "Which languages do you support?",
    "Is my data encrypted?",
    "Tell me a joke",
    "Can VoiceAssist integrate with Slack?",
    "How do I upload a document to the knowledge base?",
    "What will the weather be like tomorrow?",
]


@pytest.fixture(scope="module")
def server():
    with demo.start(chat_latency_ms=0, **FAST) as s:
        yield s


@pytest.fixture(scope="module")
def token(server):
    return login(server)


def login(server, email=None, password="password123"):
    if email is None:
        email = f"rt-{uuid.uuid4().hex[:12]}@example.com"
        r = requests.post(server.url + "/api/auth/register", json={"email": email, "password": password}, timeout=T)
        assert r.status_code == 201, r.text
    r = requests.post(server.url + "/api/auth/login", json={"email": email, "password": password}, timeout=T)
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


def ws_url(server, query=""):
    return f"ws://{server.host}:{server.port}/api/realtime/ws{query}"


def connect(server, token, **kwargs):
    return websocket.create_connection(ws_url(server, f"?token={token}"), timeout=T, **kwargs)


def refused(server, query="", header=None):
    """The handshake's HTTP error: (status, headers, JSON body)."""
    with pytest.raises(websocket.WebSocketBadStatusException) as info:
        websocket.create_connection(ws_url(server, query), timeout=T, header=header)
    e = info.value
    return e.status_code, e.resp_headers, json.loads(e.resp_body)


def next_frame(ws):
    """(opcode, payload bytes) of the next frame, control frames included."""
    opcode, frame = ws.recv_data_frame(True)
    return opcode, frame.data


def recv_json(ws):
    opcode, data = next_frame(ws)
    if opcode == ABNF.OPCODE_CLOSE:
        raise AssertionError(f"closed instead: {close_code(data)}")
    assert opcode == ABNF.OPCODE_TEXT, (opcode, data)
    return json.loads(data)


def close_code(data):
    return int.from_bytes(data[:2], "big"), data[2:].decode()


def read_close(ws):
    """Reads up to the server's close frame; returns (code, reason, JSON frames received before it)."""
    before = []
    while True:
        opcode, data = next_frame(ws)
        if opcode == ABNF.OPCODE_CLOSE:
            return (*close_code(data), before)
        if opcode == ABNF.OPCODE_TEXT:
            before.append(json.loads(data))


def send(ws, **frame):
    ws.send(json.dumps(frame))


def read_answer(ws):
    """The chunk frames and the message_complete of one answer."""
    chunks = []
    while True:
        f = recv_json(ws)
        if f["type"] == "message_complete":
            return chunks, f
        assert f["type"] == "chunk", f
        chunks.append(f)


def ask(ws, content, **extra):
    send(ws, type="message", content=content, **extra)
    return read_answer(ws)


def check_stream(chunks, complete):
    assert len(chunks) >= 2, chunks
    assert [c["index"] for c in chunks] == list(range(len(chunks)))
    assert "".join(c["content"] for c in chunks) == complete["answer"]
    assert complete["chunks"] == len(chunks)
    for c in chunks:
        assert c["conversation_id"] == complete["conversation_id"]
        assert c["message_id"] == complete["message_id"]


def http_answer(server, token, query):
    r = requests.post(
        server.url + "/api/chat/query", json={"query": query}, headers={"Authorization": f"Bearer {token}"}, timeout=T
    )
    assert r.status_code == 200, r.text
    return r.json()


# --- chat streaming -------------------------------------------------------------------------------------------------


def test_a_message_streams_chunks_then_message_complete_with_the_http_chats_citations(server, token):
    with closing(connect(server, token)) as ws:
        chunks, complete = ask(ws, "How much does the Team plan cost?")
    check_stream(chunks, complete)
    assert complete["citations"], complete
    assert complete["citations"][0]["id"] == "kb-003"
    assert complete["query"] == "How much does the Team plan cost?"
    assert complete["latency_ms"] == 0
    same = http_answer(server, token, "How much does the Team plan cost?")
    assert complete["answer"] == same["answer"]
    assert complete["citations"] == same["citations"]
    # recorded in the conversation store like an HTTP chat query
    r = requests.get(
        server.url + f"/api/conversations/{complete['conversation_id']}/messages",
        headers={"Authorization": f"Bearer {token}"},
        timeout=T,
    )
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert [m["role"] for m in items] == ["user", "assistant"]
    assert items[1]["id"] == complete["message_id"]
    assert items[1]["content"] == complete["answer"]
    assert items[1]["citations"] == complete["citations"]


def test_a_message_matching_nothing_gets_no_citations(server, token):
    with closing(connect(server, token)) as ws:
        chunks, complete = ask(ws, "zebra quantum lasagna")
    check_stream(chunks, complete)
    assert complete["citations"] == []
    assert complete["answer"] == http_answer(server, token, "zebra quantum lasagna")["answer"]


def test_replies_echo_the_request_id_and_a_session_keeps_its_conversation(server, token):
    with closing(connect(server, token)) as ws:
        chunks, first = ask(ws, "Which languages do you support?", id="q-1")
        assert {c["id"] for c in chunks} == {"q-1"} and first["id"] == "q-1"
        _, second = ask(ws, "And integrations?", id=2)
        assert second["id"] == 2
        assert second["conversation_id"] == first["conversation_id"]
        # a new conversation by id, then back to it
        r = requests.post(server.url + "/api/conversations", headers={"Authorization": f"Bearer {token}"}, timeout=T)
        other = r.json()["id"]
        _, third = ask(ws, "security?", conversation_id=other)
        assert third["conversation_id"] == other
        _, fourth = ask(ws, "pricing?")
        assert fourth["conversation_id"] == other
        # someone else's or an unknown conversation: an error frame, the socket stays usable
        send(ws, type="message", content="pricing?", conversation_id="conv_nope", id="bad")
        err = recv_json(ws)
        assert (err["type"], err["error"], err["field"], err["id"]) == ("error", "not_found", "conversation_id", "bad")
        _, fifth = ask(ws, "pricing?")
        assert fifth["conversation_id"] == other


def test_the_chat_latency_is_spread_over_the_chunks_and_scaled():
    with demo.start(chat_latency_ms=600, chat_latency_jitter_ms=0, **FAST) as server:
        token = login(server)
        with closing(connect(server, token)) as ws:
            started = time.monotonic()
            send(ws, type="message", content="pricing")
            first = recv_json(ws)
            first_at = time.monotonic() - started
            chunks, complete = read_answer(ws)
            total = time.monotonic() - started
        n = complete["chunks"]
        assert complete["latency_ms"] == 600
        assert first["index"] == 0 and len(chunks) == n - 1
        # each chunk waits its share: the first about 600/n ms, the whole answer about 600 ms
        assert first_at >= 0.6 / n - 0.02, (first_at, n)
        assert first_at < 0.6 * 0.75, (first_at, n)
        assert total >= 0.59, total
    with demo.start(chat_latency_ms=1000, chat_latency_jitter_ms=0, latency_scale=0.0, **FAST) as server:
        with closing(connect(server, login(server))) as ws:
            started = time.monotonic()
            _, complete = ask(ws, "pricing")
        assert complete["latency_ms"] == 0
        assert time.monotonic() - started < 0.5  # unscaled it would be 1 s


# --- ping / pong ----------------------------------------------------------------------------------------------------


def test_ping_gets_a_pong_echoing_its_fields(server, token):
    with closing(connect(server, token)) as ws:
        send(ws, type="ping", id=42, timestamp=1234.5)
        pong = recv_json(ws)
        assert pong["type"] == "pong"
        assert (pong["id"], pong["timestamp"]) == (42, 1234.5)
        assert isinstance(pong["server_time"], int) and pong["server_time"] > 1_600_000_000_000
        send(ws, type="ping")
        assert recv_json(ws)["type"] == "pong"


def test_protocol_level_pings_get_pong_frames(server, token):
    with closing(connect(server, token)) as ws:
        ws.ping(b"are-you-there")
        opcode, data = next_frame(ws)
        assert (opcode, data) == (ABNF.OPCODE_PONG, b"are-you-there")


# --- errors keep the connection open --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, error, field",
    [
        ("{not json", "invalid_json", None),
        ("", "invalid_json", None),
        ("[1, 2]", "invalid_message", None),
        ('"message"', "invalid_message", None),
        ('{"content": "hi"}', "invalid_message", "type"),
        ('{"type": 7}', "invalid_message", "type"),
        ('{"type": "dance"}', "unknown_type", "type"),
        ('{"type": "message"}', "validation_error", "content"),
        ('{"type": "message", "content": 5}', "validation_error", "content"),
        ('{"type": "message", "content": "   "}', "validation_error", "content"),
        ('{"type": "message", "content": "hi", "conversation_id": 3}', "validation_error", "conversation_id"),
        ('{"type": "audio_end"}', "audio_not_started", None),
        ('{"type": "audio_start", "sample_rate": 3}', "validation_error", "sample_rate"),
    ],
)
def test_a_bad_frame_gets_an_error_frame_and_the_connection_stays_usable(server, token, raw, error, field):
    with closing(connect(server, token)) as ws:
        ws.send(raw)
        err = recv_json(ws)
        assert err["type"] == "error"
        assert err["error"] == error, err
        assert err["detail"]
        assert err.get("field") == field
        send(ws, type="ping", id="after")
        pong = recv_json(ws)
        assert (pong["type"], pong["id"]) == ("pong", "after")
        _, complete = ask(ws, "pricing")
        assert complete["citations"]


def test_a_too_long_message_content_is_refused_by_field(server, token):
    with closing(connect(server, token)) as ws:
        send(ws, type="message", content="x" * 4001, id=1)
        err = recv_json(ws)
        assert (err["error"], err["field"], err["id"]) == ("validation_error", "content", 1)
        assert "4000" in err["detail"]


# --- voice mode -----------------------------------------------------------------------------------------------------


def speak(ws, sizes, **start):
    send(ws, type="audio_start", **start)
    for n in sizes:
        ws.send_binary(b"\x01\x02" * (n // 2) + b"\x00" * (n % 2))
    send(ws, type="audio_end")
    return recv_json(ws)


def test_voice_mode_transcribes_then_answers(server, token):
    with closing(connect(server, token)) as ws:
        sizes = [3200] * 10  # 32000 bytes: one second of 16 kHz 16-bit mono; 32000 % 8 == 0
        transcript = speak(ws, sizes, sample_rate=16000, id="utt-1")
        assert transcript == {
            "type": "transcript",
            "text": TRANSCRIPTS[0],
            "audio_bytes": 32000,
            "duration_ms": 1000,
            "final": True,
            "id": "utt-1",
        }
        chunks, complete = read_answer(ws)
        check_stream(chunks, complete)
        assert complete["query"] == TRANSCRIPTS[0]
        assert complete["citations"][0]["id"] == "kb-003"
        assert complete["id"] == "utt-1"
        # 32004 bytes -> TRANSCRIPTS[4], which matches nothing
        transcript = speak(ws, [16000, 16004])
        assert transcript["text"] == TRANSCRIPTS[4]
        assert transcript["duration_ms"] == 1000
        _, complete = read_answer(ws)
        assert complete["query"] == TRANSCRIPTS[4]
        assert complete["citations"] == []
        # the same audio gives the same transcript and answer
        assert speak(ws, [32000])["text"] == TRANSCRIPTS[0]
        assert read_answer(ws)[1]["answer"] == http_answer(server, token, TRANSCRIPTS[0])["answer"]


def test_voice_mode_errors(server, token):
    with closing(connect(server, token)) as ws:
        ws.send_binary(b"\x00" * 100)
        err = recv_json(ws)
        assert (err["type"], err["error"]) == ("error", "unexpected_binary")
        send(ws, type="audio_start")
        send(ws, type="audio_start", id=9)
        err = recv_json(ws)
        assert (err["error"], err["id"]) == ("audio_already_started", 9)
        send(ws, type="audio_end")
        err = recv_json(ws)
        assert err["error"] == "empty_audio"
        # the utterance is closed: the next audio_end has nothing to end
        send(ws, type="audio_end")
        assert recv_json(ws)["error"] == "audio_not_started"
        # and voice works afterwards
        assert speak(ws, [8])["text"] == TRANSCRIPTS[0]
        read_answer(ws)


# --- oversize frames close with 1009 --------------------------------------------------------------------------------


def test_an_oversize_text_message_closes_with_1009(server, token):
    with closing(connect(server, token)) as ws:
        ws.send(json.dumps({"type": "message", "content": "x" * 100_000}))
        code, reason, before = read_close(ws)
    assert code == 1009, reason
    assert "65536" in reason
    assert before == []


def test_the_limit_is_configurable_and_exact():
    with demo.start(ws_max_message_size=1024, ws_max_audio_bytes=3000, **FAST) as server:
        token = login(server)
        with closing(connect(server, token)) as ws:
            frame = json.dumps({"type": "ping", "pad": ""})
            exact = json.dumps({"type": "ping", "pad": "p" * (1024 - len(frame))})
            assert len(exact) == 1024
            ws.send(exact)
            assert recv_json(ws)["type"] == "pong"
            ws.send_binary(b"\x00" * 1025)  # binary counts too, audio or not
            code, reason, _ = read_close(ws)
            assert code == 1009 and "1024" in reason
        with closing(connect(server, token)) as ws:
            ws.send(exact + " ")
            assert read_close(ws)[0] == 1009
        # the whole utterance is capped too: 3 x 1000 bytes pass, one more byte does not
        with closing(connect(server, token)) as ws:
            send(ws, type="audio_start")
            for _ in range(3):
                ws.send_binary(b"\x00" * 1000)
            send(ws, type="ping")
            assert recv_json(ws)["type"] == "pong"
            ws.send_binary(b"\x00")
            code, reason, _ = read_close(ws)
            assert code == 1009 and "ws_max_audio_bytes" in reason
        stats = server.realtime_stats()
        assert stats["closed_too_big"] == 3


def test_a_message_far_over_the_limit_is_refused_with_1009_too():
    # Over 4x the limit, tungstenite refuses the frame from its header and the server can no longer read the stream:
    # it sends the 1009 close frame and closes the socket with the rest of the frame unread (so the kernel resets the
    # connection, and websocket-client's automatic close reply may fail: read the raw frame instead).
    with demo.start(ws_max_message_size=1024, **FAST) as server:
        ws = connect(server, login(server))
        try:
            ws.send("x" * 20_000)
            frame = ws.recv_frame()
            assert frame.opcode == ABNF.OPCODE_CLOSE
            code, reason = close_code(frame.data)
            assert code == 1009 and "1024" in reason
        finally:
            ws.shutdown()
        assert wait_for(lambda: server.realtime_stats()["connections_open"] == 0)
        assert server.realtime_stats()["closed_too_big"] == 1


# --- the handshake --------------------------------------------------------------------------------------------------


def test_a_missing_or_bad_token_is_refused_at_the_handshake_with_401(server):
    status, headers, body = refused(server)
    assert status == 401
    assert body["error"] == "unauthorized" and "token" in body["message"]
    assert headers.get("www-authenticate") == "Bearer"
    for query in ["?token=", "?token=garbage", "?token=a.b.c"]:
        status, _, body = refused(server, query)
        assert status == 401, query
    status, _, _ = refused(server, header=["Authorization: Bearer garbage"])
    assert status == 401


def test_a_refresh_token_is_not_an_access_token(server):
    r = requests.post(server.url + "/api/auth/login", json={"email": ADMIN[0], "password": ADMIN[1]}, timeout=T)
    status, _, body = refused(server, f"?token={r.json()['refresh_token']}")
    assert status == 401 and body["message"] == "wrong kind of token"


def test_the_bearer_header_works_too(server, token):
    ws = websocket.create_connection(ws_url(server), timeout=T, header=[f"Authorization: Bearer {token}"])
    with closing(ws):
        send(ws, type="ping")
        assert recv_json(ws)["type"] == "pong"


def test_a_revoked_token_is_refused_and_closes_open_sessions_with_1008(server):
    token = login(server)
    with closing(connect(server, token)) as ws:
        send(ws, type="ping")
        assert recv_json(ws)["type"] == "pong"
        r = requests.post(server.url + "/api/auth/logout", headers={"Authorization": f"Bearer {token}"}, timeout=T)
        assert r.status_code == 204
        send(ws, type="ping")
        code, reason, before = read_close(ws)
        assert (code, reason, before) == (1008, "token revoked", [])
    status, _, body = refused(server, f"?token={token}")
    assert status == 401 and body["message"] == "token revoked"


def test_an_expired_token_is_refused_and_ends_its_session():
    with demo.start(access_token_ttl=1, **FAST) as server:
        token = login(server, *ADMIN)
        with closing(connect(server, token)) as ws:
            time.sleep(2.1)
            send(ws, type="ping")
            assert read_close(ws)[:2] == (1008, "token expired")
        status, _, body = refused(server, f"?token={token}")
        assert status == 401 and body["message"] == "token expired"


def test_a_plain_get_is_not_upgraded(server, token):
    r = requests.get(server.url + "/api/realtime/ws", params={"token": token}, timeout=T)
    assert r.status_code == 400, r.status_code
    assert r.json()["error"] == "upgrade_required" and "upgrade" in r.json()["message"]
    r = requests.get(server.url + "/api/realtime/ws", timeout=T)
    assert r.status_code == 401


def test_the_connection_cap_answers_503_at_the_handshake():
    with demo.start(ws_max_connections=2, **FAST) as server:
        token = login(server)
        a, b = connect(server, token), connect(server, token)
        status, headers, body = refused(server, f"?token={token}")
        assert status == 503 and headers.get("retry-after") == "1"
        assert "ws_max_connections" in body["message"]
        a.close()
        deadline = time.monotonic() + 5
        while server.realtime_stats()["connections_open"] > 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        with closing(connect(server, token)) as c:
            send(c, type="ping")
            assert recv_json(c)["type"] == "pong"
        b.close()
        assert server.realtime_stats()["connections_refused"] == 1


# --- fault injection ------------------------------------------------------------------------------------------------


def test_drop_rate_1_cuts_the_answer_without_a_close_frame():
    with demo.start(drop_rate=1.0, chat_latency_ms=0, **FAST) as server:
        with closing(connect(server, login(server))) as ws:
            send(ws, type="message", content="pricing")
            got = []
            with pytest.raises((websocket.WebSocketConnectionClosedException, ConnectionError)):
                while True:
                    opcode, data = next_frame(ws)
                    assert opcode == ABNF.OPCODE_TEXT, (opcode, data)  # never a close frame
                    got.append(json.loads(data))
        assert got and all(f["type"] == "chunk" for f in got)
        assert 1 <= len(got) < 4
        assert server.realtime_stats()["dropped"] == 1


def test_error_rate_1_fails_the_handshake_with_500():
    with demo.start(error_rate=1.0, **FAST) as server:
        status, _, body = refused(server, "?token=whatever")
        assert status == 500 and body["error"] == "internal_error"


# --- counters, stop, concurrency ------------------------------------------------------------------------------------


def wait_for(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_counters():
    with demo.start(chat_latency_ms=0, **FAST) as server:
        token = login(server)
        assert server.realtime_stats() == dict.fromkeys(server.realtime_stats(), 0)
        with closing(connect(server, token)) as ws:
            _, complete = ask(ws, "pricing")
            ws.send("{bad")
            recv_json(ws)
            assert speak(ws, [10])["type"] == "transcript"
            read_answer(ws)
            assert server.realtime_stats()["connections_open"] == 1
        assert wait_for(lambda: server.realtime_stats()["connections_open"] == 0)
        s = server.realtime_stats()
        assert s["connections_total"] == 1
        assert s["messages_in"] == 5  # message, bad JSON, audio_start, one audio frame, audio_end
        assert s["error_frames"] == 1 and s["answers"] == 2 and s["transcripts"] == 1
        # chunks + message_complete, twice, plus the error frame and the transcript
        assert s["messages_out"] >= 2 * 3 + 2
        assert s["bytes_in"] > 10 and s["bytes_out"] > len(complete["answer"])


def test_stop_closes_open_sockets_promptly_with_1001():
    server = demo.start(chat_latency_ms=20_000, chat_latency_jitter_ms=0, **FAST)
    token = login(server)
    idle = [connect(server, token) for _ in range(5)]
    busy = connect(server, token)
    send(busy, type="message", content="pricing")  # its first chunk is due in about 3 s
    deaf = connect(server, token)  # never answers the close frame
    assert wait_for(lambda: server.realtime_stats()["connections_open"] == 7)
    started = time.monotonic()
    assert server.stop(timeout=10) is True
    elapsed = time.monotonic() - started
    assert elapsed < 3.0, elapsed  # the 1 s close wait of the deaf client, not stop's 10 s
    assert not server.running
    for ws in [*idle, busy]:
        code, reason, before = read_close(ws)
        assert (code, reason, before) == (1001, "server shutting down", [])
        ws.close()
    assert server.realtime_stats()["connections_open"] == 0
    deaf.close()
    with pytest.raises((ConnectionError, websocket.WebSocketException, OSError)):
        connect(server, token)


def test_two_hundred_concurrent_connections():
    n = 200
    with demo.start(chat_latency_ms=50, chat_latency_jitter_ms=20, **FAST) as server:
        token = login(server)
        connected = Event()
        opened = []

        def user(i):
            ws = connect(server, token)
            try:
                opened.append(i)
                if len(opened) == n:
                    connected.set()
                assert connected.wait(30)
                send(ws, type="ping", id=i)
                assert recv_json(ws)["id"] == i
                chunks, complete = ask(ws, "pricing" if i % 2 else "zebra", id=i)
                check_stream(chunks, complete)
                assert bool(complete["citations"]) == bool(i % 2)
                return complete["id"]
            finally:
                ws.close()

        started = time.monotonic()
        jobs = [spawn(user, i) for i in range(n)]
        joinall(jobs, timeout=45)
        elapsed = time.monotonic() - started
        failed = [j.exception for j in jobs if not j.successful()]
        assert not failed, failed[:3]
        assert sorted(j.value for j in jobs) == list(range(n))
        assert elapsed < 45
        assert wait_for(lambda: server.realtime_stats()["connections_open"] == 0)
        s = server.realtime_stats()
        assert s["connections_total"] == n and s["answers"] == n and s["connections_refused"] == 0


# --- options --------------------------------------------------------------------------------------------------------


def test_the_options_have_documented_defaults_and_are_checked():
    d = demo.DemoServer.default_options()
    assert (d["ws_max_message_size"], d["ws_max_audio_bytes"], d["ws_max_connections"]) == (65536, 2097152, 10000)
    for name in ["ws_max_message_size", "ws_max_audio_bytes", "ws_max_connections"]:
        with pytest.raises(ValueError, match=name):
            demo.start(**{name: 0})
    with pytest.raises(ValueError, match="ws_max_message_size"):
        demo.start(ws_max_message_size=17 * 1024 * 1024)
    args = demo.settings_from_args(["--ws-max-message-size", "2048", "--ws-max-connections", "5"])
    assert (args.ws_max_message_size, args.ws_max_connections) == (2048, 5)


# --- protocol violations close with their RFC 6455 codes ------------------------------------------------------------


def test_invalid_utf8_closes_with_1007_and_an_unmasked_frame_with_1002(server, token):
    with closing(connect(server, token)) as ws:
        ws.send_frame(ABNF(fin=1, opcode=ABNF.OPCODE_TEXT, data=b'{"type":"ping","x":"\xff\xfe"}'))
        code, reason, _ = read_close(ws)
        assert code == 1007, reason
    ws = connect(server, token)
    try:
        ws.send_frame(ABNF(fin=1, opcode=ABNF.OPCODE_TEXT, mask_value=0, data=b'{"type":"ping"}'))
        frame = ws.recv_frame()
        assert frame.opcode == ABNF.OPCODE_CLOSE
        code, reason = close_code(frame.data)
        assert code == 1002 and "protocol error" in reason
    finally:
        ws.shutdown()
