"""The VoiceAssist load test: three user types on locust-rs's Rust HTTP engine.

    locust -f locustfiles/locustfile.py                      # bundled demo server, web UI
    locust -f locustfiles/locustfile.py --headless -u 10 -r 10 -t 2m --host http://localhost:8000

=============  ======  ==============================================================================
user type      weight  does
=============  ======  ==============================================================================
RegularUser    70      chat questions, conversations, some voice, health and auth
PowerUser      20      more chat and follow-ups, more conversations and voice, shorter think times
AdminUser      10      dashboard, metrics, users, knowledge-base documents (upload/list/get/delete)
=============  ======  ==============================================================================

With no ``--host`` and no ``VOICEASSIST_BASE_URL`` the bundled demo server is started in the master (or
standalone) process; see ``utils.py``. Weights, wait times, queries, documents and thresholds are in ``config.py``.
"""

from __future__ import annotations

from locust import between

import config
import utils
from tasks import (
    AdminTasks,
    AuthTasks,
    ChatTasks,
    ConversationTasks,
    DocumentTasks,
    HealthTasks,
    RealtimeVoiceTasks,
    close_realtime,
)

from locust_rs import FastHttpUser, WebSocketMixin

TASK_SETS = {
    "chat": ChatTasks,
    "conversations": ConversationTasks,
    "realtime": RealtimeVoiceTasks,
    "health": HealthTasks,
    "auth": AuthTasks,
    "admin": AdminTasks,
    "documents": DocumentTasks,
}


def weighted_tasks(user_type: str) -> dict:
    return {TASK_SETS[area]: weight for area, weight in config.TASK_WEIGHTS[user_type].items()}


class VoiceAssistUser(WebSocketMixin, FastHttpUser):
    """What every VoiceAssist user has: an account from the pool, the shared AuthHelper, and the ids it created."""

    abstract = True

    def on_start(self) -> None:
        self.account = utils.UserPool.pick()
        self.auth = utils.AuthHelper(self.client)
        self.conversations: list[str] = []
        self.documents: list[str] = []
        self.realtime = None

    def on_stop(self) -> None:
        close_realtime(self)
        super().on_stop()  # the WebSocket mixin closes what is left


class RegularUser(VoiceAssistUser):
    weight = config.USER_WEIGHTS["RegularUser"]
    wait_time = between(*config.WAIT_TIMES["RegularUser"])
    tasks = weighted_tasks("RegularUser")


class PowerUser(VoiceAssistUser):
    weight = config.USER_WEIGHTS["PowerUser"]
    wait_time = between(*config.WAIT_TIMES["PowerUser"])
    tasks = weighted_tasks("PowerUser")


class AdminUser(VoiceAssistUser):
    weight = config.USER_WEIGHTS["AdminUser"]
    wait_time = between(*config.WAIT_TIMES["AdminUser"])
    tasks = weighted_tasks("AdminUser")

    def on_start(self) -> None:
        super().on_start()
        self.account = utils.ADMIN
