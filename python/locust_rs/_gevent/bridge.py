"""The gevent side of the gevent <-> tokio bridge.

A request is submitted to Rust, which queues it and returns a ticket at once. The calling greenlet
parks in the hub (what ``gevent.hub.Waiter.get`` does, without an object per request). Queued jobs
go to tokio together (``flush``): when a greenlet parks, unless the hub is handing out a batch of
completions, in which case the batch's end flushes what the greenlets it resumed submitted (one
wakeup of tokio for all of them); and, as a backstop, before each iteration of the hub's loop.

When tokio finishes requests it wakes a handle, once per batch (an eventfd on Linux, a pipe on
other Unixes, a socket on Windows); a hub io watcher on that handle drains every finished request
in one Rust call and switches straight into each waiting greenlet. The watcher keeps the loop
alive (``ref``) only while someone is waiting, so an idle locust process can still exit, and a
lone waiter does not get ``LoopExit``.

With the inline engine (``LOCUST_RS_ENGINE=inline``), tokio runs on this thread instead: the hub
runs it (``_turn``) before each wait of its loop and when the runtime's epoll fd is ready, and
hands out what finished at once. Every request still parks its greenlet on a ticket; nothing is
flushed by a greenlet, since the turn before the hub waits starts what was queued.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from gevent import get_hub
from greenlet import getcurrent

from locust_rs import _native

_READ = 1
# A cap per wakeup so that a flood of completions cannot starve the hub's timers.
_BATCH = 512
# The inline engine: at most this many drives and hand-outs per turn, and how long the hub may
# wait without a turn while jobs run (their timeouts: tokio does not say when its timers are due).
_TURNS = 8
_TIMER_TICK = 0.001


class _Bridge:
    __slots__ = (
        "hub", "fd", "waiters", "watcher", "prepare", "pid", "in_batch", "inline", "engine", "tick", "turn_due",
        "stopped", "batches",
    )  # fmt: skip

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.hub = get_hub()
        self.fd = _native.wakeup_fd()
        self.waiters: dict[int, Any] = {}  # ticket id -> the greenlet parked on it
        self.watcher = self.hub.loop.io(self.fd, _READ)
        self.watcher.start(self._on_ready)
        self.watcher.ref = False
        self.in_batch = False
        self.stopped = False
        # Hand-outs so far: a greenlet resumed by one had blocked, even where the loop did not go round meanwhile
        # (the inline engine can answer within one of gevent's runs of callbacks): see ``wait.py``.
        self.batches = 0
        # Runs before the loop polls: nothing submitted can wait for a flush across a blocking poll. At gevent's own
        # priority, so before gevent's prepare watcher, which runs its callbacks (libev runs same-priority prepare
        # watchers last-started first): a callback a turn schedules runs in that same pass. Below it, such a
        # callback waited out the poll (the hub slept with a turn due).
        self.prepare = self.hub.loop.prepare(ref=False)
        engine_fd = _native.engine_fd()
        self.inline = engine_fd is not None
        self.engine = self.tick = None
        self.turn_due = False
        if engine_fd is None:
            self.prepare.start(_native.flush)
        else:
            self.prepare.start(self._turn)
            self.engine = self.hub.loop.io(engine_fd, _READ)
            self.engine.start(self._turn)
            self.engine.ref = False
            self.tick = self.hub.loop.timer(_TIMER_TICK, _TIMER_TICK, ref=False)

    def _turn(self) -> None:
        """The inline engine's turn: runs it, hands out what finished, and runs it again for what the greenlets
        resumed submitted, until a run finishes nothing."""
        self.turn_due = False
        for _ in range(_TURNS):
            if self.stopped:
                # A fork child, whose hub was inside this turn (or had it queued) when the parent forked: the
                # engine and completions it would drive and drain are the child's bridge's now.
                return
            state = _native.drive()
            if not state & 1:
                break
            self._on_ready()
        else:
            # Still finishing work after that many runs: the loop's other watchers go first, then another turn.
            self._turn_soon()
            return
        if state & 2:
            self._turn_soon()
        tick = self.tick
        assert tick is not None  # made with the inline engine, the only one that turns
        if state & 4:
            if not tick.active:
                tick.start(self._turn)
        elif tick.active:
            tick.stop()

    def _turn_soon(self) -> None:
        """A turn before the hub next waits (a callback: the loop then polls without waiting)."""
        if not self.turn_due:
            self.turn_due = True
            self.hub.loop.run_callback(self._turn)

    def _on_ready(self) -> None:
        if self.stopped:
            return
        self.batches += 1
        waiters = self.waiters
        self.in_batch = True
        try:
            for ticket_id, value in _native.drain(_BATCH):
                glet = waiters.pop(ticket_id, None)
                # No waiter: its greenlet was killed or timed out, and this late result is dropped.
                if glet is not None:
                    try:
                        glet.switch(value)
                    except BaseException:  # noqa: BLE001 - as gevent's Waiter.switch: the hub reports it
                        self.hub.handle_error(glet.switch, *sys.exc_info())
        finally:
            self.in_batch = False
            if not self.inline:
                _native.flush()
        if not waiters:
            self.watcher.ref = False

    def stop(self) -> None:
        self.stopped = True
        self.watcher.stop()
        self.prepare.stop()
        for w in (self.engine, self.tick):
            if w is not None:
                w.stop()
        self.waiters.clear()


_bridge: _Bridge | None = None


def _get() -> _Bridge:
    global _bridge
    if _bridge is None:
        _bridge = _Bridge()
    return _bridge


def wait(ticket):
    """Parks the current greenlet until ``ticket`` completes and returns its value.

    If the greenlet is killed or times out meanwhile, the Rust task is aborted and the waiter
    removed before the exception propagates, so nothing is left pending.
    """
    b = _bridge or _get()
    if not b.in_batch:
        if not b.inline:
            _native.flush()
        elif not b.turn_due:
            # A greenlet resumed by one of gevent's callbacks runs while the loop prepares to wait, maybe after the
            # bridge's own prepare watcher ran: its job must still start before the hub waits.
            b._turn_soon()
    waiters = b.waiters
    if not waiters:
        b.watcher.ref = True
    tid = ticket.id
    waiters[tid] = getcurrent()
    try:
        # What Waiter.get does once it has to wait: the hub switches back with the value.
        return b.hub.switch()
    except BaseException:
        ticket.cancel()
        if waiters.pop(tid, None) is not None and not waiters:
            b.watcher.ref = False
        raise


def pending() -> int:
    """Number of greenlets currently waiting on the engine (for tests and diagnostics)."""
    return len(_bridge.waiters) if _bridge is not None else 0


def _after_fork_in_child() -> None:
    # The child inherits the parent's watcher on the parent's wakeup handle; left started, it would
    # fire on the parent's wakeups. The native side builds a fresh runtime and handle lazily. The old
    # bridge may still be on the hub's stack (the fork came from a greenlet it resumed) or queued as
    # a callback: stopped, it drains nothing that the child's bridge waits for.
    global _bridge
    old, _bridge = _bridge, None
    if old is not None:
        try:
            old.stop()
        except Exception:  # noqa: BLE001 - a half-torn-down loop must not break the fork
            pass


if hasattr(os, "register_at_fork"):  # not on Windows, which has no fork
    os.register_at_fork(after_in_child=_after_fork_in_child)
