"""Settings of the VoiceAssist load-test suite: target, test users, task weights, wait times, sample data and the
performance thresholds. Everything a run may want to change without editing code is read from the environment.

* ``VOICEASSIST_BASE_URL``: the API under test (e.g. ``http://staging.example.com:8000``). Unset, and with no
  ``--host``, the suite starts the bundled demo server (``locust_rs.demo``) in the master (or standalone) process.
* ``VOICEASSIST_WS_URL``: the WebSocket base (``ws://…``); derived from the HTTP host when unset.
* ``VOICEASSIST_ADMIN_EMAIL`` / ``VOICEASSIST_ADMIN_PASSWORD``: the admin account (the demo server's seeded admin
  by default).
* ``VOICEASSIST_TEST_USER_PASSWORD``, ``VOICEASSIST_USER_POOL_SIZE``, ``VOICEASSIST_TEST_USER_PREFIX``: the pool of
  regular test users registered before the test.
* ``VOICEASSIST_METRICS_FILE``: where the custom metrics go when neither ``--csv`` nor ``--html`` names a place.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

# --- target -------------------------------------------------------------------------------------------------------

BASE_URL: str | None = os.environ.get("VOICEASSIST_BASE_URL") or None
WS_URL: str | None = os.environ.get("VOICEASSIST_WS_URL") or None

# paths, shared with the demo server (docs/demo-server.md)
HEALTH = "/health"
REGISTER = "/api/auth/register"
LOGIN = "/api/auth/login"
REFRESH = "/api/auth/refresh"
LOGOUT = "/api/auth/logout"
ME = "/api/users/me"
CHAT_QUERY = "/api/chat/query"
CONVERSATIONS = "/api/conversations"
DOCUMENTS = "/api/admin/kb/documents"
ADMIN_DASHBOARD = "/api/admin/dashboard"
ADMIN_METRICS = "/api/admin/metrics"
ADMIN_USERS = "/api/admin/users"
REALTIME_WS = "/api/realtime/ws"

# --- test users and credentials -----------------------------------------------------------------------------------

ADMIN_EMAIL = os.environ.get("VOICEASSIST_ADMIN_EMAIL", "admin@voiceassist.local")
ADMIN_PASSWORD = os.environ.get("VOICEASSIST_ADMIN_PASSWORD", "admin12345")
TEST_USER_PASSWORD = os.environ.get("VOICEASSIST_TEST_USER_PASSWORD", "LoadTest-2024!")
# Deterministic addresses: a second run against the same server finds them registered (409) and logs in, so runs
# against a real deployment do not pile up accounts.
TEST_USER_PREFIX = os.environ.get("VOICEASSIST_TEST_USER_PREFIX", "loadtest-user")
TEST_USER_DOMAIN = "example.com"
# Accounts each load-generating process registers (or finds) before the test and shares among its users. More
# accounts spread the per-account login rate limit (60 a minute on the demo server).
USER_POOL_SIZE = int(os.environ.get("VOICEASSIST_USER_POOL_SIZE", "20"))
# A cached access token is refreshed when it has less than this left, seconds.
TOKEN_REFRESH_MARGIN_S = 60.0

# --- task weights (relative, per user type) -----------------------------------------------------------------------

USER_WEIGHTS = {"RegularUser": 70, "PowerUser": 20, "AdminUser": 10}

TASK_WEIGHTS = {
    "RegularUser": {"chat": 6, "conversations": 2, "realtime": 1, "health": 1, "auth": 1},
    "PowerUser": {"chat": 8, "conversations": 4, "realtime": 3, "health": 1, "auth": 1},
    "AdminUser": {"admin": 4, "documents": 3, "health": 1, "auth": 1},
}

# --- wait times between tasks, seconds (min, max) -----------------------------------------------------------------

WAIT_TIMES = {
    "RegularUser": (1.0, 3.0),
    "PowerUser": (0.5, 1.5),
    "AdminUser": (1.0, 3.0),
    "UserJourney": (0.5, 1.5),
    "AdminWorkflow": (0.5, 1.5),
    "Stress": (0.1, 0.5),
    "Spike": (0.5, 2.0),
    "Soak": (2.0, 5.0),
}

# --- sample queries -----------------------------------------------------------------------------------------------

# Queries the demo knowledge base answers with citations (crates/voiceassist-demo/src/kb.rs: each names some of an
# article's keywords).
KB_QUERIES = [
    "What is VoiceAssist about?",
    "Which features does it have, does chat show citations?",
    "How much does the Team plan cost and is there a free trial?",
    "Is my data encrypted, are you GDPR and HIPAA compliant?",
    "Can I integrate with Slack or Salesforce via webhooks?",
    "Troubleshooting: VoiceAssist gives an error, how do I fix it?",
    "My microphone audio is not recording",
    "Which languages are supported, can it translate Spanish?",
    "How do I refresh an expired API token?",
    "What are the rate limits, why do I get a 429?",
    "How do I upload a PDF document to the knowledge base?",
    "How long is conversation history kept, can I export my data?",
    "How do admin roles and permissions work with SSO?",
]
# Queries that match no article: the answer has no citations (they lower the citation rate, as real traffic does).
OFF_TOPIC_QUERIES = [
    "Tell me a joke about penguins",
    "What's the weather in Lisbon tomorrow?",
    "Recommend a good science fiction novel",
    "How tall is Mount Kilimanjaro?",
]
# Share of chat queries drawn from KB_QUERIES; the rest are off-topic.
KB_QUERY_SHARE = 0.8
FOLLOW_UP_QUERIES = [
    "Can you tell me more about that?",
    "And what about pricing for that?",
    "Does that work with voice too?",
]

# --- sample documents ---------------------------------------------------------------------------------------------

# (filename, content type, content); the upload tasks add a unique line so each upload is a new document.
SAMPLE_DOCUMENTS = [
    (
        "onboarding-guide.md",
        "text/markdown",
        b"# Onboarding guide\n\nCreate an account, log in, and ask VoiceAssist a question by chat or by voice.\n",
    ),
    (
        "faq.txt",
        "text/plain",
        b"Q: Which audio format does voice mode use?\nA: 16 kHz mono PCM frames.\n",
    ),
    (
        "security-whitepaper.pdf",
        "application/pdf",
        b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
        b"2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n",
    ),
]
# Documents the admin workflow keeps at most before it deletes the oldest it uploaded.
MAX_DOCUMENTS_KEPT = 20
# How long the admin workflow waits for an upload to leave "processing", seconds.
DOCUMENT_READY_TIMEOUT_S = 10.0

# --- realtime voice -----------------------------------------------------------------------------------------------

# 16 kHz mono 16-bit PCM, 100 ms per frame
AUDIO_FRAME_BYTES = 3200
AUDIO_FRAMES_PER_UTTERANCE = 10
# Longest wait for one server frame, seconds
WS_RECEIVE_TIMEOUT_S = 10.0

# --- performance thresholds ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Threshold:
    """A response-time limit for a group of requests, checked by locust-rs's thresholds (``locust_rs.thresholds``).

    A request over ``limit_ms`` logs a warning as it happens. At the end of the run the group fails its threshold
    when its ``percentile`` response time is over the limit (k6 style: ``p(95)<1000``), or when the run made none of
    its requests. So a run checks only the thresholds its traffic can meet: those of which one of ``tasks`` is in
    the run, after ``--tags`` and ``--exclude-tags``.
    """

    key: str
    label: str
    limit_ms: float
    #: request names (as in Locust's statistics) the threshold applies to
    names: tuple[str, ...]
    percentile: float = 0.95
    #: request types it applies to (None: any); the WebSocket client reports a streamed reply twice, as ``WSFF``
    #: (the first frame) and ``WSRT`` (the last), and the limit is on the whole reply
    request_types: tuple[str, ...] | None = None
    #: the tasks (``Class.method``) that make these requests: the run checks the threshold when one of them is in it
    tasks: tuple[str, ...] = ()

    @property
    def expression(self) -> str:
        """The k6-style expression, as ``--threshold`` takes it: ``p(95)<1000``."""
        return f"p({self.percentile * 100:g})<{self.limit_ms:g}"

    @property
    def request_names(self) -> tuple[str, ...]:
        """The names as ``locust_rs.thresholds`` takes them: ``TYPE name`` where the request types are given."""
        if self.request_types is None:
            return self.names
        return tuple(f"{t} {n}" for n in self.names for t in self.request_types)


#: The largest share of failed requests a run passes with, checked as the threshold ``error_rate<5%`` (the suite
#: reports a 429 as a success, so rate limits are not errors) and by scripts/check_results.py's default.
MAX_ERROR_RATE = 0.05

THRESHOLDS = (
    Threshold(
        "login", "Login", 1000, (LOGIN,), tasks=("AuthTasks.session", "UserJourney.login", "AdminWorkflow.login")
    ),
    Threshold(
        "chat",
        "Chat query",
        3000,
        (CHAT_QUERY,),
        tasks=("ChatTasks.new_question", "ChatTasks.follow_up", "UserJourney.query"),
    ),
    Threshold(
        "upload",
        "Document upload",
        10000,
        (DOCUMENTS + " [upload]",),
        tasks=("DocumentTasks.upload", "AdminWorkflow.upload"),
    ),
    Threshold("health", "Health check", 500, (HEALTH,), tasks=("HealthTasks.health",)),
    Threshold(
        "ws_message",
        "WebSocket message",
        5000,
        ("ws: message", "ws: voice"),
        request_types=("WSRT",),
        tasks=("RealtimeVoiceTasks.streamed_message", "RealtimeVoiceTasks.voice_utterance"),
    ),
)
