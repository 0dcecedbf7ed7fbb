"""The token lifetimes ``demo.start`` passes to the program, through a real server.

The auth routes' behaviour is tested in process, in crates/voiceassist-demo/tests/routes/auth.rs, expired tokens
included.
"""

import pytest
import requests

from locust_rs import demo

pytestmark = pytest.mark.timeout(30)

ADMIN = ("admin@voiceassist.local", "admin12345")
T = 5  # per-request timeout, seconds


def test_the_token_lifetimes_come_from_the_options():
    """``demo.start``'s TTLs reach the program: each token's ``exp`` is its ``iat`` plus its TTL. (The route tests in
    crates/voiceassist-demo/tests/routes/ check that a token past its ``exp`` is refused. Waiting here for one of
    1 s to expire failed now and then: with whole-second claims it can be expired 0 to 1 s after login.)"""
    import base64
    import json

    def claims(token: str) -> dict:
        payload = token.split(".")[1]
        return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))

    with demo.start(access_token_ttl=7, refresh_token_ttl=11, password_hash_iterations=10) as s:
        r = requests.post(s.url + "/api/auth/login", json={"email": ADMIN[0], "password": ADMIN[1]}, timeout=T)
        assert r.status_code == 200, r.text
        tokens = r.json()
        assert tokens["expires_in"] == 7
        for kind, ttl in (("access", 7), ("refresh", 11)):
            c = claims(tokens[f"{kind}_token"])
            assert c["exp"] - c["iat"] == ttl, (kind, c)
        me = {"Authorization": f"Bearer {tokens['access_token']}"}
        assert requests.get(s.url + "/api/users/me", headers=me, timeout=T).status_code == 200
