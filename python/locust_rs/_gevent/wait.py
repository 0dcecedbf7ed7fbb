"""A zero wait that yields to the hub only when the task did not.

Locust's ``TaskSet.wait`` ends in ``gevent.sleep(wait_time)``. With ``constant(0)`` that is a round trip through the
hub after every task, there so that a task that never blocks cannot starve the other greenlets. A task that sent a
request has already blocked: its greenlet waited in the hub while the hub's loop went round, or (the inline engine,
which can answer within one of gevent's runs of callbacks) until the bridge handed out a batch. So a zero wait is
skipped when the hub's loop has iterated or the bridge has handed out since this task set's last wait, and is a real
``gevent.sleep(0)`` otherwise, as in Locust. Stop requests are unchanged: ``wait`` still checks the user's state
before and after, and a kill lands at the task's next blocking call.
"""

from __future__ import annotations

from locust.user.task import TaskSet

from gevent import sleep as _gevent_sleep

from locust_rs._gevent import bridge as _bridge

_original = TaskSet._sleep


def _sleep(self, seconds) -> None:
    # The bridge's hub is the one every locust-rs request parks on; before the first request there is
    # nothing to skip. libev counts its loop's iterations; a loop without the counter always yields.
    if seconds == 0 and (b := _bridge._bridge) is not None:
        it = getattr(b.hub.loop, "iteration", None)
        if it is not None:
            # Both only grow: their sum moves when either does.
            it += b.batches
        # A plain attribute of the task set, never through ``__dict__``: reading an instance's ``__dict__`` makes
        # CPython give up its inline attribute values, which slowed every later attribute read of the object
        # (about 2 % of a request's instructions when it was the user's). A task set's first wait always yields,
        # and a nested task set's sleep counts as blocking for its parent's next wait.
        # The class holds the default (None: no wait yet), so a task set's own ``__getattr__`` is never asked.
        last = self._locust_rs_wait_iteration
        if it is not None and last is not None and last != it:
            self._locust_rs_wait_iteration = it
            return
        _gevent_sleep(0)
        it = getattr(b.hub.loop, "iteration", None)
        self._locust_rs_wait_iteration = None if it is None else it + b.batches
        return
    _gevent_sleep(seconds)


# The ignores: an attribute added to Locust's class, and its method replaced, on purpose.
def install() -> None:
    TaskSet._locust_rs_wait_iteration = None  # type: ignore[attr-defined]
    TaskSet._sleep = _sleep  # type: ignore[method-assign]


def uninstall() -> None:
    TaskSet._sleep = _original  # type: ignore[method-assign]
