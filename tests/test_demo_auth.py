"""The demo server's tokens expire on the wall clock, through a real server.

The auth routes' other behaviour is tested in process, in crates/voiceassist-demo/tests/auth.rs. This one stays here:
the server reads the system clock for a token's expiry and nothing lets a test move it, so the test waits for a token
with a one-second lifetime to run out.
"""

import time

import pytest
import requests

from locust_rs import demo

pytestmark = pytest.mark.timeout(30)

ADMIN = ("admin@voiceassist.local", "admin12345")
T = 5  # per-request timeout, seconds


def test_tokens_expire():
    with demo.start(access_token_ttl=1, refresh_token_ttl=1, password_hash_iterations=10) as s:
        r = requests.post(s.url + "/api/auth/login", json={"email": ADMIN[0], "password": ADMIN[1]}, timeout=T)
        assert r.status_code == 200, r.text
        tokens = r.json()
        me = {"Authorization": f"Bearer {tokens['access_token']}"}
        assert requests.get(s.url + "/api/users/me", headers=me, timeout=T).status_code == 200
        time.sleep(2.1)
        r = requests.get(s.url + "/api/users/me", headers=me, timeout=T)
        assert r.status_code == 401
        assert r.json()["message"] == "token expired"
        r = requests.post(s.url + "/api/auth/refresh", json={"refresh_token": tokens["refresh_token"]}, timeout=T)
        assert r.status_code == 401
