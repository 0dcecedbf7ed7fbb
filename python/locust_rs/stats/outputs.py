"""The files a run's reports write, and those they could not: each output is written on its own, a failure is said
once (one line, no traceback), the list of files written leaves it out, and the run exits non-zero
(:py:data:`EXIT_CODE`) when an output the user asked for is missing. A full disk must not lose the outputs after the
first that failed, nor let a run pass that wrote nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from locust_rs._locust import state as _state

logger = logging.getLogger(__name__)

#: A run that could not write an output the user asked for exits with this code, unless another reason gave it one
#: (a crossed threshold's 99 wins).
EXIT_CODE = 1


class _Outputs:
    """One run's output failures (on its environment, :py:mod:`locust_rs._locust.state`)."""

    def __init__(self) -> None:
        #: path -> why it was not written, in the order they failed
        self.failed: dict[str, str] = {}


def write(environment, path: str, writer: Callable[[], object]) -> bool:
    """Runs ``writer`` (which writes ``path``); False, with the failure recorded and said once, if it raised
    OSError."""
    if path in _state.of(environment, _Outputs).failed:
        return False
    try:
        writer()
    except OSError as e:
        failed(environment, path, e)
        return False
    return True


def failed(environment, path: str, error: OSError) -> None:
    """Records that ``path`` could not be written; says so the first time."""
    state = _state.of(environment, _Outputs)
    if path not in state.failed:
        state.failed[path] = error.strerror or str(error)
        logger.error("locust-rs could not write %s: %s", path, state.failed[path])


def not_written(environment) -> dict[str, str]:
    """The outputs the run could not write: path -> why."""
    return dict(_state.of(environment, _Outputs).failed)


def set_exit_code(environment) -> None:
    """At the end of ``quitting``: a run that could not write an output exits :py:data:`EXIT_CODE`, unless it already
    has a code of its own."""
    if not_written(environment) and not environment.process_exit_code:
        environment.process_exit_code = EXIT_CODE
