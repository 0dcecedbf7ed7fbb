"""Route-level tests of the demo server's knowledge-base documents: multipart uploads (413, 415,
422), the processing -> ready lifecycle, list/get/delete, admin-only access and the store's cap."""

import hashlib
import time
import uuid

import pytest
import requests

from locust_rs import demo

pytestmark = pytest.mark.timeout(30)

ADMIN = ("admin@voiceassist.local", "admin12345")
T = 5
FAST = {"register_per_minute": 0, "login_attempts_per_minute": 0, "password_hash_iterations": 10}
DOCS = "/api/admin/kb/documents"
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


@pytest.fixture(scope="module")
def server():
    with demo.start(document_processing_ms=0, max_upload_bytes=4096, **FAST) as s:
        yield s


def login(server, email, password):
    r = requests.post(server.url + "/api/auth/login", json={"email": email, "password": password}, timeout=T)
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


@pytest.fixture(scope="module")
def admin(server):
    return login(server, *ADMIN)


@pytest.fixture(scope="module")
def user(server):
    email = f"user-{uuid.uuid4().hex[:12]}@example.com"
    r = requests.post(server.url + "/api/auth/register", json={"email": email, "password": "password123"}, timeout=T)
    assert r.status_code == 201, r.text
    return login(server, email, "password123")


def auth(token):
    return {"Authorization": f"Bearer {token}"} if token else {}


def upload(server, token, files=None, data=None, **kw):
    return requests.post(server.url + DOCS, headers=auth(token), files=files, data=data, timeout=T, **kw)


def call(server, method, path, token):
    return requests.request(method, server.url + path, headers=auth(token), timeout=T)


@pytest.mark.parametrize(
    ("name", "content", "ctype", "expected_type"),
    [
        ("notes.txt", b"VoiceAssist supports 12 languages.\n", "text/plain", "text/plain"),
        ("guide.md", "# Guide\n\nÜmlauts are fine.\n".encode(), None, "text/markdown"),
        ("manual.pdf", PDF, "application/pdf", "application/pdf"),
        ("manual.PDF", PDF, "application/octet-stream", "application/pdf"),
    ],
)
def test_an_upload_answers_201_with_the_document(server, admin, name, content, ctype, expected_type):
    part = (name, content, ctype) if ctype else (name, content)
    r = upload(server, admin, files={"file": part}, data={"title": "  My title  "})
    assert r.status_code == 201, r.text
    doc = r.json()
    assert doc["id"].startswith("doc_")
    assert doc["title"] == "My title"
    assert doc["filename"] == name
    assert doc["content_type"] == expected_type
    assert doc["size_bytes"] == len(content)
    assert doc["sha256"] == hashlib.sha256(content).hexdigest()
    assert doc["status"] == "ready"  # document_processing_ms=0
    assert isinstance(doc["uploaded_by"], int)
    assert doc["created_at"] > 0


def test_the_title_defaults_to_the_filename(server, admin):
    r = upload(server, admin, files={"file": ("faq.md", b"# FAQ\n")})
    assert r.status_code == 201, r.text
    assert r.json()["title"] == "faq.md"


def test_the_document_lifecycle():
    with demo.start(document_processing_ms=400, **FAST) as s:
        token = login(s, *ADMIN)
        r = upload(s, token, files={"file": ("a.txt", b"hello")})
        assert r.status_code == 201, r.text
        doc = r.json()
        assert doc["status"] == "processing"
        path = f"{DOCS}/{doc['id']}"
        got = call(s, "GET", path, token)
        assert got.status_code == 200
        assert got.json()["status"] == "processing"
        listed = call(s, "GET", DOCS, token).json()
        assert [d["id"] for d in listed["items"]] == [doc["id"]]
        dash = call(s, "GET", "/api/admin/dashboard", token).json()
        assert (dash["documents"], dash["documents_ready"]) == (1, 0)
        deadline = time.monotonic() + 5
        while call(s, "GET", path, token).json()["status"] != "ready":
            assert time.monotonic() < deadline, "never became ready"
            time.sleep(0.05)
        # ready no earlier than the delay (generous lower bound only)
        dash = call(s, "GET", "/api/admin/dashboard", token).json()
        assert (dash["documents"], dash["documents_ready"]) == (1, 1)
        d = call(s, "DELETE", path, token)
        assert d.status_code == 204
        assert d.content == b""
        assert call(s, "GET", path, token).status_code == 404
        assert call(s, "DELETE", path, token).status_code == 404
        assert call(s, "GET", DOCS, token).json()["total"] == 0


def test_processing_lasts_at_least_the_delay():
    with demo.start(document_processing_ms=1500, **FAST) as s:
        token = login(s, *ADMIN)
        doc = upload(s, token, files={"file": ("a.txt", b"hello")}).json()
        time.sleep(0.3)
        assert call(s, "GET", f"{DOCS}/{doc['id']}", token).json()["status"] == "processing"


def test_an_oversize_upload_is_413(server, admin):
    r = upload(server, admin, files={"file": ("big.txt", b"x" * 4097)})
    assert r.status_code == 413, r.text
    assert r.json()["error"] == "payload_too_large"
    assert "4096" in r.json()["message"]
    # exactly at the limit is fine
    assert upload(server, admin, files={"file": ("ok.txt", b"x" * 4096)}).status_code == 201


def test_a_huge_upload_is_413_without_reading_it(server, admin):
    # far past the limit and the multipart allowance: refused from Content-Length
    r = upload(server, admin, files={"file": ("big.txt", b"x" * (200 * 1024))})
    assert r.status_code == 413


@pytest.mark.parametrize(
    ("part", "why"),
    [
        (("photo.png", b"\x89PNG\r\n", "image/png"), "unsupported file type"),
        (("a.exe", b"MZ"), "unsupported file type"),
        (("blob", b"data"), "unsupported file type"),
        (("notes.txt", b"hi", "image/png"), "image/png"),
        (("fake.pdf", b"not a pdf", "application/pdf"), "not a PDF"),
        (("bin.txt", b"\xff\xfe\x00bad", "text/plain"), "not UTF-8"),
    ],
)
def test_a_wrong_file_type_is_415(server, admin, part, why):
    r = upload(server, admin, files={"file": part})
    assert r.status_code == 415, r.text
    assert r.json()["error"] == "unsupported_media_type"
    assert why in r.json()["message"]


def test_a_non_multipart_body_is_415(server, admin):
    r = requests.post(server.url + DOCS, headers=auth(admin), json={"file": "x"}, timeout=T)
    assert r.status_code == 415
    assert "multipart/form-data" in r.json()["message"]


def test_a_missing_file_field_is_422_naming_it(server, admin):
    r = upload(server, admin, files={"attachment": ("a.txt", b"hello")}, data={"title": "t"})
    assert r.status_code == 422, r.text
    assert r.json()["field"] == "file"


def test_an_empty_file_or_long_title_is_422(server, admin):
    r = upload(server, admin, files={"file": ("a.txt", b"")})
    assert (r.status_code, r.json()["field"]) == (422, "file")
    r = upload(server, admin, files={"file": ("a.txt", b"x")}, data={"title": "t" * 201})
    assert (r.status_code, r.json()["field"]) == (422, "title")


def test_a_broken_multipart_body_is_400(server, admin):
    headers = {**auth(admin), "Content-Type": "multipart/form-data; boundary=XYZ"}
    r = requests.post(server.url + DOCS, headers=headers, data=b"--XYZ\r\nbroken", timeout=T)
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "bad_request"


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", DOCS), ("POST", DOCS), ("GET", DOCS + "/doc_x"), ("DELETE", DOCS + "/doc_x")],
)
def test_documents_are_admin_only(server, user, method, path):
    r = call(server, method, path, None)
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"] == "Bearer"
    r = call(server, method, path, user)
    assert r.status_code == 403
    assert r.json()["error"] == "forbidden"


def test_a_non_admin_upload_is_403_before_the_body_is_checked(server, user):
    r = upload(server, user, files={"file": ("big.txt", b"x" * 10_000)})
    assert r.status_code == 403


def test_unknown_documents_are_404(server, admin):
    for method in ("GET", "DELETE"):
        r = call(server, method, f"{DOCS}/doc_{uuid.uuid4().hex[:24]}", admin)
        assert r.status_code == 404
        assert r.json()["error"] == "not_found"


def test_documents_are_paginated_newest_first_and_capped():
    with demo.start(document_processing_ms=0, max_documents=5, **FAST) as s:
        token = login(s, *ADMIN)
        ids = [upload(s, token, files={"file": (f"d{i}.txt", b"x")}).json()["id"] for i in range(7)]
        page = requests.get(s.url + DOCS, params={"page": 1, "page_size": 2}, headers=auth(token), timeout=T).json()
        assert page["total"] == 5
        assert page["pages"] == 3
        assert [d["id"] for d in page["items"]] == [ids[6], ids[5]]
        last = requests.get(s.url + DOCS, params={"page": 3, "page_size": 2}, headers=auth(token), timeout=T).json()
        assert [d["id"] for d in last["items"]] == [ids[2]]
        assert call(s, "GET", f"{DOCS}/{ids[0]}", token).status_code == 404  # evicted
        r = requests.get(s.url + DOCS, params={"page_size": 0}, headers=auth(token), timeout=T)
        assert (r.status_code, r.json()["field"]) == (422, "page_size")


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


def test_ready_documents_join_the_chat_knowledge_base():
    # Cited only once ready, by their words (title and text), after built-in articles on a tie; gone when deleted.
    with demo.start(document_processing_ms=300, chat_latency_ms=0, chat_latency_jitter_ms=0, **FAST) as s:
        token = login(s, *ADMIN)

        def ask(query):
            r = requests.post(s.url + "/api/chat/query", json={"query": query}, headers=auth(token), timeout=T)
            assert r.status_code == 200, r.text
            return r.json()

        text = b"Zorblax calibration: turn the flux dial to seven before any pricing review."
        doc = upload(s, token, files={"file": ("notes.md", text)}, data={"title": "Zorblax field guide"}).json()
        assert ask("zorblax calibration")["citations"] == []  # still processing
        deadline = time.monotonic() + 5
        while call(s, "GET", f"{DOCS}/{doc['id']}", token).json()["status"] != "ready":
            assert time.monotonic() < deadline, "never became ready"
            time.sleep(0.05)
        answer = ask("How do I do the zorblax calibration?")
        assert [(c["id"], c["document_id"], c["title"], c["score"]) for c in answer["citations"]] == [
            (doc["id"], doc["id"], "Zorblax field guide", 2)
        ]
        assert answer["answer"] == f"{text.decode()} [{doc['id']}]"
        assert answer["citations"][0]["snippet"] == text.decode()
        # A tie with a built-in article (pricing, score 1): the article first, then the document.
        assert [c["id"] for c in ask("pricing")["citations"]][:2] == ["kb-003", doc["id"]]
        # PDFs are found by their title.
        pdf = upload(s, token, files={"file": ("spec.pdf", PDF)}, data={"title": "Quuxify specification"}).json()
        deadline = time.monotonic() + 5
        while not ask("quuxify")["citations"]:
            assert time.monotonic() < deadline, "the PDF was never cited"
            time.sleep(0.05)
        assert ask("quuxify")["citations"][0]["id"] == pdf["id"]
        assert call(s, "DELETE", f"{DOCS}/{doc['id']}", token).status_code == 204
        assert ask("zorblax calibration")["citations"] == []
