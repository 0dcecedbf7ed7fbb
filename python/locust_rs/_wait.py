"""A zero wait that yields to the hub only when the task did not.

Locust's ``TaskSet.wait`` ends in ``gevent.sleep(wait_time)``. With ``constant(0)`` that is a round trip through the
hub after every task, there so that a task that never blocks cannot starve the other greenlets. A task that sent a
request has already blocked: its greenlet waited in the hub while the hub's loop went round. So a zero wait is skipped
when the hub's loop has iterated since this user's last wait, and is a real ``gevent.sleep(0)`` otherwise, as in
Locust. Stop requests are unchanged: ``wait`` still checks the user's state before and after, and a kill lands at the
task's next blocking call.
"""

from __future__ import annotations

from locust.user.task import TaskSet

from gevent import sleep as _gevent_sleep

from locust_rs import _bridge

_KEY = "_locust_rs_wait_iteration"
_original = TaskSet._sleep


def _sleep(self, seconds) -> None:
    # The bridge's hub is the one every locust-rs request parks on; before the first request there is
    # nothing to skip. libev counts its loop's iterations; a loop without the counter always yields.
    if seconds == 0 and (b := _bridge._bridge) is not None:
        d = self.user.__dict__
        it = getattr(b.hub.loop, "iteration", None)
        if it is not None and d.get(_KEY, it) != it:
            d[_KEY] = it
            return
        _gevent_sleep(0)
        d[_KEY] = getattr(b.hub.loop, "iteration", None)
        return
    _gevent_sleep(seconds)


def install() -> None:
    TaskSet._sleep = _sleep


def uninstall() -> None:
    TaskSet._sleep = _original
