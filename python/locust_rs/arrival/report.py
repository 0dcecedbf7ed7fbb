"""The figures of arrival-rate users (:py:mod:`locust_rs.arrival`), and where they go.

- Per class: the target and achieved rates, iterations due (scheduled), begun and dropped, users, and the start-lag
  histogram. In a distributed run (and ``--processes``) each worker reports its figures with Locust's stats report
  and the master adds them up; the master also splits every rate across its workers (1/n each), again whenever a
  worker joins or is lost, and passes on the rate a load shape's ``arrival_rate()`` returns.
- The end-of-run table, ``PREFIX_arrival.csv``, a console line every few seconds (unless ``--only-summary``), and an
  "Arrival rate" tab in the web UI. Thresholds read :py:func:`summary`.
"""

from __future__ import annotations

from locust.runners import (
    HEARTBEAT_INTERVAL,
    HEARTBEAT_LIVENESS,
    STATE_INIT,
    STATE_RUNNING,
    STATE_SPAWNING,
    MasterRunner,
    WorkerRunner,
)

import csv
import html
import json
import logging
import math
import time
from collections.abc import Sequence

import gevent

from locust_rs import _native, arrival
from locust_rs._locust import state as _state
from locust_rs.stats import outputs, webui

logger = logging.getLogger(__name__)
_print = logging.getLogger("locust.stats_logger").info

QUANTILES = (0.5, 0.9, 0.99, 0.999)
QUANTILE_LABELS = ("p50", "p90", "p99", "p99.9")
MESSAGE = "locust_rs_arrival"
#: A worker's first word to its master, once it can take MESSAGE. Sent earlier, when the worker has connected but
#: not yet registered its handler (a worker joining a running test), MESSAGE would be dropped as unknown and the
#: worker would run nothing.
READY = "locust_rs_arrival_ready"
REPORT_KEY = "locust_rs_arrival"
WEB_TAB = "locust_rs_arrival"
#: Seconds between the monitor's looks (the console line prints every other one, as Locust's tables do).
TICK = 1.0
#: Seconds between two warnings of one class's dropped iterations.
DROP_WARNING_EVERY = 10.0


def percentile(times: list[tuple[float, int]], q: float) -> float:
    """HdrHistogram's value at quantile ``q`` of [(ms, count)] lowest first: the lowest value with at least that
    share of the counts at or below it; 0 without any."""
    total = sum(n for _, n in times)
    if not total:
        return 0.0
    want = max(1, int(min(max(q, 0.0), 1.0) * total + 0.5)) if q < 1 else total
    seen = 0
    for v, n in times:
        seen += n
        if seen >= want:
            return v
    return times[-1][0]


# -- what workers report and the master adds up -------------------------------------------------------------------

_FIELDS = (
    "scheduled", "iterations", "dropped", "skipped", "expected", "elapsed", "users", "peak_users", "target_rate",
)  # fmt: skip
_NOW_FIELDS = ("target_rate", "users")


class _Report:
    """The arrival figures' state of one run (on its environment, :py:mod:`locust_rs._locust.state`)."""

    def __init__(self) -> None:
        #: on the master: each worker's last figures by client id, then class name (a lost worker's stay: they
        #: happened)
        self.remote: dict[str, dict[str, dict]] = {}
        #: on the master: each worker's achieved rate between its last two reports, by client id, then class name
        self.remote_rate: dict[str, dict[str, float]] = {}
        #: on the master: every worker's start lags, merged, by class name (an ArrivalSchedule used as a histogram)
        self.remote_lag: dict[str, _native.ArrivalSchedule] = {}
        #: on the master: the workers that count for what is true now (the target rate, the users): not the lost
        #: ones
        self.active: set[str] | None = None
        #: on the master: the workers that said READY, so can take the split
        self.ready: set[str] = set()
        #: on the master: when each worker's last report came (time.time())
        self.remote_at: dict[str, float] = {}
        #: on the master: per lost worker, the iterations due on it between its last report and its loss, by class
        #: name: counted as dropped until it is heard again (its reports then say what it did)
        self.gaps: dict[str, dict[str, int]] = {}
        #: on a worker: since when (time.time()) its clocks are held because the master is silent, and since when it
        #: hears the master again (the clocks go on with the master's next split)
        self.held: float | None = None
        self.heard_again: float | None = None
        #: the monitor of the test that runs, and its greenlet
        self.current: _Monitor | None = None
        self.monitor: gevent.Greenlet | None = None


def _report(environment) -> _Report:
    return _state.of(environment, _Report)


def on_report_to_master(environment, data: dict) -> None:
    """A worker's report: its figures so far and the start lags since its last report, per class that ran."""
    out = {}
    for cls, pool in arrival.pools(environment).items():
        if not pool.started:
            continue
        snap = pool.schedule.snapshot()
        figures = {k: snap[k] for k in _FIELDS}
        figures["lag"] = pool.schedule.take_delta()[3]
        out[cls.__name__] = figures
    if out:
        data[REPORT_KEY] = out


def on_worker_report(environment, client_id: str, data: dict) -> None:
    report = _report(environment)
    if data.get(REPORT_KEY):
        report.remote_at[client_id] = time.time()
    for name, figures in (data.get(REPORT_KEY) or {}).items():
        figures.setdefault("skipped", 0)  # from a worker of an older locust-rs
        lag = figures.pop("lag", [])
        before = report.remote.get(client_id, {}).get(name)
        if before is not None and figures["elapsed"] > before["elapsed"]:
            # On the worker's own clock: exact, whatever the network did to the report's arrival.
            report.remote_rate.setdefault(client_id, {})[name] = (figures["iterations"] - before["iterations"]) / (
                figures["elapsed"] - before["elapsed"]
            )
        report.remote.setdefault(client_id, {})[name] = figures
        holder = report.remote_lag.get(name)
        if holder is None:
            holder = report.remote_lag[name] = _native.ArrivalSchedule(0.0, [(1.0, 0.0)], False, 0, None)
        holder.merge(0, 0, 0, [tuple(x) for x in lag])


def on_worker_lost(environment, client_id: str, now: float) -> str | None:
    """On the master, as a worker goes missing: the iterations due on it between its last report and now (its rate
    then, at its share) are counted as dropped, as no report will say whether they ran, and no other worker ran them
    before the master moved its share. Returns the words for the lost-worker line."""
    report = _report(environment)
    last, figures = report.remote_at.get(client_id), report.remote.get(client_id)
    if last is None or not figures:
        return None
    gap = {name: round(f["target_rate"] * max(now - last, 0.0)) for name, f in figures.items()}
    gap = {name: n for name, n in gap.items() if n > 0}
    if not gap:
        return None
    report.gaps[client_id] = gap
    due = ", ".join(f"{n} {name}" for name, n in sorted(gap.items()))
    return (
        f"the arrival-rate iterations due on it since that report ({due}) count as dropped until it is heard again, "
        "and its share goes to the other workers"
    )


def on_worker_back(environment, client_id: str) -> None:
    """On the master: a lost worker is heard again; its reports now say what it did."""
    _report(environment).gaps.pop(client_id, None)


#: A worker holds its arrival clocks after this long without a word from its master (s): as long as the master waits
#: for its heartbeat before it counts it missing and gives its share to the other workers.
MASTER_SILENCE = HEARTBEAT_INTERVAL * HEARTBEAT_LIVENESS
#: Held clocks go on with the master's next split; if none comes this long after the master is heard again (it had not
#: counted this worker missing, so its split did not change), they go on as they were.
SPLIT_WAIT = 2 * HEARTBEAT_INTERVAL


def check_master(environment, now: float) -> None:
    """On a worker, once a second: while the master is silent (a cut link, a stopped master) the arrival clocks stand
    still, so that this worker does not run the share the master gives to the others; when the master is heard again
    they go on, and what fell due meanwhile is skipped (and counted as skipped)."""
    runner = environment.runner
    report = _report(environment)
    last = getattr(runner, "last_heartbeat_timestamp", None)
    quiet = now - last if last is not None else 0.0
    silent = quiet > MASTER_SILENCE
    pools = [p for p in arrival.pools(environment).values() if p.started]
    if silent:
        report.heard_again = None
    if silent and report.held is None:
        report.held = now
        # Until the master moves it, the share is still this worker's: what falls due until then is dropped.
        own_for = max(0.0, arrival.SHARE_MOVES_AFTER - quiet)
        for pool in pools:
            pool.schedule.pause(own_for)
        if pools:
            logger.warning(
                "no word from the master for %.0f s: this worker's arrival-rate clocks stand still until it is heard "
                "again (the master gives their share to the other workers)",
                quiet,
            )
    elif not silent and report.held is not None:
        # The master's next split (on_worker_message) lets the clocks go on with the share it gives this worker now,
        # at the moment it gives the other workers theirs: going on at once would run this share twice until then.
        if report.heard_again is None:
            report.heard_again = now
        elif now - report.heard_again >= SPLIT_WAIT:
            # No new split: the master never counted this worker missing, so its share stayed here, unrun.
            _go_on(environment, now, own=True)


def _go_on(environment, now: float, own: bool = False) -> None:
    """Lets held clocks go on; they let go of what fell due while held (on their own thread): say roughly how much.
    ``own``: the share stayed this worker's the whole time (all dropped), else the master gave it away (skipped from
    then on)."""
    report = _report(environment)
    if report.held is None:
        return
    held, report.held, report.heard_again = now - report.held, None, None
    pools = [p for p in arrival.pools(environment).values() if p.started]
    due = 0.0
    for pool in pools:
        due += held * pool.schedule.snapshot()["target_rate"]
        pool.schedule.resume(own)
    if pools:
        logger.warning(
            "the master is heard again after %.0f s: the arrival-rate clocks go on; the about %.0f iterations due "
            "meanwhile are %s",
            held,
            due,
            "dropped (the master had not given their share away)"
            if own
            else "skipped once the master had given them to the other workers, and dropped before",
        )


def _watch_master(environment) -> None:
    while True:
        gevent.sleep(HEARTBEAT_INTERVAL)
        try:
            check_master(environment, time.time())
        except Exception:  # noqa: BLE001 - the watch must never stop the worker
            logger.exception("arrival rate: watching the master failed")


def workers_recent_rates(environment) -> dict[str, float]:
    """On the master: each class's achieved rate now, the sum of its active workers' rates between their last two
    reports. A master's figures move in steps, once per worker report (every 3 s): a rate taken between two of its
    ticks read 0, 0, 600 for a steady 200/s."""
    report = _report(environment)
    active = report.active if report.active is not None else set(report.remote_rate)
    rates: dict[str, float] = {}
    for client_id, by_name in report.remote_rate.items():
        if client_id in active:
            for name, rate in by_name.items():
                rates[name] = rates.get(name, 0.0) + rate
    return rates


def _rows_from(figures_by_name: dict[str, dict], lags: dict[str, list]) -> list[dict]:
    rows = []
    for name, f in figures_by_name.items():
        lag = lags.get(name, [])
        elapsed = f["elapsed"]
        row = {
            "name": name,
            "elapsed": elapsed,
            "target_rate": f["target_rate"],
            "expected": f["expected"],
            "mean_target_rate": f["expected"] / elapsed if elapsed > 0 else 0.0,
            "achieved_rate": f["iterations"] / elapsed if elapsed > 0 else 0.0,
            "scheduled": f["scheduled"],
            "iterations": f["iterations"],
            "dropped": f["dropped"],
            "skipped": f.get("skipped", 0),
            "lost": int(f.get("lost", 0)),
            "users": f["users"],
            "peak_users": f["peak_users"],
            "lag_times": lag,
        }
        for q, label in zip(QUANTILES, QUANTILE_LABELS, strict=True):
            row[f"lag_{label}"] = percentile(lag, q)
        row["lag_max"] = lag[-1][0] if lag else 0.0
        rows.append(row)
    return rows


def summary(environment) -> list[dict]:
    """One row per arrival-rate class: the target rate now and on average since the start, the achieved rate
    (iterations begun per second), scheduled (iterations due), iterations, dropped, users now and at the most, and
    start-lag percentiles (ms). On a master, the sum of its workers' reports (elapsed: the longest of theirs)."""
    report = _report(environment)
    if report.remote:
        merged: dict[str, dict] = {}
        for client_id, by_name in report.remote.items():
            lost = report.active is not None and client_id not in report.active
            for name, f in by_name.items():
                m = merged.setdefault(name, dict.fromkeys(_FIELDS, 0.0))
                for k in _FIELDS:
                    if k == "elapsed":
                        m[k] = max(m[k], f[k])
                    elif not (lost and k in _NOW_FIELDS):
                        m[k] += f[k]
        for gap in report.gaps.values():
            for name, n in gap.items():
                if name in merged:
                    merged[name]["scheduled"] += n
                    merged[name]["dropped"] += n
                    merged[name]["lost"] = merged[name].get("lost", 0) + n
        for m in merged.values():
            for k in ("scheduled", "iterations", "dropped", "skipped", "users", "peak_users"):
                m[k] = int(m[k])
        lags = {name: holder.lag_times() for name, holder in report.remote_lag.items()}
        return _rows_from(merged, lags)
    figures, lags = {}, {}
    for cls, pool in arrival.pools(environment).items():
        if pool.started:
            figures[cls.__name__] = pool.schedule.snapshot()
            lags[cls.__name__] = pool.schedule.lag_times()
    return _rows_from(figures, lags)


# -- the master's split of the rate, and a load shape's rate ----------------------------------------------------


def on_worker_message(environment, msg, **_kwargs) -> None:
    """On a worker: the master's ``{"count": n, "targets": {class: rate}}``; this worker runs 1/n of each rate. Held
    clocks (the master was silent) go on with it."""
    if _report(environment).held is not None:
        _go_on(environment, time.time())  # first: what fell due while held is skipped at the share it had
    data = msg.data or {}
    count = max(int(data.get("count") or 1), 1)
    arrival.set_share(environment, 1.0 / count)
    targets = data.get("targets") or {}
    for name in {*targets, *arrival.targets(environment)}:
        arrival.set_target(environment, name, targets.get(name))


class ShapeError(ValueError):
    """A load shape's ``arrival_rate()`` returned something that is not a rate for this run's classes."""


def _shape_targets(environment) -> dict[str, float | None]:
    """What the load shape's ``arrival_rate()`` says now: one rate for every arrival-rate class, or a rate per class
    name; {} without such a method. Raises :py:class:`ShapeError` for anything else, naming what was wrong."""
    shape = environment.shape_class
    fn = getattr(shape, "arrival_rate", None)
    if fn is None:
        return {}
    rate = fn()
    names = [cls.__name__ for cls in environment.user_classes or () if type(cls.wait_time) is arrival.ArrivalRate]
    if isinstance(rate, dict):
        unknown = sorted(str(n) for n in rate if n not in names)
        if unknown:
            raise ShapeError(
                f"{type(shape).__name__}.arrival_rate() names {', '.join(map(repr, unknown))}, which "
                f"{'is' if len(unknown) == 1 else 'are'} not an arrival-rate user class of this run "
                f"({', '.join(names) or 'none'})"
            )
        targets = {n: rate.get(n) for n in names}
    else:
        targets = dict.fromkeys(names, rate)
    for name, r in targets.items():
        if r is not None and (isinstance(r, bool) or not isinstance(r, int | float) or not 0 <= r < math.inf):
            raise ShapeError(
                f"{type(shape).__name__}.arrival_rate() gave {r!r} for {name}: a rate is a number of iterations "
                "per second from 0, or None for the class's own"
            )
    return targets


class _Monitor:
    """A greenlet on the master or a standalone process: once a second it sends the split and the shape's rates
    (master), applies the shape's rates (standalone), keeps the recent achieved rate for the web UI, and prints the
    console line every other tick."""

    def __init__(self, environment) -> None:
        self.environment = environment
        #: What each worker was last sent; a worker is sent the split again only when it would change.
        self.sent: dict[str, tuple] = {}
        self.last: dict[str, tuple[float, int]] = {}
        self.recent: dict[str, float] = {}
        self.ticks = 0
        #: Per class: the dropped count last warned of, and when.
        self.warned: dict[str, tuple[int, float]] = {}

    def run(self) -> None:
        while True:
            try:
                self.tick()
            except ShapeError as e:
                # The run cannot go on at the rates the test meant: say why once, and stop it as a usage error.
                logger.error("%s; stopping the run", e)
                self.environment.process_exit_code = 2
                runner = self.environment.runner
                if runner is not None:
                    gevent.spawn(runner.quit)
                return
            except Exception:  # noqa: BLE001 - the figures must never stop the run
                logger.exception("arrival rate: monitoring failed")
            gevent.sleep(TICK)

    def send_split(self) -> None:
        """On the master: each worker's part of the rates, to the workers whose part changed. The rates are split
        across the workers that can take their part (a worker that has not said READY yet would run nothing, and its
        part would be missing until it does)."""
        report = _report(self.environment)
        runner = self.environment.runner
        targets = _shape_targets(self.environment)
        active = sorted(w.id for w in runner.clients.all if w.state in (STATE_INIT, STATE_SPAWNING, STATE_RUNNING))
        report.active = set(active)
        taking = [w for w in active if w in report.ready]
        # A worker lost, or gone, gets its split afresh when it is back: that lets its held clocks go on.
        for worker in set(self.sent) - set(taking):
            del self.sent[worker]
        message = (len(taking), json.dumps(targets, sort_keys=True))
        for worker in taking:
            if self.sent.get(worker) != message:
                self.sent[worker] = message
                runner.send_message(MESSAGE, {"count": len(taking), "targets": targets}, client_id=worker)

    def warn_if_dropping(self, row: dict, now: float) -> None:
        """As k6's "Insufficient VUs": a warning when a class first drops iterations, then, while it keeps dropping,
        the count at most every :py:data:`DROP_WARNING_EVERY` seconds (not one line per iteration)."""
        # A lost worker's gap is said in its own line, not as a shortage of users.
        name, dropped = row["name"], row["dropped"] - row.get("lost", 0)
        warned, at = self.warned.get(name, (0, -math.inf))
        if dropped <= warned or now - at < DROP_WARNING_EVERY:
            return
        self.warned[name] = (dropped, now)
        share = 100.0 * dropped / row["scheduled"] if row["scheduled"] else 0.0
        if not warned:
            logger.warning(
                "Insufficient users: %s dropped %d iteration%s: all its users (%d) were busy when they were due, and "
                "it may start no more (max_users). Raise max_users or -u, or lower the rate.",
                name, dropped, "s" if dropped != 1 else "", row["peak_users"],
            )  # fmt: skip
        else:
            logger.warning(
                "%s: %d iterations dropped so far (%.1f %% of %d due)", name, dropped, share, row["scheduled"]
            )

    def tick(self) -> None:
        env = self.environment
        runner = env.runner
        if isinstance(runner, MasterRunner):
            self.send_split()
        else:
            targets = _shape_targets(env)
            for name, rate in targets.items():
                if arrival.targets(env).get(name) != rate:
                    arrival.set_target(env, name, rate)
        rows = summary(env)
        now = time.monotonic()
        from_workers = workers_recent_rates(env) if isinstance(runner, MasterRunner) else {}
        for r in rows:
            self.warn_if_dropping(r, now)
            t0, n0 = self.last.get(r["name"], (now, r["iterations"]))
            if r["name"] in from_workers:
                self.recent[r["name"]] = from_workers[r["name"]]
            elif now > t0 and not isinstance(runner, MasterRunner):
                self.recent[r["name"]] = (r["iterations"] - n0) / (now - t0)
            self.last[r["name"]] = (now, r["iterations"])
        self.ticks += 1
        opts = env.parsed_options
        quiet = opts is None or getattr(opts, "only_summary", False) or not getattr(opts, "headless", False)
        if rows and not quiet and self.ticks % 2 == 0:
            for r in rows:
                _print(
                    "Arrival rate %s: target %.1f/s, achieved %.1f/s, %d iterations, %d dropped, start lag p99 %.3f "
                    "ms, %d users",
                    r["name"],
                    r["target_rate"],
                    self.recent.get(r["name"], r["achieved_rate"]),
                    r["iterations"],
                    r["dropped"],
                    r["lag_p99"],
                    r["users"],
                )


def on_test_start(environment) -> None:
    """The monitor starts with each test (not on workers: their master watches)."""
    report = _report(environment)
    if isinstance(environment.runner, MasterRunner):
        report.remote.clear()
        report.remote_rate.clear()
        report.remote_lag.clear()
        report.remote_at.clear()
        report.gaps.clear()
        report.active = None
    if isinstance(environment.runner, WorkerRunner) or not _has_arrival_classes(environment):
        return
    on_test_stop(environment)
    report.current = _Monitor(environment)
    report.monitor = gevent.spawn(report.current.run)


def on_test_stop(environment) -> None:
    report = _report(environment)
    if report.monitor is not None:
        report.monitor.kill(block=False)
        report.monitor = None


def _has_arrival_classes(environment) -> bool:
    return any(type(getattr(cls, "wait_time", None)) is arrival.ArrivalRate for cls in environment.user_classes or ())


def on_worker_ready(environment, msg, **_kwargs) -> None:
    """On the master: a worker can take its part of the rates now; it gets it at once while a test runs."""
    report = _report(environment)
    report.ready.add(msg.node_id)
    if report.current is not None and report.monitor is not None:
        report.current.sent.pop(msg.node_id, None)
        try:
            report.current.send_split()
        except Exception:  # noqa: BLE001 - the next tick tries again
            logger.exception("arrival rate: splitting the rate failed")


def setup(environment) -> None:
    """At ``init``: a worker waits for its share from the master; the web UI gets its tab."""
    runner = environment.runner
    if isinstance(runner, WorkerRunner):
        # Its share is 0 until the master's MESSAGE (see arrival._Arrival.share), which comes once it has heard READY.
        runner.register_message(MESSAGE, on_worker_message)
        if _has_arrival_classes(environment):
            runner.send_message(READY, None)
            # in the runner's own group: it ends when the runner quits
            runner.greenlet.spawn(_watch_master, environment)
        return
    if isinstance(runner, MasterRunner):
        runner.register_message(READY, on_worker_ready)
    if environment.web_ui is not None and _has_arrival_classes(environment):
        _extend_web_ui(environment)


def _extend_web_ui(environment) -> None:
    """An "Arrival rate" tab, live."""
    structure = [
        {"key": "name", "title": "User class"},
        {"key": "target", "title": "Target (/s)"},
        {"key": "achieved", "title": "Achieved (/s)"},
        {"key": "iterations", "title": "Iterations"},
        {"key": "dropped", "title": "Dropped"},
        {"key": "users", "title": "Users"},
        *({"key": f"lag_{lbl.replace('.', '')}", "title": f"Start lag {lbl} (ms)"} for lbl in QUANTILE_LABELS),
        {"key": "lag_max", "title": "Start lag max (ms)"},
    ]
    webui.add_tab(environment.web_ui, WEB_TAB, "Arrival rate", structure, lambda: web_rows(environment))


def web_rows(environment) -> list[dict]:
    current = _report(environment).current
    recent = current.recent if current is not None else {}
    rows = []
    for r in summary(environment):
        row = {
            "name": r["name"],
            "target": round(r["target_rate"], 1),
            "achieved": round(recent.get(r["name"], r["achieved_rate"]), 1),
            "iterations": r["iterations"],
            "dropped": r["dropped"],
            "users": r["users"],
            "lag_max": round(r["lag_max"], 3),
        }
        for lbl in QUANTILE_LABELS:
            row[f"lag_{lbl.replace('.', '')}"] = round(r[f"lag_{lbl}"], 3)
        rows.append(row)
    return rows


# -- at the end ----------------------------------------------------------------------------------------------------


def print_table(environment) -> None:
    """The start-lag table, at the end of a run that had arrival-rate classes (after the exact table)."""
    rows = summary(environment)
    if rows:
        _print("%s\n", table(rows))


def table(rows: list[dict]) -> str:
    """The console table of :py:func:`summary`'s rows."""
    head = (
        "Arrival rate", "target/s", "achieved/s", "scheduled", "iterations", "dropped", "dropped %", "peak users",
        *QUANTILE_LABELS, "max",
    )  # fmt: skip
    body = [
        (
            r["name"],
            f"{r['mean_target_rate']:.1f}",
            f"{r['achieved_rate']:.1f}",
            str(r["scheduled"]),
            str(r["iterations"]),
            str(r["dropped"]),
            f"{100.0 * r['dropped'] / r['scheduled'] if r['scheduled'] else 0.0:.1f}",
            str(r["peak_users"]),
            *(f"{r[f'lag_{label}']:.3f}" for label in QUANTILE_LABELS),
            f"{r['lag_max']:.3f}",
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in (head, *body)) for i in range(len(head))]
    lines = ["Start lag (ms) of arrival-rate iterations"]
    for i, row in enumerate((head, *body)):
        cells = (c.rjust(w) if j else c.ljust(w) for j, (c, w) in enumerate(zip(row, widths, strict=True)))
        lines.append("  ".join(cells))
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


CSV_FIELDS = (
    "User class", "Elapsed", "Target rate", "Achieved rate", "Scheduled", "Iterations", "Dropped iterations",
    "Peak users", "Start lag p50", "Start lag p90", "Start lag p99", "Start lag p99.9", "Start lag max",
    "Skipped iterations",
)  # fmt: skip


def write_csv(environment, path: str) -> bool:
    """``PREFIX_arrival.csv``: one row per arrival-rate class (rates per second, lags in ms); False without any."""
    rows = summary(environment)
    if not rows:
        return False
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(CSV_FIELDS)
        for r in rows:
            w.writerow([
                r["name"], f"{r['elapsed']:.3f}", f"{r['mean_target_rate']:.3f}", f"{r['achieved_rate']:.3f}",
                r["scheduled"], r["iterations"], r["dropped"], r["peak_users"],
                *(f"{r[f'lag_{label}']:.3f}" for label in QUANTILE_LABELS), f"{r['lag_max']:.3f}", r["skipped"],
            ])  # fmt: skip
    return True


def html_section(environment) -> str:
    """The run's arrival-rate figures as an HTML section for the HDR page and Locust's report, or "" without
    arrival-rate classes: what was due and begun, what was dropped, and the start lag."""
    rows = summary(environment)
    if not rows:
        return ""
    labels = QUANTILE_LABELS
    head = ("User class", "Target/s", "Achieved/s", "Scheduled", "Iterations", "Dropped", "Dropped %", "Peak users",
            *(f"Start lag {label}" for label in labels), "Start lag max")  # fmt: skip
    body = []
    for r in rows:
        dropped_share = 100.0 * r["dropped"] / r["scheduled"] if r["scheduled"] else 0.0
        cells = [f"{r['mean_target_rate']:.1f}", f"{r['achieved_rate']:.1f}", r["scheduled"], r["iterations"],
                 r["dropped"], f"{dropped_share:.1f}", r["peak_users"],
                 *(f"{r[f'lag_{label}']:.3f}" for label in labels), f"{r['lag_max']:.3f}"]  # fmt: skip
        body.append(f"<tr><td>{html.escape(r['name'])}</td>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return (
        '<h2 id="arrival-rate">Arrival rate (open model)</h2>\n<p>Iterations due (scheduled), begun and dropped (due '
        "when every user was busy and the pool was at max_users), and how late they began (start lag, ms).</p>\n"
        "<table><thead><tr>"
        + "".join(f"<th>{c}</th>" for c in head)
        + "</tr></thead><tbody>\n"
        + "".join(body)
        + "\n</tbody></table>"
    )


def on_quitting(environment, sections: Sequence[str] = ()) -> None:
    """Writes ``PREFIX_arrival.csv`` beside Locust's CSV files (not on a worker: its master writes the sum); the
    other reports' ``sections`` go on pages this one does not write."""
    opts = environment.parsed_options
    prefix = getattr(opts, "csv_prefix", None) if opts is not None else None
    if prefix and not isinstance(environment.runner, WorkerRunner):
        path = f"{prefix}_arrival.csv"
        outputs.write(environment, path, lambda: write_csv(environment, path))
