"""The suite's task sets, one per area of the VoiceAssist API, each task tagged for ``--tags``/``--exclude-tags``:

=====================  =========  ====================================================================
task set               tag        requests
=====================  =========  ====================================================================
AuthTasks              auth       login, /api/users/me, refresh, logout (a session of its own)
ChatTasks              chat       POST /api/chat/query: new questions and follow-ups
ConversationTasks      chat       list and create conversations, read a conversation's messages
DocumentTasks          admin      upload (multipart), list, get and delete knowledge-base documents
AdminTasks             admin      dashboard, metrics, users
HealthTasks            health     GET /health
RealtimeVoiceTasks     websocket  WS /api/realtime/ws: streamed chat, voice (audio frames), ping
=====================  =========  ====================================================================

Each visit to a task set runs one of its tasks and returns to the user, who waits its ``wait_time`` and picks the
next set by weight; so the weights in ``config.TASK_WEIGHTS`` are the shares of the traffic. The users
(``locustfile.py``) carry ``account`` (a ``utils.Account``), ``auth`` (a ``utils.AuthHelper``) and the lists
``conversations`` and ``documents`` of ids they created.
"""

from __future__ import annotations

from locust import TaskSet, events, tag, task
from locust.exception import InterruptTaskSet, RescheduleTask
from locust.runners import MasterRunner

import json
import logging
import random
import time
from typing import Any

import config
import utils
from utils import check, json_of, metrics

log = logging.getLogger("voiceassist")


class Capabilities:
    """Routes the target may lack (a real deployment without the admin metrics, say). Probed once per process
    before the test (``probe``); a task whose route is absent is skipped instead of failing every time."""

    documents = True
    admin_metrics = True
    probed_host: str | None = None

    @classmethod
    def probe(cls, host: str, admin_token: str | None) -> None:
        import requests

        cls.probed_host = host
        if not admin_token:
            return
        headers = {"Authorization": f"Bearer {admin_token}"}
        for attr, path in (("documents", config.DOCUMENTS), ("admin_metrics", config.ADMIN_METRICS)):
            try:
                status = requests.get(host + path, headers=headers, timeout=10).status_code
            except requests.RequestException:
                continue  # unreachable: let the tasks report it
            present = status != 404
            setattr(cls, attr, present)
            if not present:
                log.warning("GET %s answers 404 on %s: its tasks are skipped in this run", path, host)


@events.test_start.add_listener
def _probe_capabilities(environment, **_kw) -> None:
    # after utils' pool listener (registered first, on import): the admin token is cached by then
    if isinstance(environment.runner, MasterRunner) or not environment.host:
        return
    Capabilities.probe(environment.host.rstrip("/"), utils.AuthHelper.cached_token(utils.ADMIN))


@events.test_start.add_listener
def _select_thresholds(environment, **_kw) -> None:
    # after the probe: a route the target lacks has no requests to check
    missing = {"upload": "the target has no document routes"} if not Capabilities.documents else {}
    utils.select_thresholds(environment, missing)


class VisitTaskSet(utils.RecordsTasks, TaskSet):
    """Runs one task per visit, then hands back to the user (who waits its wait_time)."""

    abstract = True

    def execute_next_task(self) -> None:
        super().execute_next_task()
        raise InterruptTaskSet(reschedule=False)

    def headers(self) -> dict[str, str] | None:
        """Bearer headers of the user's account; None (and the visit ends) when no token can be had now."""
        h = self.user.auth.headers(self.user.account)
        if h is None:
            raise InterruptTaskSet(reschedule=False)
        return h


def record_answer(body: dict[str, Any]) -> None:
    metrics.add("queries_answered")
    citations = body.get("citations") or []
    if citations:
        metrics.add("queries_with_citations")
        metrics.add("citations_returned", len(citations))


# --- auth ---------------------------------------------------------------------------------------------------------


class AuthTasks(VisitTaskSet):
    @tag("auth")
    @task(3)
    def session(self) -> None:
        """A whole session of its own: login, who am I, refresh, logout (the shared token stays valid)."""
        account = self.user.account
        if self.user.auth.is_blocked(account):
            return
        tokens = self.user.auth.login(account)
        if tokens is None:
            return
        bearer = {"Authorization": f"Bearer {tokens.access}"}
        with self.client.get(config.ME, headers=bearer, catch_response=True) as resp:
            if check(resp, 200) and json_of(resp).get("email") != account.email:
                resp.failure("/api/users/me answered another user")
        with self.client.post(config.REFRESH, json={"refresh_token": tokens.refresh}, catch_response=True) as resp:
            # a 401 here is counted as an authentication failure by check()
            if check(resp, 200) and json_of(resp).get("access_token"):
                bearer = {"Authorization": f"Bearer {json_of(resp)['access_token']}"}
        with self.client.post(
            config.LOGOUT, headers=bearer, json={"refresh_token": tokens.refresh}, catch_response=True
        ) as resp:
            check(resp, 204, 200)

    @tag("auth")
    @task(2)
    def me(self) -> None:
        with self.client.get(config.ME, headers=self.headers(), catch_response=True) as resp:
            check(resp, 200, auth=self.user.auth, account=self.user.account)


# --- chat ---------------------------------------------------------------------------------------------------------


class ChatTasks(VisitTaskSet):
    def ask(self, query: str, conversation_id: str | None = None) -> dict[str, Any] | None:
        body: dict[str, Any] = {"query": query}
        if conversation_id:
            body["conversation_id"] = conversation_id
        with self.client.post(config.CHAT_QUERY, json=body, headers=self.headers(), catch_response=True) as resp:
            if resp.status_code == 404 and conversation_id:
                # the server evicted the conversation (its caps): forget it, not an error of the API
                self.user.conversations.remove(conversation_id)
                resp.success()
                return None
            if not check(resp, 200, auth=self.user.auth, account=self.user.account):
                return None
            answer = json_of(resp)
            if not isinstance(answer.get("answer"), str) or not isinstance(answer.get("citations"), list):
                resp.failure("chat answer without `answer` and `citations`")
                return None
            record_answer(answer)
            cid = answer.get("conversation_id")
            if cid and cid not in self.user.conversations:
                self.user.conversations.append(cid)
                del self.user.conversations[:-20]
            return answer

    @tag("chat")
    @task(5)
    def new_question(self) -> None:
        self.ask(utils.chat_query())

    @tag("chat")
    @task(2)
    def follow_up(self) -> None:
        if not self.user.conversations:
            self.ask(utils.chat_query())
        else:
            self.ask(utils.follow_up_query(), random.choice(self.user.conversations))


class ConversationTasks(VisitTaskSet):
    @tag("chat")
    @task(3)
    def list_conversations(self) -> None:
        with self.client.get(
            config.CONVERSATIONS + "?page=1&page_size=20",
            name=config.CONVERSATIONS,
            headers=self.headers(),
            catch_response=True,
        ) as resp:
            if check(resp, 200, auth=self.user.auth, account=self.user.account):
                items = json_of(resp).get("items")
                if not isinstance(items, list):
                    resp.failure("conversation list without `items`")

    @tag("chat")
    @task(1)
    def create_conversation(self) -> None:
        with self.client.post(
            config.CONVERSATIONS,
            json={"title": f"Load test {utils.RUN_ID}"},
            headers=self.headers(),
            catch_response=True,
        ) as resp:
            if check(resp, 201, auth=self.user.auth, account=self.user.account):
                cid = json_of(resp).get("id")
                if cid:
                    self.user.conversations.append(cid)
                    del self.user.conversations[:-20]

    @tag("chat")
    @task(3)
    def read_messages(self) -> None:
        if not self.user.conversations:
            self.list_conversations()
            return
        cid = random.choice(self.user.conversations)
        with self.client.get(
            f"{config.CONVERSATIONS}/{cid}/messages?page=1&page_size=50",
            name=config.CONVERSATIONS + "/[id]/messages",
            headers=self.headers(),
            catch_response=True,
        ) as resp:
            if resp.status_code == 404:
                self.user.conversations.remove(cid)  # evicted by the server's caps
                resp.success()
                return
            check(resp, 200, auth=self.user.auth, account=self.user.account)


# --- admin --------------------------------------------------------------------------------------------------------


def upload_document(user, headers: dict[str, str]) -> str | None:
    """Upload a sample document (multipart); its id, or None."""
    filename, content, ctype = utils.sample_document()
    with user.client.post(
        config.DOCUMENTS,
        name=config.DOCUMENTS + " [upload]",
        files={"file": (filename, content, ctype)},
        data={"title": f"Load test {filename}"},
        headers=headers,
        catch_response=True,
    ) as resp:
        if not check(resp, 201, auth=user.auth, account=user.account):
            metrics.add("document_upload_failures")
            return None
        doc = json_of(resp)
        if not doc.get("id") or doc.get("size_bytes") != len(content):
            resp.failure(f"upload answered an unexpected document: {json.dumps(doc)[:200]}")
            metrics.add("document_upload_failures")
            return None
        metrics.add("document_uploads")
        user.documents.append(doc["id"])
        return doc["id"]


def get_document(user, doc_id: str, headers: dict[str, str]) -> dict[str, Any] | None:
    with user.client.get(
        f"{config.DOCUMENTS}/{doc_id}", name=config.DOCUMENTS + "/[id]", headers=headers, catch_response=True
    ) as resp:
        if resp.status_code == 404:
            # deleted by another admin user, or evicted by the server's cap
            if doc_id in user.documents:
                user.documents.remove(doc_id)
            resp.success()
            return None
        if check(resp, 200, auth=user.auth, account=user.account):
            return json_of(resp)
        return None


def delete_document(user, doc_id: str, headers: dict[str, str]) -> None:
    with user.client.delete(
        f"{config.DOCUMENTS}/{doc_id}", name=config.DOCUMENTS + "/[id]", headers=headers, catch_response=True
    ) as resp:
        if doc_id in user.documents:
            user.documents.remove(doc_id)
        if resp.status_code == 404:
            resp.success()  # already gone
            return
        check(resp, 204, 200, auth=user.auth, account=user.account)


def list_documents(user, headers: dict[str, str]) -> list[dict[str, Any]]:
    with user.client.get(
        config.DOCUMENTS + "?page=1&page_size=20", name=config.DOCUMENTS, headers=headers, catch_response=True
    ) as resp:
        if check(resp, 200, auth=user.auth, account=user.account):
            items = json_of(resp).get("items")
            if isinstance(items, list):
                return items
            resp.failure("document list without `items`")
    return []


class DocumentTasks(VisitTaskSet):
    def on_start(self) -> None:
        if not Capabilities.documents:
            raise InterruptTaskSet(reschedule=False)

    @tag("admin")
    @task(2)
    def upload(self) -> None:
        upload_document(self.user, self.headers())
        while len(self.user.documents) > config.MAX_DOCUMENTS_KEPT:
            delete_document(self.user, self.user.documents[0], self.headers())

    @tag("admin")
    @task(3)
    def list_documents(self) -> None:
        list_documents(self.user, self.headers())

    @tag("admin")
    @task(2)
    def get_document(self) -> None:
        if self.user.documents:
            get_document(self.user, random.choice(self.user.documents), self.headers())
        else:
            upload_document(self.user, self.headers())

    @tag("admin")
    @task(1)
    def delete_document(self) -> None:
        if self.user.documents:
            delete_document(self.user, self.user.documents[0], self.headers())


def admin_get(user, path: str, headers: dict[str, str], *keys: str) -> dict[str, Any] | None:
    with user.client.get(path, name=path.partition("?")[0], headers=headers, catch_response=True) as resp:
        if not check(resp, 200, auth=user.auth, account=user.account):
            return None
        body = json_of(resp)
        missing = [k for k in keys if k not in body]
        if missing:
            resp.failure(f"{path} answered without {', '.join(missing)}")
            return None
        return body


class AdminTasks(VisitTaskSet):
    @tag("admin")
    @task(3)
    def dashboard(self) -> None:
        admin_get(self.user, config.ADMIN_DASHBOARD, self.headers(), "users", "queries")

    @tag("admin")
    @task(2)
    def metrics(self) -> None:
        if Capabilities.admin_metrics:
            admin_get(self.user, config.ADMIN_METRICS, self.headers())

    @tag("admin")
    @task(2)
    def users(self) -> None:
        admin_get(self.user, config.ADMIN_USERS + "?page=1&page_size=20", self.headers(), "items", "total")


# --- health -------------------------------------------------------------------------------------------------------


class HealthTasks(VisitTaskSet):
    @tag("health")
    @task
    def health(self) -> None:
        with self.client.get(config.HEALTH, catch_response=True) as resp:
            if check(resp, 200) and json_of(resp).get("status") != "ok":
                resp.failure(f"/health is not ok: {(resp.text or '')[:200]}")


# --- realtime voice (WebSocket) -----------------------------------------------------------------------------------


def realtime_connect(user, path: str, name: str):
    """Open a WebSocket to ``path`` (with its ``?token=``) through the user's WebSocket client: locust-rs's
    ``WebSocketMixin`` (docs/websocket.md), whose ``connect(url_or_path, name=, timeout=)`` reports the handshake
    (request type ``WS``) and returns a connection with ``send``, ``send_json``, ``request(message, reply=, until=,
    name=, timeout=)`` and ``close``."""
    url = utils.ws_base(user.host) + path
    return user.connect(url, name=name, timeout=config.WS_RECEIVE_TIMEOUT_S)


def frames_of(reply) -> list[dict[str, Any]]:
    """The JSON object frames of a ``WebSocketReply``, in order (binary frames are skipped)."""
    out = []
    for message in reply.messages:
        if isinstance(message, str):
            try:
                frame = json.loads(message)
            except ValueError:
                continue
            if isinstance(frame, dict):
                out.append(frame)
    return out


class RealtimeVoiceTasks(VisitTaskSet):
    """Real-time voice mode over ``/api/realtime/ws?token=…``, one connection per user, kept across visits.

    Each exchange is a ``request`` of the WebSocket client, which measures it in Rust and reports it (request type
    ``WSRT``, send → the last frame; ``WSFF``, send → the first frame) under the names ``ws: message``,
    ``ws: voice`` and ``ws: ping``, which the thresholds use. A reply that arrives but is wrong (an ``error``
    frame, a voice answer without its transcript) is reported as a failure named ``<name> [invalid reply]``.
    """

    def on_start(self) -> None:
        if getattr(self.user, "realtime", None) is not None:
            return
        token = self.user.auth.token(self.user.account)
        if not token:
            raise InterruptTaskSet(reschedule=False)
        try:
            self.user.realtime = realtime_connect(self.user, f"{config.REALTIME_WS}?token={token}", config.REALTIME_WS)
        except RescheduleTask as e:  # the client's WebSocketError: it has reported the failed handshake already
            log.debug("realtime connect failed: %s", e)
            metrics.add("ws_connection_failures")
            raise InterruptTaskSet(reschedule=False) from None
        metrics.add("ws_connections")

    def _exchange(self, name: str, message: dict[str, Any], reply: tuple[str, ...], until: tuple[str, ...]):
        """``request`` on the user's connection; the reply's frames, or None when the exchange failed (it has been
        reported, and the connection dropped so that the next visit opens a new one)."""
        conn = self.user.realtime
        try:
            answer = conn.request(
                message,
                reply=reply + ("error",),
                until=until + ("error",),
                name=name,
                timeout=config.WS_RECEIVE_TIMEOUT_S,
            )
        except RescheduleTask:  # the client's WebSocketError (timeout, closed, ...): reported by the client
            close_realtime(self.user)
            return None
        frames = frames_of(answer)
        last = frames[-1] if frames else {}
        problem = None
        if last.get("type") == "error":
            problem = f"error frame {last.get('error')}: {last.get('detail') or last}"
        elif "transcript" in reply and not any(f.get("type") == "transcript" for f in frames):
            problem = f"{last.get('type')} without a transcript first"
        if problem is not None:
            self.user.environment.events.request.fire(
                request_type="WS",
                name=f"{name} [invalid reply]",
                response_time=answer.response_time,
                response_length=answer.response_length,
                response=answer,
                context=self.user.context(),
                exception=RuntimeError(problem),
                start_time=time.time() - answer.response_time / 1000,
                url=None,
            )
            return None
        return frames

    @tag("websocket")
    @task(4)
    def streamed_message(self) -> None:
        frames = self._exchange(
            "ws: message",
            {"type": "message", "content": utils.chat_query()},
            reply=("chunk", "message_complete"),
            until=("message_complete",),
        )
        if frames:
            record_answer(frames[-1])

    @tag("websocket")
    @task(2)
    def voice_utterance(self) -> None:
        conn = self.user.realtime
        try:
            conn.send_json({"type": "audio_start", "sample_rate": 16000})
            for chunk in utils.audio_frames():
                conn.send(chunk)
        except RescheduleTask:  # the connection is over: reported by the client
            close_realtime(self.user)
            return
        frames = self._exchange(
            "ws: voice",
            {"type": "audio_end"},
            reply=("transcript", "chunk", "message_complete"),
            until=("message_complete",),
        )
        if frames:
            record_answer(frames[-1])

    @tag("websocket")
    @task(1)
    def ping(self) -> None:
        self._exchange("ws: ping", {"type": "ping"}, reply=("pong",), until=("pong",))


def close_realtime(user) -> None:
    conn = getattr(user, "realtime", None)
    user.realtime = None
    if conn is not None:
        try:
            conn.close()
        except Exception as e:  # already closed by the server: nothing left to release
            log.debug("closing the realtime connection: %s", e)
