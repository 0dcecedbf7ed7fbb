"""Which clock ended the run's response times, said once at the end (docs/metrics.md, "Which clock").

A response time ends at the kernel's receive stamp of the last bytes of the response (Linux; HTTP/1.1 and HTTP/2,
plaintext or TLS; a WebSocket message received counts as a response), so that an engine thread starved of CPU does not
lengthen it; where there is no stamp (another OS, a kernel that refuses the option, ``LOCUST_RS_RX_STAMPS=0``) it ends
when the engine read those bytes. Workers send their counts with each report; the master adds them up.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from locust_rs import _native
from locust_rs._locust import state as _state

_print = logging.getLogger("locust.stats_logger").info
#: the key of a worker's counts in its reports to the master
REPORT_KEY = "locust_rs_clock"


@dataclass
class _Clock:
    #: a worker's last counts, by its client id: (stamped, unstamped, why)
    workers: dict[str, tuple[int, int, str]] = field(default_factory=dict)


def on_report_to_master(environment, data: dict) -> None:
    data[REPORT_KEY] = list(_native.clock_counts())


def on_worker_report(environment, client_id: str, data: dict) -> None:
    counts = data.get(REPORT_KEY)
    if isinstance(counts, list | tuple) and len(counts) == 3:
        _state.of(environment, _Clock).workers[client_id] = (int(counts[0]), int(counts[1]), str(counts[2]))


def counts(environment) -> tuple[int, int, str]:
    """(stamped, unstamped, why) of this process and its workers."""
    stamped, unstamped, why = _native.clock_counts()
    for s, u, w in _state.of(environment, _Clock).workers.values():
        stamped, unstamped, why = stamped + s, unstamped + u, why or w
    return stamped, unstamped, why


def line(environment) -> str | None:
    stamped, unstamped, why = counts(environment)
    if not stamped and not unstamped:
        return None
    if not unstamped:
        return f"Response times end at the kernel's receive stamps of their last bytes ({stamped:,} responses)"
    if not stamped:
        return f"Response times end when the engine read their last bytes ({unstamped:,} responses: {why})"
    return (
        f"Response times end at the kernel's receive stamps of their last bytes for {stamped:,} responses, and when "
        f"the engine read them for {unstamped:,} ({why})"
    )


def print_line(environment) -> None:
    text = line(environment)
    if text:
        _print("%s\n", text)
