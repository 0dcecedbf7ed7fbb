"""Helpers of the contract tests: run one scenario through two FastHttpSession implementations, compare the records.

The reference is Locust's own ``locust.contrib.fasthttp``; the candidate is ``locust_rs``. A *scenario* is a callable
``scenario(session, ctx)`` that makes requests and returns what it observed (plain data: dicts, lists, str, bytes,
numbers). Running it yields a *record*: that return value plus every ``request_event.fire(**kw)``, both normalized
(ports, memory addresses, per-run tags and timestamps replaced by placeholders) so that two runs of the same
implementation give equal records. The contract is: the candidate's record equals the reference's.

What is compared of a fired event:

* the exact set of keyword names;
* ``request_type``, ``name``, ``url``, ``context``, ``response_length``;
* the exception: qualified type name, ``str()`` and ``repr()`` (normalized), and the type of its ``original``
  attribute where there is one (geventhttpclient's RetriesExceeded);
* the ``response``'s ``status_code`` and whether it is a ResponseContextManager, read at fire time;
* ``response_time`` and ``start_time`` only as sanity checks (a float >= 0 no longer than the scenario; a start time
  inside the scenario's run), since their values can never be equal between two runs.

What is *not* compared: anything geventhttpclient-specific (``_response``, ``request`` objects, ``client``), the
User-Agent header's value (``tests/servers.py`` leaves it out of ``/echo``), timings beyond the checks above.
"""

import copy
import difflib
import http.client
import json
import os
import pprint
import re
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gevent
import pytest

EVENT_KEYS = frozenset(
    {
        "request_type",
        "name",
        "response_time",
        "response_length",
        "response",
        "context",
        "exception",
        "start_time",
        "url",
    }
)

DEFAULT_USER_CONTEXT = {"user": "u1"}

# Response headers compared by ``observe``. Queried in lower case while the server sends them capitalized, so the
# comparison also covers the case-insensitivity of the headers mapping. Date and Server are left out: they vary.
OBSERVED_HEADERS = (
    "content-type",
    "content-length",
    "content-encoding",
    "transfer-encoding",
    "connection",
    "location",
    "set-cookie",
    "www-authenticate",
)

# Wall-clock bound of one scenario run. A run needing longer is a hang (the server's slowest answer is 3 s).
SCENARIO_TIMEOUT = 20.0

# Slack on the timing sanity checks, for the clock granularity and the time between fire() and our listener.
TIME_SLACK_S = 1.0

_MISSING = object()


# ---- implementations ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Impl:
    """One implementation under test: the three classes the contract is about."""

    name: str
    FastHttpSession: type
    FastHttpUser: type
    ResponseContextManager: type


def load_impl(name: str) -> Impl:
    """Import an implementation by id (``ref`` or ``rs``). An ImportError propagates: a missing package fails."""
    if name == "ref":
        from locust.contrib import fasthttp as module
    elif name == "rs":
        import locust_rs as module
    else:
        raise ValueError(f"unknown implementation {name!r}")
    return Impl(name, module.FastHttpSession, module.FastHttpUser, module.ResponseContextManager)


@dataclass(frozen=True)
class Endpoints:
    """Where the scenarios send requests; all on loopback, all shared by the whole test session."""

    base_url: str  # the test server, http://127.0.0.1:PORT
    refused_url: str  # nothing listens there
    blackhole_url: str  # connecting there hangs


class ContextUser:
    """The smallest ``user`` a FastHttpSession accepts: it only ever calls ``user.context()``."""

    def __init__(self, context: dict | None = None):
        self._context = dict(DEFAULT_USER_CONTEXT if context is None else context)

    def context(self) -> dict:
        return dict(self._context)


class SessionFactory:
    """Builds sessions of one implementation, wired to a recording ``locust.event.EventHook``.

    The implementation is imported on first use, i.e. inside the test, so that a missing or broken package makes
    the test fail rather than error out (or be skipped) during fixture set-up.
    """

    def __init__(self, impl_name: str, endpoints: Endpoints):
        self.impl_name = impl_name
        self.endpoints = endpoints
        self._impl: Impl | None = None

    @property
    def impl(self) -> Impl:
        if self._impl is None:
            self._impl = load_impl(self.impl_name)
        return self._impl

    def __call__(self, base_url: Any = _MISSING, *, request_event=None, user: Any = _MISSING, **kwargs):
        from locust.event import EventHook

        return self.impl.FastHttpSession(
            self.endpoints.base_url if base_url is _MISSING else base_url,
            EventHook() if request_event is None else request_event,
            ContextUser() if user is _MISSING else user,
            **kwargs,
        )

    def __repr__(self) -> str:
        return f"SessionFactory({self.impl_name!r})"


# ---- normalization -----------------------------------------------------------------------------------------------


class Normalizer:
    """Replaces what legitimately differs between two runs by placeholders, in str and bytes, recursively."""

    def __init__(self, replacements: dict[str, str], ports: dict[int, str]):
        # Object addresses first: an address's digits may contain a port number (0x7f9f<PORT>b50).
        text_rules: list[tuple[re.Pattern, str]] = [(re.compile(r"0x[0-9a-fA-F]{6,}"), "0x?")]
        for literal, placeholder in replacements.items():
            text_rules.append((re.compile(re.escape(literal)), placeholder))
        for port, placeholder in ports.items():
            text_rules.append((re.compile(rf"(?<!\d){port}(?!\d)"), placeholder))
        self._text_rules = text_rules
        self._bytes_rules = [(re.compile(p.pattern.encode()), r.encode()) for p, r in text_rules]

    # the cache-busting parameter of RestMixin.rest_(): milliseconds since the epoch, recognised by being "now"
    _EPOCH_MS = re.compile(r"(?<!\d)\d{13}(?!\d)")
    _EPOCH_MS_BYTES = re.compile(_EPOCH_MS.pattern.encode())

    @staticmethod
    def _is_now_ms(digits) -> bool:
        return abs(int(digits) - time.time() * 1000) < 86_400_000

    def text(self, value: str) -> str:
        for pattern, placeholder in self._text_rules:
            value = pattern.sub(placeholder, value)
        return self._EPOCH_MS.sub(lambda m: "<MS>" if self._is_now_ms(m.group()) else m.group(), value)

    def __call__(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, (bytes, bytearray)):
            value = bytes(value)
            for pattern, placeholder in self._bytes_rules:
                value = pattern.sub(placeholder, value)
            return self._EPOCH_MS_BYTES.sub(lambda m: b"<MS>" if self._is_now_ms(m.group()) else m.group(), value)
        if isinstance(value, dict):
            return {self(k): self(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(self(v) for v in value)
        return value


def qualified_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def describe_exception(exc: BaseException | None) -> dict | None:
    """The comparable face of an exception: exact type, str() and repr(); normalization happens later."""
    if exc is None:
        return None
    described = {"type": qualified_name(type(exc)), "str": str(exc), "repr": repr(exc)}
    original = getattr(exc, "original", _MISSING)
    if original is not _MISSING:
        described["original_type"] = None if original is None else qualified_name(type(original))
    return described


def probe(fn: Callable[[], Any]) -> dict:
    """Call ``fn``: ``{"value": result}`` or ``{"raises": describe_exception(e)}``."""
    try:
        return {"value": fn()}
    except Exception as e:  # noqa: BLE001 - what is raised is exactly what we want to compare
        return {"raises": describe_exception(e)}


# ---- recording ---------------------------------------------------------------------------------------------------


class Recorder:
    """Listener for a request EventHook: keeps a comparable copy of each fired event, plus checkpoints.

    The response object is only read at fire time, and only its status code: reading its body here would consume a
    streamed response before the scenario gets to it.
    """

    def __init__(self, impl: Impl):
        self.impl = impl
        self.log: list[dict] = []
        self.started = time.time()

    def __call__(self, **kw):
        now = time.time()
        response = kw.get("response")
        response_time = kw.get("response_time")
        start_time = kw.get("start_time")
        elapsed_ms = (now - self.started + TIME_SLACK_S) * 1000
        self.log.append(
            {
                "event": "request",
                # spelled out only when wrong, to keep records (and diffs) readable
                "keys": "as expected" if set(kw) == EVENT_KEYS else sorted(kw),
                "request_type": kw.get("request_type"),
                "name": kw.get("name"),
                "url": kw.get("url"),
                "context": copy.deepcopy(kw.get("context")),
                "response_length": kw.get("response_length"),
                "exception": describe_exception(kw.get("exception")),
                "response": None
                if response is None
                else {
                    "status_code": probe(lambda: response.status_code),
                    "is_response_context_manager": isinstance(response, self.impl.ResponseContextManager),
                },
                "response_time_ok": isinstance(response_time, float) and 0 <= response_time <= elapsed_ms,
                "start_time_ok": isinstance(start_time, float)
                and self.started - TIME_SLACK_S <= start_time <= now + TIME_SLACK_S,
            }
        )

    def checkpoint(self, label: str):
        self.log.append({"checkpoint": label})


# ---- scenarios ---------------------------------------------------------------------------------------------------


class ScenarioContext:
    """What a scenario gets besides its session: more sessions or users of the same implementation, and probes.

    Everything created through it reports to the same recorder, so the record shows all events in firing order.
    """

    def __init__(self, factory: SessionFactory, recorder: Recorder, tag: str):
        from locust.event import EventHook

        self.factory = factory
        self.impl = factory.impl
        self.endpoints = factory.endpoints
        self.base_url = factory.endpoints.base_url
        self.refused_url = factory.endpoints.refused_url
        self.blackhole_url = factory.endpoints.blackhole_url
        self.tag = tag  # unique per run: lets ``hits`` count this run's requests only
        self.recorder = recorder
        self.request_event = EventHook()
        self.request_event.add_listener(recorder)
        self.sessions: list[Any] = []

    def url(self, path: str) -> str:
        return self.base_url + path

    def session(self, base_url: Any = _MISSING, **kwargs):
        """A new session of the implementation under test (own cookie jar and pool), reporting to the recorder."""
        session = self.factory(base_url, request_event=self.request_event, **kwargs)
        self.sessions.append(session)
        return session

    def user(self, host: Any = _MISSING, **class_attrs):
        """An instance of a throw-away subclass of the implementation's FastHttpUser, in a fresh Environment."""
        from locust.env import Environment

        attrs = {"host": self.base_url if host is _MISSING else host, **class_attrs}
        user_class = type(f"Contract{self.impl.name.capitalize()}User", (self.impl.FastHttpUser,), attrs)
        environment = Environment(user_classes=[user_class])
        environment.events.request.add_listener(self.recorder)
        user = user_class(environment)
        self.sessions.append(user.client)
        return user

    def checkpoint(self, label: str):
        """Mark a point of the scenario in the event log: shows whether an event fired before or after it."""
        self.recorder.checkpoint(label)

    def observe(self, response, *, content: bool = True, json_body: bool = True, headers=OBSERVED_HEADERS) -> dict:
        """Everything comparable about a response, each read guarded (an exception is an observation too).

        ``content=False`` leaves the body alone (for streamed responses the scenario reads itself).
        """
        obs = {
            "is_response_context_manager": isinstance(response, self.impl.ResponseContextManager),
            "status_code": probe(lambda: response.status_code),
            "ok": probe(lambda: response.ok),
            "url": probe(lambda: response.url),
            "headers_is_none": probe(lambda: response.headers is None),
        }
        if getattr(response, "headers", None) is not None:
            obs["headers"] = {name: probe(lambda name=name: response.headers.get(name)) for name in headers}
            obs["headers_contains"] = {name: probe(lambda name=name: name in response.headers) for name in headers}
        if content:
            obs["content"] = probe(lambda: response.content)
            obs["text"] = probe(lambda: response.text)
            obs["encoding"] = probe(lambda: response.encoding)
            if json_body:
                obs["json"] = probe(lambda: response.json())
        error = getattr(response, "error", _MISSING)
        obs["error"] = "<no attribute>" if error is _MISSING else describe_exception(error)
        obs["raise_for_status"] = probe(lambda: response.raise_for_status())
        return obs

    def hits(self, tag: str | None = None) -> int:
        """How many requests carrying ``tag=<tag>`` (default: this run's tag) the server has seen.

        Asks with the stdlib, not the implementation under test, so the question itself is never recorded.
        """
        host, port = self.base_url.rsplit("/", 1)[-1].rsplit(":", 1)
        conn = http.client.HTTPConnection(host, int(port), timeout=5)
        try:
            conn.request("GET", f"/hits?tag={tag or self.tag}")
            return json.loads(conn.getresponse().read())["hits"]
        finally:
            conn.close()

    def close(self):
        # only Locust's session has a way to drop its pooled sockets; for the candidate, garbage collection does it
        if self.impl.name == "ref":
            for session in self.sessions:
                client = getattr(session, "client", None)
                if client is not None and hasattr(client, "close"):
                    client.close()


Scenario = Callable[[Any, ScenarioContext], Any]


def run_scenario(factory: SessionFactory, scenario: Scenario, **session_kwargs) -> tuple[dict, str | None]:
    """Run ``scenario(session, ctx)`` once with ``factory``'s implementation.

    Returns the normalized record and, if the scenario raised, the formatted traceback (the exception itself is
    part of the record as ``outcome.raised``).
    """
    impl = factory.impl
    recorder = Recorder(impl)
    tag = f"t{uuid.uuid4().hex[:16]}"
    ctx = ScenarioContext(factory, recorder, tag)
    tb = None
    try:
        with gevent.Timeout(SCENARIO_TIMEOUT, AssertionError(f"scenario still running after {SCENARIO_TIMEOUT}s")):
            session = ctx.session(**session_kwargs)
            outcome = {"returned": scenario(session, ctx)}
    except Exception as e:  # noqa: BLE001 - the exception is part of the record
        outcome = {"raised": describe_exception(e)}
        tb = traceback.format_exc()
    finally:
        ctx.close()
    parsed = [
        (factory.endpoints.base_url, "<PORT>"),
        (factory.endpoints.refused_url, "<REFUSED_PORT>"),
        (factory.endpoints.blackhole_url, "<BLACKHOLE_PORT>"),
    ]
    normalizer = Normalizer(
        replacements={tag: "<TAG>"},
        ports={int(url.rsplit(":", 1)[1]): placeholder for url, placeholder in parsed},
    )
    return normalizer({"outcome": outcome, "events": recorder.log}), tb


def format_record(record: Any) -> str:
    return pprint.pformat(record, width=120, sort_dicts=True)


def diff_records(reference: Any, candidate: Any) -> str:
    return "\n".join(
        difflib.unified_diff(
            format_record(reference).splitlines(),
            format_record(candidate).splitlines(),
            fromfile="reference (locust.contrib.fasthttp)",
            tofile="candidate",
            lineterm="",
        )
    )


# the reference record of each scenario, computed once per test session (key: see Contract)
_REFERENCE_RECORDS: dict[tuple, dict] = {}


class Contract:
    """Bound to one test and one candidate implementation; ``check`` compares a scenario against the reference."""

    def __init__(self, candidate: SessionFactory, key: tuple):
        self.candidate = candidate
        self.reference = SessionFactory("ref", candidate.endpoints)
        self.key = key
        self._calls = 0

    @property
    def endpoints(self) -> Endpoints:
        return self.candidate.endpoints

    def reference_record(self, scenario: Scenario, *, allow_raise: bool, **session_kwargs) -> dict:
        key = (*self.key, self._calls, repr(sorted(session_kwargs.items())))
        if key not in _REFERENCE_RECORDS:
            record, tb = run_scenario(self.reference, scenario, **session_kwargs)
            if tb is not None and not allow_raise:
                # a scenario that blows up on Locust itself is a broken test, not a contract
                pytest.fail(f"scenario raised with the reference implementation:\n{tb}", pytrace=False)
            _REFERENCE_RECORDS[key] = record
            if os.environ.get("LOCUST_RS_CONTRACT_DUMP"):
                print(f"\nreference record of {self.key}:\n{format_record(record)}")
        return _REFERENCE_RECORDS[key]

    def check(self, scenario: Scenario, *, allow_raise: bool = False, **session_kwargs) -> dict:
        """Run ``scenario`` with the reference, then with the candidate; fail with a diff unless the records match.

        ``session_kwargs`` go to the constructor of the session handed to the scenario (``base_url`` included).
        ``allow_raise``: the scenario is expected to let an exception escape (it is then compared like the rest).
        Returns the reference record, for extra assertions on Locust's behaviour itself.
        """
        reference = self.reference_record(scenario, allow_raise=allow_raise, **session_kwargs)
        self._calls += 1
        candidate, tb = run_scenario(self.candidate, scenario, **session_kwargs)
        for record, who in ((reference, "reference"), (candidate, self.candidate.impl_name)):
            for event in record["events"]:
                if event.get("event") == "request" and event["keys"] != "as expected":
                    pytest.fail(f"{who}: event keys {event['keys']} != {sorted(EVENT_KEYS)}", pytrace=False)
        if candidate != reference:
            message = f"contract differs from Locust's FastHttpSession:\n{diff_records(reference, candidate)}"
            if tb is not None:
                message += f"\n\nthe scenario raised with {self.candidate.impl_name}:\n{tb}"
            pytest.fail(message, pytrace=False)
        return reference


# Header names and values for both contract suites: what is sent as it is, re-encoded, or refused.
HEADER_CASES = {
    "latin1": {"X-A": "café"},
    "not-latin1": {"X-A": "a€b"},
    "bytes": {"X-A": b"caf\xc3\xa9"},
    "int": {"X-A": 5},
    "newline-value": {"X-A": "a\nb"},
    "crlf-name": {"X\r\nB": "x"},
    "empty-name": {"": "x"},
    "space-name": {"X A": "v"},
}
