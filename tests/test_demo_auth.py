"""Route-level tests of the demo server's auth routes: every status code, the full auth flow and the rate limits."""

import time
import uuid

import pytest
import requests

from locust_rs import demo

pytestmark = pytest.mark.timeout(30)

ADMIN = ("admin@voiceassist.local", "admin12345")
T = 5  # per-request timeout, seconds


@pytest.fixture(scope="module")
def server():
    with demo.start(register_per_minute=0, login_attempts_per_minute=0, password_hash_iterations=10) as s:
        yield s


def email():
    return f"user-{uuid.uuid4().hex[:12]}@example.com"


def post(server, path, json=None, token=None, data=None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.post(server.url + path, json=json, data=data, headers=headers, timeout=T)


def get(server, path, token=None, headers=None):
    headers = dict(headers or {})
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return requests.get(server.url + path, headers=headers, timeout=T)


def register(server, addr=None, password="password123"):
    addr = addr or email()
    r = post(server, "/api/auth/register", {"email": addr, "password": password, "full_name": "Test User"})
    assert r.status_code == 201, r.text
    return addr


def login(server, addr, password="password123"):
    r = post(server, "/api/auth/login", {"email": addr, "password": password})
    assert r.status_code == 200, r.text
    return r.json()


def test_health(server):
    r = get(server, "/health")
    assert r.status_code == 200
    assert r.json()["status"] == "ok"
    assert r.headers["content-type"].startswith("application/json")


def test_unknown_route_is_a_json_404(server):
    r = get(server, "/api/nope")
    assert r.status_code == 404
    assert r.json()["error"] == "not_found"


def test_register_answers_201_with_the_user(server):
    addr = email()
    r = post(server, "/api/auth/register", {"email": addr.upper(), "password": "password123", "full_name": "Ann"})
    assert r.status_code == 201
    body = r.json()
    assert body["email"] == addr
    assert body["full_name"] == "Ann"
    assert body["is_admin"] is False
    assert "password" not in r.text


def test_register_twice_is_409(server):
    addr = register(server)
    r = post(server, "/api/auth/register", {"email": addr, "password": "password123"})
    assert r.status_code == 409
    assert r.json()["error"] == "conflict"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"password": "password123"}, "email"),
        ({"email": "not-an-email", "password": "password123"}, "email"),
        ({"email": 5, "password": "password123"}, "email"),
        ({"email": "a@example.com"}, "password"),
        ({"email": "a@example.com", "password": "short"}, "password"),
        ({"email": "a@example.com", "password": "password123", "full_name": 3}, "full_name"),
        ([1, 2], "body"),
    ],
)
def test_register_with_an_invalid_body_is_422_naming_the_field(server, body, field):
    r = post(server, "/api/auth/register", body)
    assert r.status_code == 422, r.text
    assert r.json()["field"] == field
    assert r.json()["error"] == "validation_error"


def test_malformed_json_is_422_naming_the_body(server):
    r = post(server, "/api/auth/register", data=b"{not json")
    assert r.status_code == 422
    assert r.json()["field"] == "body"


def test_login_answers_tokens(server):
    addr = register(server)
    body = login(server, addr)
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 900
    assert body["access_token"].count(".") == 2
    assert body["refresh_token"] != body["access_token"]
    assert body["user"]["email"] == addr


def test_login_accepts_username_for_email(server):
    addr = register(server)
    r = post(server, "/api/auth/login", {"username": addr, "password": "password123"})
    assert r.status_code == 200


@pytest.mark.parametrize("case", ["wrong password", "unknown email"])
def test_bad_credentials_are_401(server, case):
    addr = register(server)
    creds = (
        {"email": addr, "password": "wrong-password"}
        if case == "wrong password"
        else {"email": email(), "password": "password123"}
    )
    r = post(server, "/api/auth/login", creds)
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"
    assert r.json()["message"] == "invalid email or password"


def test_login_without_password_is_422(server):
    r = post(server, "/api/auth/login", {"email": "a@example.com"})
    assert r.status_code == 422
    assert r.json()["field"] == "password"


def test_seeded_admin_logs_in(server):
    body = login(server, *ADMIN)
    me = get(server, "/api/users/me", token=body["access_token"])
    assert me.status_code == 200
    assert me.json()["is_admin"] is True


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer"}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer not.a.jwt"}],
    ids=["missing", "empty", "not-bearer", "garbage"],
)
def test_me_without_a_valid_token_is_401(server, headers):
    r = get(server, "/api/users/me", headers=headers)
    assert r.status_code == 401
    assert r.json()["error"] == "unauthorized"


def test_a_refresh_token_is_not_an_access_token(server):
    tokens = login(server, register(server))
    assert get(server, "/api/users/me", token=tokens["refresh_token"]).status_code == 401
    r = post(server, "/api/auth/refresh", {"refresh_token": tokens["access_token"]})
    assert r.status_code == 401


def test_a_token_from_another_server_is_401(server):
    with demo.start(jwt_secret="another-secret", password_hash_iterations=10) as other:
        foreign = login(other, *ADMIN)["access_token"]
    assert get(server, "/api/users/me", token=foreign).status_code == 401


def test_refresh_with_a_bad_token_is_401_and_without_one_422(server):
    assert post(server, "/api/auth/refresh", {"refresh_token": "x.y.z"}).status_code == 401
    r = post(server, "/api/auth/refresh", {})
    assert r.status_code == 422
    assert r.json()["field"] == "refresh_token"


def test_logout_without_a_token_is_401(server):
    assert post(server, "/api/auth/logout").status_code == 401


def test_full_auth_flow(server):
    addr = register(server)
    tokens = login(server, addr)
    access, refresh = tokens["access_token"], tokens["refresh_token"]

    me = get(server, "/api/users/me", token=access)
    assert me.status_code == 200
    assert me.json()["email"] == addr

    r = post(server, "/api/auth/refresh", {"refresh_token": refresh})
    assert r.status_code == 200
    fresh = r.json()["access_token"]
    assert fresh != access
    assert get(server, "/api/users/me", token=fresh).status_code == 200

    r = post(server, "/api/auth/logout", token=access)
    assert r.status_code == 204
    assert r.content == b""
    r = get(server, "/api/users/me", token=access)
    assert r.status_code == 401
    assert r.json()["message"] == "token revoked"
    assert post(server, "/api/auth/logout", token=access).status_code == 401
    # logout revoked only that access token; the other one and the refresh token still work
    assert get(server, "/api/users/me", token=fresh).status_code == 200
    assert post(server, "/api/auth/refresh", {"refresh_token": refresh}).status_code == 200


def test_logout_with_the_refresh_token_revokes_it_too(server):
    tokens = login(server, register(server))
    r = post(server, "/api/auth/logout", {"refresh_token": tokens["refresh_token"]}, token=tokens["access_token"])
    assert r.status_code == 204
    r = post(server, "/api/auth/refresh", {"refresh_token": tokens["refresh_token"]})
    assert r.status_code == 401
    assert r.json()["message"] == "token revoked"


def test_tokens_expire():
    with demo.start(access_token_ttl=1, refresh_token_ttl=1, password_hash_iterations=10) as s:
        tokens = login(s, *ADMIN)
        assert get(s, "/api/users/me", token=tokens["access_token"]).status_code == 200
        time.sleep(2.1)
        r = get(s, "/api/users/me", token=tokens["access_token"])
        assert r.status_code == 401
        assert r.json()["message"] == "token expired"
        assert post(s, "/api/auth/refresh", {"refresh_token": tokens["refresh_token"]}).status_code == 401


def test_registration_rate_limit_answers_429_with_retry_after():
    with demo.start(register_per_minute=2, password_hash_iterations=10) as s:
        register(s)
        register(s)
        r = post(s, "/api/auth/register", {"email": email(), "password": "password123"})
        assert r.status_code == 429
        assert 1 <= int(r.headers["retry-after"]) <= 60
        assert r.json()["error"] == "rate_limited"


def test_login_rate_limit_is_per_account():
    with demo.start(login_attempts_per_minute=2, register_per_minute=0, password_hash_iterations=10) as s:
        addr = register(s)
        assert post(s, "/api/auth/login", {"email": addr, "password": "wrong-password"}).status_code == 401
        login(s, addr)
        r = post(s, "/api/auth/login", {"email": addr, "password": "password123"})
        assert r.status_code == 429
        assert 1 <= int(r.headers["retry-after"]) <= 60
        # another account is not limited
        login(s, *ADMIN)


def test_full_user_store_evicts_the_oldest_user():
    with demo.start(max_users=3, register_per_minute=0, password_hash_iterations=10) as s:
        first = register(s)
        token = login(s, first)["access_token"]
        register(s)
        register(s)  # admin + 3 users > 3: the first user goes
        assert get(s, "/api/users/me", token=token).status_code == 401
        assert post(s, "/api/auth/login", {"email": first, "password": "password123"}).status_code == 401
        login(s, *ADMIN)  # the admin is never evicted
