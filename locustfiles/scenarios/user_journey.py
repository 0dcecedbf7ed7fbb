"""End-to-end user journey, in order: Register → Login → Query → Logout, then again with a new user.

    locust -f locustfiles/scenarios/user_journey.py --headless -u 5 -r 5 -t 1m

Each step is a request of its own in the statistics (``POST /api/auth/register``, ``POST /api/auth/login``,
``POST /api/chat/query``, ``GET /api/users/me``, ``POST /api/auth/logout``). A step that fails ends the journey
and the next one starts from registration; a rate-limited step (429) waits its Retry-After first.
"""

from __future__ import annotations

from locust import SequentialTaskSet, between, tag, task

import os
import sys

import gevent

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import config  # noqa: E402
import utils  # noqa: E402
from tasks import record_answer  # noqa: E402
from utils import check, json_of  # noqa: E402

from locust_rs import FastHttpUser  # noqa: E402

QUERIES_PER_JOURNEY = 2


class UserJourney(utils.RecordsTasks, SequentialTaskSet):
    def on_start(self) -> None:
        self.account: utils.Account | None = None
        self.tokens: utils.Tokens | None = None

    def restart(self, resp=None) -> None:
        """End this journey; after a 429, wait its Retry-After (capped) so the next one is not refused too."""
        if resp is not None and resp.status_code == 429:
            gevent.sleep(min(utils.retry_after(resp), 10))
        self.interrupt(reschedule=False)

    @tag("auth")
    @task
    def register(self) -> None:
        account = utils.Account(utils.unique_email(), config.TEST_USER_PASSWORD)
        with self.client.post(
            config.REGISTER,
            json={"email": account.email, "password": account.password, "full_name": "Journey User"},
            catch_response=True,
        ) as resp:
            if not check(resp, 201):
                self.restart(resp)
            if json_of(resp).get("email") != account.email:
                resp.failure("register answered another email")
                self.restart()
        self.account = account

    @tag("auth")
    @task
    def login(self) -> None:
        with self.client.post(
            config.LOGIN, json={"email": self.account.email, "password": self.account.password}, catch_response=True
        ) as resp:
            if not check(resp, 200):
                if resp.status_code not in (429, 401):  # check() counted a 401 already
                    utils.metrics.add("auth_failures")
                self.restart(resp)
            body = json_of(resp)
            if not body.get("access_token"):
                resp.failure("login answered without an access_token")
                utils.metrics.add("auth_failures")
                self.restart()
        self.tokens = utils.tokens_from(body)

    @tag("chat")
    @task
    def query(self) -> None:
        bearer = {"Authorization": f"Bearer {self.tokens.access}"}
        conversation_id = None
        for _ in range(QUERIES_PER_JOURNEY):
            body = {"query": utils.chat_query()}
            if conversation_id:
                body["conversation_id"] = conversation_id
            with self.client.post(config.CHAT_QUERY, json=body, headers=bearer, catch_response=True) as resp:
                if not check(resp, 200):
                    self.restart(resp)
                answer = json_of(resp)
                if not isinstance(answer.get("citations"), list):
                    resp.failure("chat answer without `citations`")
                    self.restart()
                record_answer(answer)
                conversation_id = answer.get("conversation_id")
        with self.client.get(config.ME, headers=bearer, catch_response=True) as resp:
            check(resp, 200)

    @tag("auth")
    @task
    def logout(self) -> None:
        bearer = {"Authorization": f"Bearer {self.tokens.access}"}
        with self.client.post(
            config.LOGOUT, json={"refresh_token": self.tokens.refresh}, headers=bearer, catch_response=True
        ) as resp:
            check(resp, 204, 200)
        # the access token is revoked now: the server must say so
        with self.client.get(config.ME, name=config.ME + " [after logout]", headers=bearer, catch_response=True) as r:
            check(r, 401)
        self.tokens = None


class JourneyUser(FastHttpUser):
    wait_time = between(*config.WAIT_TIMES["UserJourney"])
    tasks = [UserJourney]
