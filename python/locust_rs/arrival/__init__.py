"""Open-model load: iterations started at a rate for the whole test, as k6's arrival-rate executors do.

::

    from locust import task
    from locust_rs import FastHttpUser, constant_arrival_rate

    class Api(FastHttpUser):
        wait_time = constant_arrival_rate(500, max_users=200)  # 500 iterations/s in all, whatever the server does

        @task
        def query(self):
            self.client.get("/api/query")

An iteration is one run of a task. Its start is due on a clock held in Rust (``_native.ArrivalSchedule``), and
does not depend on when earlier iterations ended. The users Locust starts (``-u``) are a pool: a due iteration
goes to the longest-idle one. With none idle it waits for a user that locust-rs starts for it, while the class
holds fewer than ``max_users``; otherwise it is dropped and counted. Either way nothing is delayed silently:
every iteration's start lag (when it began minus when it was due) is recorded, and its first request is also
measured from when it was due (the corrected histogram). The clock starts when the class's first user asks for
an iteration; iterations due before Locust has spawned ``-u`` users wait for the users it spawns next (start lag)
or are dropped, so give ``-r`` room (``-r`` equal to ``-u`` spawns them all in the first second).

k6's names: ``rate`` / ``time_unit`` / ``stages`` / ``start_rate`` as k6's; ``-u`` is ``preAllocatedVUs`` and
``max_users`` is ``maxVUs``; ``dropped_iterations`` is k6's metric of that name. A load shape's ``arrival_rate()``
changes the rate while the test runs; a master splits each rate across its workers (``locust_rs.arrival.report``). See
docs/open-model.md.
"""

from __future__ import annotations

from locust.exception import StopUser
from locust.runners import HEARTBEAT_INTERVAL, HEARTBEAT_LIVENESS, STATE_SPAWNING, WorkerRunner
from locust.user.task import TaskSet
from locust.util.timespan import parse_timespan

import logging
import math
import os
from collections.abc import Iterable

import gevent

from locust_rs import _native
from locust_rs._gevent import bridge as _bridge
from locust_rs._locust import state as _state

logger = logging.getLogger(__name__)

QUANTILES = (0.5, 0.9, 0.99, 0.999)
QUANTILE_LABELS = ("p50", "p90", "p99", "p99.9")


class ArrivalRate:
    """A user class's ``wait_time`` that starts its iterations at a rate for the whole test (see the module docs).
    Called as a wait time it returns 0: the wait is for the iteration's due time, before each task."""

    def __init__(
        self,
        start_rate: float,
        stages: list[tuple[float, float]],
        *,
        max_users: int | None,
        poisson: bool,
        seed: int | None,
        kind: str,
    ) -> None:
        if max_users is not None and not _is_u64(max_users):
            raise ValueError(f"max_users must be a whole number of users (0 or more), not {max_users!r}")
        if seed is not None and not _is_u64(seed):
            raise ValueError(f"seed must be a whole number from 0 to 2**64 - 1, or None, not {seed!r}")
        self.start_rate = start_rate
        self.stages = stages
        self.max_users = max_users
        self.poisson = bool(poisson)
        self.seed = seed
        self.kind = kind
        # The same checks the clock makes, now: a bad rate fails at import, not at spawning_complete.
        _native.ArrivalSchedule(start_rate, stages, self.poisson, 0, seed)
        _install()

    def __call__(self, *_args) -> float:
        return 0.0

    def __repr__(self) -> str:
        if self.kind == "constant":
            return f"constant_arrival_rate({self.stages[0][1]:g}/s, max_users={self.max_users})"
        stages = ", ".join(f"({d:g} s, {r:g}/s)" for d, r in self.stages)
        return f"ramping_arrival_rate(start_rate={self.start_rate:g}/s, stages=[{stages}], max_users={self.max_users})"


def _is_u64(n) -> bool:
    """A whole number the native clock holds (its counts and seeds are 64-bit): a larger one would fail later, in a
    user's task, with an OverflowError that names nothing."""
    return isinstance(n, int) and not isinstance(n, bool) and 0 <= n < 2**64


def _per_second(rate: float, time_unit) -> float:
    unit = _seconds(time_unit, "time_unit", finite=True)
    if isinstance(rate, bool) or not isinstance(rate, int | float):
        raise ValueError(f"a rate must be a number of iterations, not {rate!r}")
    return float(rate) / unit


def _seconds(value, what: str, finite: bool = False) -> float:
    """Seconds from a number or a timespan such as ``"30s"``: more than 0, and (``finite``) less than forever."""
    seconds = value
    if isinstance(value, str):
        try:
            seconds = float(parse_timespan(value))
        except ValueError as e:
            raise ValueError(f"{what} {value!r}: {e}") from None
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not seconds > 0:
        raise ValueError(f"{what} must be a positive number of seconds or a timespan like '30s', not {value!r}")
    if finite and not math.isfinite(seconds):
        raise ValueError(f"{what} must be a finite number of seconds, not {value!r}")
    return float(seconds)


def constant_arrival_rate(
    rate: float,
    *,
    time_unit: float | str = 1,
    max_users: int | None = None,
    poisson: bool = False,
    seed: int | None = None,
) -> ArrivalRate:
    """``rate`` iterations per ``time_unit`` (seconds, or a timespan such as ``"1m"``) for the whole test, evenly
    spread or (``poisson=True``) as a Poisson process. ``max_users``: the most users this class may have; locust-rs
    starts users beyond Locust's ``-u`` up to it when none is free (default: none beyond ``-u``)."""
    r = _per_second(rate, time_unit)
    return ArrivalRate(r, [(float("inf"), r)], max_users=max_users, poisson=poisson, seed=seed, kind="constant")


def ramping_arrival_rate(
    stages: Iterable,
    *,
    start_rate: float = 0,
    time_unit: float | str = 1,
    max_users: int | None = None,
    poisson: bool = False,
    seed: int | None = None,
) -> ArrivalRate:
    """k6's ``ramping-arrival-rate``: from ``start_rate``, a linear ramp to each stage's target over its duration.
    A stage is ``(duration, target)`` or k6's ``{"duration": "30s", "target": 100}``; durations in seconds or as
    timespans, targets per ``time_unit``. After the last stage no iteration starts."""
    parsed = []
    for i, stage in enumerate(stages, 1):
        if isinstance(stage, dict):
            try:
                duration, target = stage["duration"], stage["target"]
            except KeyError as e:
                raise ValueError(f"stage {i} {stage!r} has no {e.args[0]!r}") from None
        else:
            try:
                duration, target = stage
            except (TypeError, ValueError):
                raise ValueError(f"stage {i} {stage!r} is not (duration, target)") from None
        parsed.append((_seconds(duration, f"stage {i} duration"), _per_second(target, time_unit)))
    return ArrivalRate(
        _per_second(start_rate, time_unit),
        parsed,
        max_users=max_users,
        poisson=poisson,
        seed=seed,
        kind="ramping",
    )


class _Iteration:
    """A user's current iteration, which its sessions read: the first request sent after it began is measured
    from when it was due too (``lead``)."""

    __slots__ = ("schedule", "due")

    def __init__(self, schedule) -> None:
        self.schedule = schedule
        self.due: int | None = None

    def lead(self) -> float:
        """Milliseconds from when the iteration was due until now for its first request; 0 for the others."""
        due = self.due
        if due is None:
            return 0.0
        self.due = None
        return self.schedule.since(due)

    def lead_before(self, response_time: float | None) -> float:
        """The lead of a request measured after it ended (a WebSocket round trip, whose send time the session does
        not see): from when the iteration was due until ``response_time`` ms ago."""
        if self.due is None:
            return 0.0
        return max(0.0, self.lead() - (response_time or 0.0))


#: How long after a worker falls silent its master gives its share to the other workers (s): Locust's master counts a
#: worker missing once HEARTBEAT_LIVENESS heartbeats (one a second) have not come, on its next look, and the split
#: follows on the next tick of the arrival monitor (:py:mod:`locust_rs.arrival.report`). Measured on loopback: 4.5 to
#: 5.5 s after a link was cut.
SHARE_MOVES_AFTER = HEARTBEAT_INTERVAL * (HEARTBEAT_LIVENESS + 2)


class _Pool:
    """One user class's schedule in this process, and the greenlet that starts the users it asks for."""

    def __init__(self, user_class, rate: ArrivalRate, manual_clock: bool = False) -> None:
        self.user_class = user_class
        self.rate = rate
        self.schedule = _native.ArrivalSchedule(
            rate.start_rate, rate.stages, rate.poisson, 0, rate.seed, manual_clock=manual_clock
        )
        self.spawner = None
        self.environment = None
        self.started = False
        # The hub's watcher on the clock's alarm, where the hub drives the clock (Linux).
        self.alarm = None

    def start(self, environment) -> None:
        """Starts the clock, with the pool capped at ``max_users`` (default: the users Locust was asked for)."""
        self.started = True
        self.environment = environment
        runner = environment.runner
        name = self.user_class.__name__
        s = self.schedule
        cap = self.rate.max_users
        if cap is None:
            target = getattr(runner, "target_user_classes_count", None) or {}
            cap = int(target.get(name) or getattr(runner, "user_classes_count", {}).get(name, 0))
        s.max_users = max(cap, 0)
        state = _state.of(environment, _Arrival)
        s.share = state.share if state.share is not None else (0.0 if isinstance(runner, WorkerRunner) else 1.0)
        s.target = state.targets.get(name)
        if isinstance(runner, WorkerRunner):
            # In a stall longer than that, the master has given this worker's share to the others.
            s.covered_after = SHARE_MOVES_AFTER
        s.start()
        if self.alarm is None:
            self.alarm = watch(s)
        if self.spawner is None and runner is not None:
            self.spawner = gevent.spawn(self._spawn_users, runner)

    def _spawn_users(self, runner) -> None:
        name = self.user_class.__name__
        s = self.schedule
        while True:
            n = _bridge.wait(s.wanted_users())
            if not isinstance(n, int):
                return
            # While Locust ramps up, its own next users take the waiting iterations, and users started beside them
            # would be stopped again by its next step: wait for the ramp, then start what the cap still allows.
            while runner.state == STATE_SPAWNING:
                gevent.sleep(0.1)
            # The users of the class Locust holds: those started and not yet in the pool count against the cap too.
            held = int((getattr(runner, "user_classes_count", None) or {}).get(name, 0))
            n = min(n, s.max_users - max(held, s.snapshot()["users"]))
            if n <= 0:
                continue
            try:
                runner.spawn_users({name: n})
            except Exception:  # noqa: BLE001 - a runner that cannot spawn leaves those iterations to the pool
                logger.exception("arrival rate: could not start %d %s users", n, name)

    def stop(self) -> None:
        self.started = True  # until the next test: no restart by a late user
        self.schedule.stop()
        if self.alarm is not None:
            self.alarm.stop()
            self.alarm = None
        if self.spawner is not None:
            self.spawner.kill(block=False)
            self.spawner = None


def watch(schedule):
    """Has this thread's gevent hub move ``schedule``'s clock on, where the hub drives it (Linux): the hub wakes when
    the next iteration is due and releases it itself (``tick``). Returns the watcher, to be stopped before the
    schedule goes; None where a thread of its own drives the clock. Unreferenced: a clock alone does not keep the
    process alive; its users waiting for their iterations do."""
    fd = schedule.timer_fd()
    if fd is None:
        return None
    watcher = gevent.get_hub().loop.io(fd, 1)
    watcher.start(schedule.tick)
    watcher.ref = False
    return watcher


class _Arrival:
    """The open model's state of one run in this process (on its environment, :py:mod:`locust_rs._locust.state`)."""

    def __init__(self) -> None:
        #: each arrival-rate class's pool
        self.pools: dict[type, _Pool] = {}
        self.pid = os.getpid()
        #: this process's part of every rate, once set: on a worker, what the master says. Until then 1 alone, and 0
        #: on a worker: a worker joining a running test can start its users before its ``init`` handlers have run.
        self.share: float | None = None
        #: rates set while running (a load shape's ``arrival_rate()``) in place of the classes' own, by class name
        self.targets: dict[str, float] = {}
        #: whether the pools' clocks move only with :py:func:`advance_clock` (tests in process)
        self.manual_clock = False


def _arrival(environment) -> _Arrival:
    state = _state.of(environment, _Arrival)
    if state.pid != os.getpid():
        # A fork child (`--processes`) starts its own clocks; the parent's were never started.
        state.pools.clear()
        state.pid = os.getpid()
    return state


def set_share(environment, share: float) -> None:
    """This process's part of every arrival rate, in force at once (``distributed``: 1/n on each of n workers)."""
    state = _arrival(environment)
    state.share = share
    for pool in state.pools.values():
        pool.schedule.share = share


def set_target(environment, name: str, rate: float | None) -> None:
    """A rate (per second, whole test) for the class ``name`` in place of its stages, from now on; None: back to
    its stages."""
    state = _arrival(environment)
    if rate is None:
        state.targets.pop(name, None)
    else:
        state.targets[name] = float(rate)
    for cls, pool in state.pools.items():
        if cls.__name__ == name:
            pool.schedule.target = rate


def use_manual_clock(environment) -> None:
    """For tests that run Locust's runner in process: the clocks of ``environment``'s arrival-rate classes (made from
    now on) stand still but for :py:func:`advance_clock`, so what falls due, and when, does not depend on the
    machine's speed. Start lags and the corrected histograms are measured on that clock too."""
    state = _arrival(environment)
    if state.pools:
        raise RuntimeError("use_manual_clock() must come before the first arrival-rate user runs")
    state.manual_clock = True


def advance_clock(environment, seconds: float) -> None:
    """Moves the manual clock of every started arrival-rate class on by ``seconds``, releasing what fell due."""
    state = _arrival(environment)
    if not state.manual_clock:
        raise RuntimeError("advance_clock() needs use_manual_clock() first")
    for pool in state.pools.values():
        if pool.schedule.running:
            pool.schedule.advance(seconds)


def targets(environment) -> dict[str, float]:
    """The rates set while running, by class name."""
    return _arrival(environment).targets


def pools(environment) -> dict[type, _Pool]:
    """This process's arrival-rate classes and their pools."""
    return _arrival(environment).pools


def _pool(environment, user_class) -> _Pool | None:
    state = _arrival(environment)
    p = state.pools.get(user_class)
    if p is None:
        rate = getattr(user_class, "wait_time", None)
        if type(rate) is not ArrivalRate:
            return None
        p = state.pools[user_class] = _Pool(user_class, rate, state.manual_clock)
    return p


def _own(user, name: str):
    """The user's attribute ``name``, or None; never asks the class's ``__getattr__``, if it has one."""
    try:
        return object.__getattribute__(user, name)
    except AttributeError:
        return None


def iteration(user) -> _Iteration | None:
    """The iteration holder of a user whose class starts its iterations at a rate, for its sessions; None for any
    other user. Makes the statistics keep the corrected histogram."""
    if user is None or type(getattr(type(user), "wait_time", None)) is not ArrivalRate:
        return None
    # Plain attributes, not ``user.__dict__``: reading an instance's ``__dict__`` makes CPython give up its inline
    # attribute values, which slows every later attribute read of the user.
    it = _own(user, "_locust_rs_iteration")
    if it is None:
        pool = _pool(user.environment, type(user))
        assert pool is not None  # the class's wait_time is an ArrivalRate (checked above)
        it = user._locust_rs_iteration = _Iteration(pool.schedule)
        core = getattr(getattr(user.environment, "stats", None), "core", None)
        if core is not None:
            core.correcting = True
    return it


def _begin(user) -> None:
    """Waits for the user's next iteration to be due, then begins it."""
    it = _own(user, "_locust_rs_iteration") or iteration(user)
    assert it is not None  # called for users of arrival-rate classes only
    schedule = it.schedule
    pool = _arrival(user.environment).pools.get(type(user))
    if not _own(user, "_locust_rs_pooled"):
        user._locust_rs_pooled = True
        schedule.register()
        glet = getattr(user, "_greenlet", None)
        if glet is not None:
            glet.link(lambda _g: schedule.unregister())
    ticket = schedule.acquire()
    # The clock starts once this user waits for an iteration: the first one is due at once, and a clock started
    # before found no user free and, with the cap held by this user, dropped it (one per test, for a pool of one).
    if pool is not None and not pool.started:
        pool.start(user.environment)
    due = _bridge.wait(ticket)
    if not isinstance(due, int):
        # The schedule stopped (the end of the test): nothing more to run.
        raise StopUser()
    schedule.begin(due)
    it.due = due


def _execute_next_task(self) -> None:
    task = self._task_queue.popleft()
    if type(getattr(type(self.user), "wait_time", None)) is ArrivalRate and not (
        isinstance(task, type) and issubclass(task, TaskSet)
    ):
        # A nested TaskSet is not an iteration; its own tasks are.
        _begin(self.user)
    self.execute_task(task)


def _install() -> None:
    # Locust's method, replaced on purpose (hence the ignore).
    TaskSet.execute_next_task = _execute_next_task  # type: ignore[method-assign]


# -- the run's events (plugin.py wires them) --------------------------------------------------------------------


def on_test_stop(environment) -> None:
    for pool in pools(environment).values():
        pool.stop()


def on_test_start(environment) -> None:
    for pool in pools(environment).values():
        pool.stop()
        pool.schedule.reset()
        pool.started = False
