"""Helpers of the VoiceAssist suite: the target (the bundled demo server when none is configured), the pool of test
users and the AuthHelper that shares their tokens, response checks (429s are rate-limit hits, not errors), data
generators, the custom metrics and the performance thresholds.

Importing this module registers the suite's event listeners; every locustfile of the suite imports it.
"""

from __future__ import annotations

from locust import events
from locust.runners import MasterRunner, WorkerRunner

import json
import logging
import os
import random
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import config
import gevent
import gevent.lock
import gevent.pool
import requests

from locust_rs import thresholds as rs_thresholds

log = logging.getLogger("voiceassist")

# one id per process and run: makes generated names unique across workers
RUN_ID = uuid.uuid4().hex[:8]
# Request names of rate-limited answers: a 429 is reported as a success under this name, so Locust's failure
# count holds only real errors and the stats table shows how often each limit was hit (see check_results.py).
RATE_LIMITED_SUFFIX = " [429 rate-limited]"


# --- data generators ----------------------------------------------------------------------------------------------


def chat_query() -> str:
    """A sample query: mostly ones the knowledge base answers with citations, some off-topic ones."""
    if random.random() < config.KB_QUERY_SHARE:
        return random.choice(config.KB_QUERIES)
    return random.choice(config.OFF_TOPIC_QUERIES)


def follow_up_query() -> str:
    return random.choice(config.FOLLOW_UP_QUERIES)


def unique_email(prefix: str = "journey") -> str:
    return f"{prefix}-{RUN_ID}-{uuid.uuid4().hex[:12]}@{config.TEST_USER_DOMAIN}"


def pool_email(index: int) -> str:
    return f"{config.TEST_USER_PREFIX}-{index:04d}@{config.TEST_USER_DOMAIN}"


def sample_document() -> tuple[str, bytes, str]:
    """A sample document as ``(filename, content, content type)``, made unique so each upload is a new file."""
    filename, ctype, content = random.choice(config.SAMPLE_DOCUMENTS)
    stem, _, ext = filename.rpartition(".")
    tag = uuid.uuid4().hex[:10]
    if ctype == "application/pdf":
        # a comment line keeps the PDF valid
        content = content.replace(b"%%EOF", f"% load test {tag}\n%%EOF".encode())
    else:
        content = content + f"\nload test upload {tag}\n".encode()
    return f"{stem}-{tag}.{ext}", content, ctype


def audio_frames(count: int = config.AUDIO_FRAMES_PER_UTTERANCE) -> list[bytes]:
    """Frames of a fake utterance: 16 kHz mono 16-bit PCM, 100 ms each (noise; the demo server only counts it)."""
    return [random.randbytes(config.AUDIO_FRAME_BYTES) for _ in range(count)]


# --- custom metrics -----------------------------------------------------------------------------------------------

METRIC_NAMES = (
    "auth_failures",
    "rate_limit_hits",
    "ws_connections",
    "ws_connection_failures",
    "document_uploads",
    "document_upload_failures",
    "queries_answered",
    "queries_with_citations",
    "citations_returned",
    "threshold_warnings",
)


class CustomMetrics:
    """Counters the suite keeps beside Locust's statistics.

    Each process counts its own; workers send what they counted since their last report to the master
    (``report_to_master``), which adds it up (``worker_report``). At the end the master (or the standalone process)
    logs them and writes them to ``<csv prefix>_custom_metrics.json`` (or beside the ``--html`` report, or to
    ``VOICEASSIST_METRICS_FILE``).
    """

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.rate_limited: Counter[str] = Counter()  # per request name
        self._unsent: Counter[str] = Counter()
        self._unsent_rate_limited: Counter[str] = Counter()
        #: the tasks (``Class.method``) that began at least once: which thresholds the run's traffic can meet
        self.tasks_run: set[str] = set()
        self._unsent_tasks_run: set[str] = set()

    def add(self, metric: str, n: int = 1) -> None:
        if metric not in METRIC_NAMES:
            raise KeyError(f"unknown custom metric {metric!r}")
        self.counts[metric] += n
        self._unsent[metric] += n

    def rate_limit_hit(self, name: str) -> None:
        self.add("rate_limit_hits")
        self.rate_limited[name] += 1
        self._unsent_rate_limited[name] += 1

    def task_ran(self, name: str) -> None:
        if name not in self.tasks_run:
            self.tasks_run.add(name)
            self._unsent_tasks_run.add(name)

    def reset(self) -> None:
        self.__init__()

    def take_unsent(self) -> dict[str, Any]:
        data = {
            "counts": dict(self._unsent),
            "rate_limited": dict(self._unsent_rate_limited),
            "tasks_run": sorted(self._unsent_tasks_run),
        }
        self._unsent.clear()
        self._unsent_rate_limited.clear()
        self._unsent_tasks_run.clear()
        return data

    def merge(self, data: dict[str, Any]) -> None:
        self.counts.update(data.get("counts", {}))
        self.rate_limited.update(data.get("rate_limited", {}))
        self.tasks_run.update(data.get("tasks_run", ()))

    def summary(self) -> dict[str, Any]:
        c = {name: self.counts.get(name, 0) for name in METRIC_NAMES}
        answered = c["queries_answered"]
        c["citation_rate"] = round(c["queries_with_citations"] / answered, 4) if answered else None
        c["rate_limited_by_name"] = dict(self.rate_limited)
        return c


metrics = CustomMetrics()


class RecordsTasks:
    """A TaskSet mixin that notes each task (a function, not a nested TaskSet) as it begins, in
    ``metrics.tasks_run``: a threshold is checked when one of its tasks ran (see ``select_thresholds``)."""

    def execute_task(self, task) -> None:
        if not hasattr(task, "tasks"):
            metrics.task_ran(getattr(task, "__qualname__", ""))
        super().execute_task(task)


@events.test_start.add_listener
def _reset_metrics(environment, **_kw) -> None:
    metrics.reset()
    _threshold_warnings.clear()


@events.report_to_master.add_listener
def _send_metrics(client_id, data, **_kw) -> None:
    data["voiceassist_metrics"] = metrics.take_unsent()


@events.worker_report.add_listener
def _receive_metrics(client_id, data, **_kw) -> None:
    if "voiceassist_metrics" in data:
        metrics.merge(data["voiceassist_metrics"])


# --- response checks ----------------------------------------------------------------------------------------------


def retry_after(resp) -> float:
    try:
        return max(0.0, float(resp.headers.get("Retry-After") or 1))
    except (TypeError, ValueError):
        return 1.0


def check(resp, *ok: int, auth: AuthHelper | None = None, account: Account | None = None) -> bool:
    """Judge a ``catch_response=True`` response: True (success) when its status is one of ``ok``.

    * ``429``: the API's rate limit, expected under load. Reported as a success under the request's name plus
      ``[429 rate-limited]`` and counted as a rate-limit hit; the caller should back off (``retry_after``).
    * ``401``: counted as an authentication failure, the account's cached token is dropped (the next task logs in
      again), and the request fails.
    * anything else: a failure naming the status and the start of the body.
    """
    status = resp.status_code
    if status in ok:
        resp.success()
        return True
    if status == 429:
        name = resp.request_meta["name"]
        resp.request_meta["name"] = name + RATE_LIMITED_SUFFIX
        metrics.rate_limit_hit(name)
        if auth is not None and account is not None:
            auth.blocked(account, retry_after(resp))
        resp.success()
        return False
    if status == 401:
        metrics.add("auth_failures")
        if auth is not None and account is not None:
            auth.forget(account)
    if status == 0:
        resp.failure(f"no response: {getattr(resp, 'error', None)!r}")
    else:
        body = (resp.text or "")[:200] if status else ""
        resp.failure(f"unexpected status {status} (expected {'/'.join(map(str, ok))}): {body}")
    return False


def json_of(resp) -> dict[str, Any]:
    try:
        value = resp.json()
    except (ValueError, TypeError):
        return {}
    return value if isinstance(value, dict) else {}


# --- accounts and tokens ------------------------------------------------------------------------------------------


@dataclass
class Account:
    email: str
    password: str
    is_admin: bool = False


@dataclass
class Tokens:
    access: str
    refresh: str | None
    expires_at: float


@dataclass
class _Slot:
    lock: gevent.lock.Semaphore = field(default_factory=gevent.lock.Semaphore)
    tokens: Tokens | None = None
    blocked_until: float = 0.0


class AuthHelper:
    """Bearer tokens for the suite's accounts, shared by every user of a process.

    A token is fetched once per account and reused; it is refreshed through ``/api/auth/refresh`` when it has less
    than ``config.TOKEN_REFRESH_MARGIN_S`` left, and fetched again by logging in when the server refused it (401)
    or the refresh failed. One greenlet at a time fetches an account's token, so a hundred users sharing an account
    cause one login, not a hundred. After a 429 the account is not tried again before its Retry-After.

    Shared tokens are never logged out: the tasks that measure logout log in for a session of their own.
    """

    _slots: dict[str, _Slot] = {}

    def __init__(self, client) -> None:
        self.client = client

    @classmethod
    def clear(cls) -> None:
        cls._slots = {}

    @classmethod
    def seed(cls, account: Account, tokens: Tokens) -> None:
        cls._slots.setdefault(account.email, _Slot()).tokens = tokens

    @classmethod
    def cached_token(cls, account: Account) -> str | None:
        slot = cls._slots.get(account.email)
        return slot.tokens.access if slot is not None and slot.tokens is not None else None

    def _slot(self, account: Account) -> _Slot:
        return self._slots.setdefault(account.email, _Slot())

    def is_blocked(self, account: Account) -> bool:
        return self._slot(account).blocked_until > time.time()

    def blocked(self, account: Account, seconds: float) -> None:
        self._slot(account).blocked_until = time.time() + seconds

    def forget(self, account: Account) -> None:
        self._slot(account).tokens = None

    def token(self, account: Account) -> str | None:
        """A valid access token for the account, or None when it cannot be had now (the failure is reported)."""
        slot = self._slot(account)
        tokens = slot.tokens
        if tokens is not None and tokens.expires_at - time.time() > config.TOKEN_REFRESH_MARGIN_S:
            return tokens.access
        with slot.lock:
            tokens = slot.tokens  # another greenlet may have fetched it meanwhile
            if tokens is not None and tokens.expires_at - time.time() > config.TOKEN_REFRESH_MARGIN_S:
                return tokens.access
            if tokens is not None and tokens.refresh:
                refreshed = self.refresh(account, tokens)
                if refreshed is not None:
                    slot.tokens = refreshed
                    return refreshed.access
            if self.is_blocked(account):
                return None
            slot.tokens = self.login(account)
            return slot.tokens.access if slot.tokens else None

    def headers(self, account: Account) -> dict[str, str] | None:
        token = self.token(account)
        return {"Authorization": f"Bearer {token}"} if token else None

    def login(self, account: Account, name: str = config.LOGIN) -> Tokens | None:
        """Log in (a measured request); the new tokens, or None after a failure or a 429."""
        with self.client.post(
            config.LOGIN,
            json={"email": account.email, "password": account.password},
            name=name,
            catch_response=True,
        ) as resp:
            if not check(resp, 200, auth=self, account=account):
                if resp.status_code not in (429, 401):
                    metrics.add("auth_failures")
                return None
            body = json_of(resp)
            if not body.get("access_token"):
                resp.failure("login answered 200 without an access_token")
                metrics.add("auth_failures")
                return None
            return tokens_from(body)

    def refresh(self, account: Account, tokens: Tokens) -> Tokens | None:
        with self.client.post(config.REFRESH, json={"refresh_token": tokens.refresh}, catch_response=True) as resp:
            if not check(resp, 200, auth=self, account=account):
                if resp.status_code != 401:
                    metrics.add("auth_failures")
                return None
            body = json_of(resp)
            return Tokens(body["access_token"], tokens.refresh, time.time() + float(body.get("expires_in", 900)))


def tokens_from(body: dict[str, Any]) -> Tokens:
    return Tokens(body["access_token"], body.get("refresh_token"), time.time() + float(body.get("expires_in", 900)))


ADMIN = Account(config.ADMIN_EMAIL, config.ADMIN_PASSWORD, is_admin=True)


class UserPool:
    """Regular test accounts, registered (or found already registered) and logged in before the test.

    Each load-generating process (standalone, worker) prepares the pool on ``test_start``, before any user spawns.
    These set-up requests go around Locust's statistics: they are not part of the load.
    """

    accounts: list[Account] = []

    @classmethod
    def prepare(cls, host: str, size: int = config.USER_POOL_SIZE) -> None:
        accounts = [Account(pool_email(i), config.TEST_USER_PASSWORD) for i in range(size)]
        started = time.time()
        session = requests.Session()
        # as many at a time as the session keeps connections (urllib3's pool: 10)
        group = gevent.pool.Pool(10)
        jobs = [group.spawn(_prepare_account, session, host, a) for a in accounts + [ADMIN]]
        gevent.joinall(jobs, timeout=60)
        ready = [a for a, job in zip(accounts, jobs, strict=False) if job.successful() and job.value]
        cls.accounts = ready or accounts  # on failure the users log in themselves and report what goes wrong
        log.info(
            "user pool: %d of %d test accounts ready in %.1f s (%s)",
            len(ready),
            size,
            time.time() - started,
            host,
        )

    @classmethod
    def pick(cls) -> Account:
        if not cls.accounts:
            cls.accounts = [Account(pool_email(i), config.TEST_USER_PASSWORD) for i in range(config.USER_POOL_SIZE)]
        return random.choice(cls.accounts)


def _prepare_account(session: requests.Session, host: str, account: Account) -> bool:
    body = {"email": account.email, "password": account.password, "full_name": "Load Test User"}
    for _ in range(3):
        try:
            if not account.is_admin:
                r = session.post(host + config.REGISTER, json=body, timeout=10)
                if r.status_code == 429:
                    gevent.sleep(min(retry_after(r), 10))
                    continue
                if r.status_code not in (201, 409):
                    log.warning("user pool: registering %s gave %s: %s", account.email, r.status_code, r.text[:200])
                    return False
            r = session.post(
                host + config.LOGIN, json={"email": account.email, "password": account.password}, timeout=10
            )
            if r.status_code == 429:
                gevent.sleep(min(retry_after(r), 10))
                continue
            if r.status_code != 200:
                log.warning("user pool: logging in %s gave %s: %s", account.email, r.status_code, r.text[:200])
                return False
            AuthHelper.seed(account, tokens_from(r.json()))
            return True
        except (requests.RequestException, ValueError, KeyError) as e:
            log.warning("user pool: %s: %s", account.email, e)
            return False
    return False


@events.test_start.add_listener
def _prepare_pool(environment, **_kw) -> None:
    if isinstance(environment.runner, MasterRunner) or not environment.host:
        return
    AuthHelper.clear()
    UserPool.prepare(environment.host.rstrip("/"))


# --- the target ---------------------------------------------------------------------------------------------------


class _Target:
    server = None  # the bundled demo server, when this process started one


def demo_options() -> dict[str, Any]:
    """Options for the bundled demo server from ``VOICEASSIST_DEMO_OPTIONS`` (``name=value,name=value``)."""
    out: dict[str, Any] = {}
    for item in filter(None, (os.environ.get("VOICEASSIST_DEMO_OPTIONS") or "").split(",")):
        name, _, value = item.partition("=")
        try:
            out[name.strip()] = json.loads(value)
        except ValueError:
            out[name.strip()] = value.strip()
    return out


@events.init.add_listener
def _choose_target(environment, **_kw) -> None:
    """--host wins, then VOICEASSIST_BASE_URL, then the bundled demo server, started here.

    Only the master or the standalone process starts it: workers (``--worker``, or the children of ``--processes``)
    learn the host from the master with each spawn message, so they must not start a server of their own.
    """
    if environment.host:
        return
    if config.BASE_URL:
        environment.host = config.BASE_URL.rstrip("/")
        return
    if isinstance(environment.runner, WorkerRunner):
        return
    from locust_rs import demo

    _Target.server = demo.start(host="127.0.0.1", port=0, **demo_options())
    environment.host = _Target.server.url
    log.info(
        "No host configured (--host or VOICEASSIST_BASE_URL): using the bundled VoiceAssist demo server at %s",
        environment.host,
    )


@events.quitting.add_listener
def _stop_target(environment, **_kw) -> None:
    if _Target.server is not None:
        _Target.server.stop()
        _Target.server = None


def ws_base(host: str) -> str:
    """The WebSocket base URL: VOICEASSIST_WS_URL, else the HTTP host with http→ws, https→wss."""
    if config.WS_URL:
        return config.WS_URL.rstrip("/")
    if host.startswith("https://"):
        return "wss://" + host[len("https://") :].rstrip("/")
    if host.startswith("http://"):
        return "ws://" + host[len("http://") :].rstrip("/")
    return host.rstrip("/")


@events.init.add_listener
def _drop_users_without_tasks(environment, **_kw) -> None:
    """With ``--tags``/``--exclude-tags``, a user type can be left without tasks (AdminUser under ``--tags
    websocket``); Locust would spawn it anyway and it would fail. Filter now and leave such types out."""
    if isinstance(environment.runner, WorkerRunner):
        return  # the master decides which types run
    options = environment.parsed_options
    if not (getattr(options, "tags", None) or getattr(options, "exclude_tags", None)):
        return
    environment._filter_tasks_by_tags()  # idempotent; Locust calls it again at test start
    kept = [u for u in environment.user_classes if u.tasks]
    dropped = [u.__name__ for u in environment.user_classes if u not in kept]
    if dropped and kept:
        environment.user_classes[:] = kept
        log.info("no tasks left after the tag filter: not spawning %s", ", ".join(dropped))


# --- thresholds ---------------------------------------------------------------------------------------------------

_threshold_warnings: Counter[str] = Counter()
# first warnings per threshold and process written out in full; the rest are counted and summed up at the end
WARNINGS_LOGGED_PER_THRESHOLD = 5
_BY_NAME = {name: t for t in config.THRESHOLDS for name in t.names}


@events.request.add_listener
def _warn_on_threshold(request_type, name, response_time, exception=None, **_kw) -> None:
    t = _BY_NAME.get(name)
    if t is None or exception is not None or response_time is None or response_time <= t.limit_ms:
        return
    if t.request_types is not None and request_type not in t.request_types:
        return
    metrics.add("threshold_warnings")
    _threshold_warnings[t.key] += 1
    n = _threshold_warnings[t.key]
    if n <= WARNINGS_LOGGED_PER_THRESHOLD:
        more = " (further ones are counted, not logged)" if n == WARNINGS_LOGGED_PER_THRESHOLD else ""
        log.warning(
            "threshold exceeded: %s %s took %.0f ms, limit %g ms%s", request_type, name, response_time, t.limit_ms, more
        )


def _tasks_in_run(user_classes) -> set[str]:
    """The tasks (``Class.method``) the run's users can run, after Locust's tag filter."""
    found: set[str] = set()
    seen: set[int] = set()

    def walk(holder) -> None:
        for t in holder.tasks:
            if id(t) in seen:
                continue
            seen.add(id(t))
            if hasattr(t, "tasks"):
                walk(t)
            else:
                found.add(getattr(t, "__qualname__", ""))

    for user_class in user_classes:
        walk(user_class)
    return found


#: the key of the error-rate threshold, which every run checks
ERROR_RATE = "error_rate"
#: the suite's thresholds, registered with locust-rs at import (key -> locust_rs.thresholds.Threshold)
_registered: dict[str, Any] = {}


def register_thresholds() -> None:
    """Registers every ``config.THRESHOLDS`` group, and the error rate of all requests, with locust-rs, which checks
    them with its own rules (a group the run made no request of fails), prints the verdict last and sets the exit
    code (99 when one is crossed). At import, so that the web UI has its Thresholds tab; each run then skips those it
    cannot meet (:py:func:`select_thresholds`, :py:func:`_skip_thresholds_not_run`)."""
    if ERROR_RATE not in _registered:
        _registered[ERROR_RATE] = rs_thresholds.add(f"error_rate<{config.MAX_ERROR_RATE:.0%}", label="All requests")
    for t in config.THRESHOLDS:
        if t.key not in _registered:
            _registered[t.key] = rs_thresholds.add(t.expression, names=t.request_names, label=t.label)


def select_thresholds(environment, unavailable: dict[str, str] | None = None) -> None:
    """At test start: checks the thresholds one of whose tasks is in the run (after ``--tags``/``--exclude-tags``),
    less those ``unavailable`` names (key -> why: a route the target lacks); skips the others, saying why."""
    present = _tasks_in_run(environment.user_classes)
    unavailable = unavailable or {}
    left_out = []
    for t in config.THRESHOLDS:
        why = unavailable.get(t.key) or ("" if present & set(t.tasks) else "no task of this run makes these requests")
        if why:
            rs_thresholds.skip(environment, _registered[t.key], why)
            left_out.append(f"{t.label} ({why})")
        else:
            rs_thresholds.unskip(environment, _registered[t.key])
    if left_out and not isinstance(environment.runner, WorkerRunner):
        log.info("thresholds not checked in this run: %s", "; ".join(left_out))


def _skip_thresholds_not_run(environment) -> None:
    """At the end, before the verdict: a threshold none of whose tasks began (a short run whose one admin never
    visited the documents, a route the target lacks) is not checked. One whose task began but made none of its
    requests (every visit ended before it, for want of a token say) stays, and fails for no data."""
    already = {id(t) for t, _why in rs_thresholds.skipped(environment)}
    for t in config.THRESHOLDS:
        threshold = _registered[t.key]
        if id(threshold) not in already and not metrics.tasks_run & set(t.tasks):
            rs_thresholds.skip(environment, threshold, "none of the tasks that make these requests ran")


def threshold_results(environment) -> list[dict[str, Any]]:
    """locust-rs's verdict on the suite's thresholds (and any given with ``--threshold``), for the metrics file."""
    keys = {id(v): k for k, v in _registered.items()}
    return [
        {"key": keys.get(id(r.threshold)), "label": r.threshold.label, **r.as_dict()}
        for r in rs_thresholds.results(environment)
    ]


register_thresholds()


# --- end of run -------------------------------------------------------------------------------------------------


def metrics_path(environment) -> str | None:
    options = environment.parsed_options
    if os.environ.get("VOICEASSIST_METRICS_FILE"):
        return os.environ["VOICEASSIST_METRICS_FILE"]
    if options is not None and getattr(options, "csv_prefix", None):
        return options.csv_prefix + "_custom_metrics.json"
    if options is not None and getattr(options, "html_file", None):
        base = options.html_file[:-5] if options.html_file.endswith(".html") else options.html_file
        return base + "_custom_metrics.json"
    return None


_report_lock = threading.Lock()


@events.quitting.add_listener
def _final_report(environment, **_kw) -> None:
    # Runs before locust-rs's own quitting listener (Locust fires quitting in reverse): the verdict taken here is
    # the one locust-rs prints last and sets the exit code from.
    if isinstance(environment.runner, WorkerRunner):
        return
    with _report_lock:
        summary = metrics.summary()
        _skip_thresholds_not_run(environment)
        rs_thresholds.finish(environment)
        verdict = threshold_results(environment)
        log.info("custom metrics: %s", json.dumps({k: v for k, v in summary.items() if k != "rate_limited_by_name"}))
        if summary["rate_limited_by_name"]:
            log.info("rate-limit hits by request: %s", json.dumps(summary["rate_limited_by_name"]))
        path = metrics_path(environment)
        if path:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            with open(path, "w") as f:
                json.dump(
                    {
                        "custom_metrics": summary,
                        "thresholds": verdict,
                        "thresholds_passed": all(r["passed"] for r in verdict),
                        "thresholds_not_checked": [
                            {"label": t.label, "expression": t.expression, "reason": why}
                            for t, why in rs_thresholds.skipped(environment)
                        ],
                        "host": environment.host,
                        "written_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    },
                    f,
                    indent=2,
                )
            log.info("custom metrics and the threshold verdict written to %s", path)
