"""Which users' requests the statistics correct for coordinated omission, and by what interval.

A user that means to run at a pace (Locust's ``constant_pacing`` or ``constant_throughput``, an ``expected_interval``
class attribute, or ``--hdr-expected-interval`` for the others) has an expected interval; its sessions tag every
request with it, and the statistics core then keeps a corrected histogram beside the raw one (HdrHistogram's
``recordValueWithExpectedInterval``). The sessions ask here once, when they are made (:py:func:`session_interval`).
An arrival-rate user is corrected by its iterations' due times instead (:py:mod:`locust_rs.arrival`).
"""

from __future__ import annotations

from typing import Any

from locust_rs._locust import state as _state


class _Correction:
    """The correction's settings of one run (on its environment, :py:mod:`locust_rs._locust.state`)."""

    def __init__(self) -> None:
        #: ms, from ``--hdr-expected-interval``, for users whose class and wait_time give none
        self.default_expected_interval = 0.0
        #: whether the corrected histograms are kept (only while the HDR outputs, which show them, are on)
        self.on = False


def setup(environment, outputs_on: bool) -> None:
    """At Locust's ``init``: the run's default interval, and whether correction is on (it is while the HDR outputs
    that show the corrected figures are)."""
    state = _state.of(environment, _Correction)
    opts = environment.parsed_options
    state.default_expected_interval = max(0.0, float(getattr(opts, "hdr_expected_interval", 0.0) or 0.0)) * 1000.0
    state.on = outputs_on


def _environment_of(user):
    return getattr(user, "environment", None) if user is not None else None


def session_interval(user) -> float:
    """The expected interval (ms) a session of ``user`` tags its requests with (0: none); turns correction on in the
    run's statistics core when there is one."""
    interval = expected_interval(user)
    environment = _environment_of(user)
    if interval and environment is not None and _state.of(environment, _Correction).on:
        core = getattr(getattr(environment, "stats", None), "core", None)
        if core is not None:
            core.correcting = True
    return interval


def expected_interval(user) -> float:
    """The interval (ms) at which ``user`` means to run its tasks, or 0 when it has none.

    An explicit ``expected_interval`` class attribute (seconds) wins; otherwise Locust's
    ``constant_pacing(t)`` gives ``t`` and ``constant_throughput(r)`` (which is
    ``constant_pacing(1 / r)``) gives ``1 / r``; otherwise ``--hdr-expected-interval``.
    """
    if user is None:
        return 0.0
    explicit = getattr(user, "expected_interval", None)
    if explicit:
        return float(explicit) * 1000.0
    fn: Any = getattr(type(user), "wait_time", None)
    code = getattr(fn, "__code__", None)
    if code is not None and getattr(fn, "__qualname__", "").startswith("constant_pacing."):
        try:
            cell = fn.__closure__[code.co_freevars.index("wait_time")]
            return float(cell.cell_contents) * 1000.0
        except (ValueError, TypeError, IndexError, AttributeError):
            pass
    environment = _environment_of(user)
    return _state.of(environment, _Correction).default_expected_interval if environment is not None else 0.0
