"""The demo server's knowledge-base documents on the wall clock, and their options through the program.

The document routes are tested in process, in crates/voiceassist-demo/tests/documents.rs, with delays of 0 (ready at
once) and an hour (processing throughout). What stays here: a document's status comes from the system clock, which a
test cannot move, so the move from processing to ready after the delay is seen through a real server; and
`demo.start()` refusing a setting by name, and the options' defaults and command line.
"""

import time

import pytest
import requests

from locust_rs import demo

pytestmark = pytest.mark.timeout(30)

ADMIN = ("admin@voiceassist.local", "admin12345")
T = 5
FAST = {"register_per_minute": 0, "login_attempts_per_minute": 0, "password_hash_iterations": 10}
DOCS = "/api/admin/kb/documents"


def login(server, email, password):
    r = requests.post(server.url + "/api/auth/login", json={"email": email, "password": password}, timeout=T)
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


def auth(token):
    return {"Authorization": f"Bearer {token}"} if token else {}


def upload(server, token, files):
    return requests.post(server.url + DOCS, headers=auth(token), files=files, timeout=T)


def call(server, method, path, token):
    return requests.request(method, server.url + path, headers=auth(token), timeout=T)


def test_a_document_becomes_ready_after_its_delay():
    with demo.start(document_processing_ms=400, **FAST) as s:
        token = login(s, *ADMIN)
        r = upload(s, token, files={"file": ("a.txt", b"hello")})
        assert r.status_code == 201, r.text
        doc = r.json()
        assert doc["status"] == "processing"
        path = f"{DOCS}/{doc['id']}"
        deadline = time.monotonic() + 5
        while call(s, "GET", path, token).json()["status"] != "ready":
            assert time.monotonic() < deadline, "never became ready"
            time.sleep(0.05)
        dash = call(s, "GET", "/api/admin/dashboard", token).json()
        assert (dash["documents"], dash["documents_ready"]) == (1, 1)


def test_processing_lasts_at_least_the_delay():
    with demo.start(document_processing_ms=1500, **FAST) as s:
        token = login(s, *ADMIN)
        doc = upload(s, token, files={"file": ("a.txt", b"hello")}).json()
        time.sleep(0.3)
        assert call(s, "GET", f"{DOCS}/{doc['id']}", token).json()["status"] == "processing"


@pytest.mark.parametrize(
    "option",
    [{"max_upload_bytes": 0}, {"max_documents": 0}, {"max_upload_bytes": 2**31}, {"document_processing_ms": 10**8}],
)
def test_useless_document_options_are_refused_by_name(option):
    with pytest.raises(ValueError, match=next(iter(option))):
        demo.start(**option)


def test_document_options_are_in_the_defaults_and_the_cli():
    d = demo.DemoServer.default_options()
    assert d["max_upload_bytes"] == 10 * 1024 * 1024
    assert d["document_processing_ms"] == 500
    assert d["max_documents"] == 10_000
    assert d["access_log"] is None
    args = demo.settings_from_args(["--max-upload-bytes", "10", "--document-processing-ms", "0"])
    assert (args.max_upload_bytes, args.document_processing_ms) == (10, 0)
