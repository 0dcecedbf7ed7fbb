"""Per-run state, kept on the Locust ``Environment`` it belongs to, as Locust keeps its own there.

Each subsystem declares the state of one run as a class of its own, and reads it with :py:func:`of`: one instance
per environment and class, made on first use. So one process can hold two environments, one after the other or side
by side, without their runs mixing, and a test can run Locust's runners in process. Module level keeps only what
belongs to the process: declarations (a locustfile's ``thresholds.add``), patches of Locust, caches.
"""

from __future__ import annotations

from typing import TypeVar

T = TypeVar("T")

_ATTRIBUTE = "_locust_rs_state"


def of(environment, kind: type[T]) -> T:
    """The ``kind`` state of ``environment``'s run, made (``kind()``) on first use."""
    states = environment.__dict__.get(_ATTRIBUTE)
    if states is None:
        states = {}
        setattr(environment, _ATTRIBUTE, states)
    state = states.get(kind)
    if state is None:
        state = states[kind] = kind()
    return state
