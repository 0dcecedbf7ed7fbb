"""The demo server's OpenAPI document: served at /openapi.json, rendered into docs/voiceassist-api.md, and
checked against the running server by schemathesis.

schemathesis lives in a directory of its own (``make test-deps`` installs it into ``.schemathesis-deps``): installed
beside this suite, its pytest plugin (and anyio's) import ``ssl`` before gevent's monkey-patching in conftest.py,
which breaks every test with a RecursionError. Here it runs in a subprocess aimed at an in-process server.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from locust_rs import demo

ROOT = Path(__file__).resolve().parent.parent
SCHEMATHESIS_DEPS = Path(os.environ.get("SCHEMATHESIS_DEPS", ROOT / ".schemathesis-deps"))
FAST = {
    "register_per_minute": 0,
    "login_attempts_per_minute": 0,
    "password_hash_iterations": 10,
    "chat_latency_ms": 0,
    "document_processing_ms": 0,
}
T = 5


@pytest.fixture(scope="module")
def server():
    with demo.start(**FAST) as s:
        yield s


def admin_token(s):
    r = requests.post(
        s.url + "/api/auth/login", json={"email": "admin@voiceassist.local", "password": "admin12345"}, timeout=T
    )
    assert r.status_code == 200
    return r.json()["access_token"]


@pytest.mark.timeout(30)
def test_openapi_json_is_served_and_describes_every_route(server):
    r = requests.get(server.url + "/openapi.json", timeout=T)
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    spec = r.json()
    assert spec == json.loads(demo.DemoServer.openapi_json())
    assert spec["openapi"].startswith("3.1")
    documented = {(m.upper(), p) for p, item in spec["paths"].items() for m in item}
    assert documented == {
        ("GET", "/health"),
        ("POST", "/api/auth/register"),
        ("POST", "/api/auth/login"),
        ("POST", "/api/auth/refresh"),
        ("POST", "/api/auth/logout"),
        ("GET", "/api/users/me"),
        ("POST", "/api/chat/query"),
        ("GET", "/api/conversations"),
        ("POST", "/api/conversations"),
        ("GET", "/api/conversations/{id}/messages"),
        ("GET", "/api/admin/dashboard"),
        ("GET", "/api/admin/metrics"),
        ("GET", "/api/admin/users"),
        ("GET", "/api/admin/kb/documents"),
        ("POST", "/api/admin/kb/documents"),
        ("GET", "/api/admin/kb/documents/{id}"),
        ("DELETE", "/api/admin/kb/documents/{id}"),
    }
    upload = spec["paths"]["/api/admin/kb/documents"]["post"]
    assert "multipart/form-data" in upload["requestBody"]["content"]
    assert {"201", "401", "403", "413", "415", "422"} <= set(upload["responses"])
    assert spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


def test_the_cli_prints_the_openapi_document():
    out = subprocess.run(
        [sys.executable, "-m", "locust_rs.demo", "--print-openapi"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == json.loads(demo.DemoServer.openapi_json())


def test_the_api_doc_is_generated_from_the_current_spec():
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "voiceassist_api_md.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.timeout(180)
def test_every_route_answers_as_the_openapi_document_says(server):
    """schemathesis, all its checks: status codes, content types and bodies as documented, schema-valid
    requests accepted, schema-violating ones refused. Bounded: 5 examples per operation and a fixed seed."""
    if not (SCHEMATHESIS_DEPS / "schemathesis").is_dir():
        pytest.fail(f"schemathesis not found in {SCHEMATHESIS_DEPS}: run `make test-deps`")
    token = admin_token(server)
    cmd = [
        sys.executable,
        "-c",
        "import sys; from schemathesis.cli import schemathesis; sys.exit(schemathesis())",
        "--config-file",
        str(ROOT / "tests" / "schemathesis.toml"),
        "--no-color",
        "run",
        server.url + "/openapi.json",
        "--header",
        f"Authorization: Bearer {token}",
        # logout would revoke the token the rest of the run uses; test_demo_auth.py covers it
        "--exclude-path",
        "/api/auth/logout",
        "--phases",
        "examples,coverage,fuzzing",
        "--max-examples",
        "5",
        "--seed",
        "1",
        "--workers",
        "1",
        "--request-timeout",
        "5",
        "--max-failures",
        "5",
    ]
    env = {**os.environ, "PYTHONPATH": str(SCHEMATHESIS_DEPS)}
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=150, cwd=ROOT, env=env)
    report = out.stdout[-6000:] + out.stderr[-2000:]
    assert out.returncode == 0, report
    assert "16 selected" in out.stdout, report
