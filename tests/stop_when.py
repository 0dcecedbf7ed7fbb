"""One more ``-f`` file for the test suite's runs: ends a headless run the way ``--run-time`` does, as soon as a
condition holds, so that a test does not wait out a fixed ``-t`` (Locust's own subprocess tests stop on conditions
too). ``-t`` stays the upper bound.

The condition is a Python expression in ``STOP_WHEN``, evaluated every 0.05 s on the master or the local runner
(never on a worker) from ``test_start`` on, with these names:

- ``requests(name=None, method=None)``: the requests counted so far (failures included), of one entry or of all;
- ``users_done()``: every user spawned has stopped by itself (locustfiles that bound their own iterations);
- ``exists(path)``: a file exists (the test creates it once it has seen what it waited for, from outside);
- ``env``, ``runner``, ``stats``: the run's Environment, runner and statistics.

Once it holds, ``runner.quit()`` is called from a greenlet of its own, as Locust's ``--run-time`` timer does
(``locust.main``'s ``stop_and_optionally_quit``), so that every output is written as after ``-t``: a signal would take
another path, which loses requests in flight from the HDR outputs (issue 32). With ``--csv``, it first waits for
Locust's CSV writer to write once more: Locust's own writes the requests CSV once a second and not at the end, so a
plain ``locust`` run that ends right after its last request would leave that request out (locust-rs rewrites the
files at the end; plain Locust, the reference in contract runs, does not).
"""

from locust import events
from locust import stats as locust_stats
from locust.runners import WorkerRunner

import logging
import os

import gevent

STOP_WHEN = os.environ.get("STOP_WHEN", "")
POLL_S = 0.05

logger = logging.getLogger(__name__)
_spawned = []
_failed = []
_csv_writes = [0]
_write_rows = locust_stats.StatsCSVFileWriter._requests_data_rows


def _counted_write(self, csv_writer):
    _csv_writes[0] += 1
    return _write_rows(self, csv_writer)


locust_stats.StatsCSVFileWriter._requests_data_rows = _counted_write


@events.spawning_complete.add_listener
def _on_spawning_complete(user_count, **_kwargs):
    _spawned.append(user_count)


@events.test_start.add_listener
def _on_test_start(environment, **_kwargs):
    runner = environment.runner
    if not STOP_WHEN or isinstance(runner, WorkerRunner):
        return
    condition = compile(STOP_WHEN, "STOP_WHEN", "eval")
    stats = environment.stats

    def requests(name=None, method=None):
        if name is None:
            return stats.total.num_requests + stats.total.num_none_requests
        entries = [e for (n, m), e in stats.entries.items() if n == name and method in (None, m)]
        return sum(e.num_requests + e.num_none_requests for e in entries)

    def users_done():
        return bool(_spawned) and runner.user_count == 0

    names = {"requests": requests, "users_done": users_done, "exists": os.path.exists}
    names.update(env=environment, runner=runner, stats=stats)

    def holds():
        try:
            return eval(condition, names)  # noqa: S307 - the test suite's own expression
        except Exception:  # a test's mistake: said once, and the run goes on to -t, which the test then fails on
            if not _failed:
                _failed.append(True)
                logger.exception("STOP_WHEN %s raised", STOP_WHEN)
            return False

    def watch():
        while not holds():
            gevent.sleep(POLL_S)
        if getattr(environment.parsed_options, "csv_prefix", None):
            writes = _csv_writes[0]
            while _csv_writes[0] == writes:
                gevent.sleep(POLL_S)
        logger.warning("STOP_WHEN %s holds, shutting down", STOP_WHEN)  # seen under --loglevel WARNING
        runner.quit()

    gevent.spawn(watch)
