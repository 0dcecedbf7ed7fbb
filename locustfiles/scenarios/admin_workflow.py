"""Admin operations, in order: Login → Upload → Manage → Monitor, then again.

    locust -f locustfiles/scenarios/admin_workflow.py --headless -u 2 -r 2 -t 1m

* **Login**: the admin logs in (``POST /api/auth/login``) and checks who it is (``GET /api/users/me``). When the
  login is rate-limited (429: many admin users share one account) it carries on with the shared admin token.
* **Upload**: a sample document (txt, md or pdf, multipart) to ``POST /api/admin/kb/documents``, then waits for it
  to leave ``processing`` (``GET /api/admin/kb/documents/[id]`` until ``ready``, at most
  ``config.DOCUMENT_READY_TIMEOUT_S``).
* **Manage**: lists the documents and the users, and deletes the oldest documents it uploaded beyond
  ``config.MAX_DOCUMENTS_KEPT`` (and always the one from this round, so the store does not grow).
* **Monitor**: the dashboard and the metrics.
"""

from __future__ import annotations

from locust import SequentialTaskSet, between, tag, task

import os
import sys
import time

import gevent

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import config  # noqa: E402
import utils  # noqa: E402
from tasks import (  # noqa: E402
    Capabilities,
    admin_get,
    delete_document,
    get_document,
    list_documents,
    upload_document,
)
from utils import check, json_of  # noqa: E402

from locust_rs import FastHttpUser  # noqa: E402

POLL_INTERVAL_S = 0.25


class AdminWorkflow(utils.RecordsTasks, SequentialTaskSet):
    def on_start(self) -> None:
        self.bearer: dict[str, str] | None = None
        self.doc_id: str | None = None

    @tag("admin", "auth")
    @task
    def login(self) -> None:
        user = self.user
        self.bearer = None
        if not user.auth.is_blocked(user.account):
            tokens = user.auth.login(user.account)
            if tokens is not None:
                self.bearer = {"Authorization": f"Bearer {tokens.access}"}
        if self.bearer is None:
            self.bearer = user.auth.headers(user.account)  # the shared token, when the login was refused
        if self.bearer is None:
            self.interrupt(reschedule=False)
        with self.client.get(config.ME, headers=self.bearer, catch_response=True) as resp:
            if check(resp, 200) and not json_of(resp).get("is_admin"):
                resp.failure(f"{user.account.email} is not an admin")
                self.interrupt(reschedule=False)

    @tag("admin")
    @task
    def upload(self) -> None:
        self.doc_id = None
        if not Capabilities.documents:
            return
        self.doc_id = upload_document(self.user, self.bearer)
        if self.doc_id is None:
            return
        deadline = time.monotonic() + config.DOCUMENT_READY_TIMEOUT_S
        while True:
            doc = get_document(self.user, self.doc_id, self.bearer)
            status = (doc or {}).get("status")
            if doc is None or status == "ready":
                return
            if status != "processing" or time.monotonic() > deadline:
                utils.log.warning(
                    "document %s still %r after %.0f s", self.doc_id, status, config.DOCUMENT_READY_TIMEOUT_S
                )
                return
            gevent.sleep(POLL_INTERVAL_S)

    @tag("admin")
    @task
    def manage(self) -> None:
        if Capabilities.documents:
            list_documents(self.user, self.bearer)
        admin_get(self.user, config.ADMIN_USERS + "?page=1&page_size=20", self.bearer, "items", "total")
        if self.doc_id is not None:
            delete_document(self.user, self.doc_id, self.bearer)
        while len(self.user.documents) > config.MAX_DOCUMENTS_KEPT:
            delete_document(self.user, self.user.documents[0], self.bearer)

    @tag("admin")
    @task
    def monitor(self) -> None:
        admin_get(self.user, config.ADMIN_DASHBOARD, self.bearer, "users", "queries")
        if Capabilities.admin_metrics:
            admin_get(self.user, config.ADMIN_METRICS, self.bearer)


class AdminWorkflowUser(FastHttpUser):
    wait_time = between(*config.WAIT_TIMES["AdminWorkflow"])
    tasks = [AdminWorkflow]

    def on_start(self) -> None:
        self.account = utils.ADMIN
        self.auth = utils.AuthHelper(self.client)
        self.documents: list[str] = []
