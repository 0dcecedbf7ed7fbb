"""Arrival rate (open model): chat queries started at a set rate whatever the service does, with a spike, as k6's
``ramping-arrival-rate`` executor. The other scenarios are closed: a slow answer delays a user's next request, so
a struggling service gets less load. Here the queries keep arriving on schedule; when the users Locust started
(the pool) are all busy, locust-rs starts more, up to ``max_users``, and beyond that drops the iteration and
counts it.

    locust -f locustfiles/scenarios/arrival_rate_scenario.py --headless -u 20 -r 20 -t 5m

One iteration is one chat query (``ChatTasks`` of ``tasks.py``: a new question or a follow-up, as the suite's
other users ask them), from ``ArrivalChatUser``, a VoiceAssist user like the others (an account from the pool,
the shared ``AuthHelper``). ``--users`` is the pool started at once (give ``--spawn-rate`` the same number);
``--arrival-rate`` the steady rate (iterations per second, default 20), ``--arrival-max-users`` the most users
(default 100: at the demo server's 20 ms a chat answer, 60 a second keep one or two users busy; 100 keep that
rate up through answers of 1.6 s before iterations are dropped). The stages scale with ``--run-time`` (default 5
minutes; a run without one, in the web UI say, gets the 5-minute plan) as the spike scenario's phases do, so a
short run has the whole shape:

===========  ==============  ===========================================
phase        share           rate (iterations per second)
===========  ==============  ===========================================
steady       20 %            the steady rate
ramp up      5 %             a linear ramp to 3 times the steady rate
spike        25 %            3 times the steady rate
ramp down    5 %             a linear ramp back to the steady rate
recovery     until the end   the steady rate, until ``--run-time`` stops the test
===========  ==============  ===========================================

With the defaults: 20/s for 60 s, a ramp to 60/s over 15 s, 60/s for 75 s, back to 20/s over 15 s, then 20/s.
The clock starts with the first iteration, once the pool of test accounts is ready (``utils.UserPool``): that
preparation (well under a second against the demo server) comes off the recovery, the last phase.

At the end locust-rs prints the "Start lag (ms) of arrival-rate iterations" table and, with ``--csv PREFIX``,
writes ``PREFIX_arrival.csv``: the target and achieved rates, iterations scheduled, begun and dropped, the peak of
users and the start lag (how late iterations began). Response times are also kept measured from when each query
was due (the corrected histogram of ``PREFIX_hdr.csv``). The run fails (exit code 99) when an iteration was
dropped: the scenario registers the threshold ``dropped_iterations:count<1`` for ``ArrivalChatUser``, besides the
suite's own (here the chat query's p95 and the error rate). ``--threshold`` adds more, e.g.
``--threshold 'start_lag:p(99)<10ms'``.

Rate limits are handled as everywhere in the suite (``utils.check``): a 429 is a success under the request's name
plus ``[429 rate-limited]``, a rate-limit hit in the custom metrics, and the account is not tried again before its
Retry-After. The demo server limits logins, not chat queries, and the users share tokens fetched before the test,
so a run normally has none; but an iteration whose account is blocked ends without a query (it counts as begun,
not dropped): compare ``POST /api/chat/query`` in ``PREFIX_stats.csv`` with the iterations.

The rate is for the whole test: in a distributed run (or ``--processes``) the master splits it across its workers
and adds up their figures.
"""

from __future__ import annotations

from locust import events

import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import locustfile  # noqa: E402
from tasks import ChatTasks  # noqa: E402

from locust_rs import ramping_arrival_rate, thresholds  # noqa: E402

DEFAULT_RATE = 20.0  # iterations (chat queries) per second in the steady phases
DEFAULT_MAX_USERS = 100
DEFAULT_RUN_TIME_S = 300
SPIKE_FACTOR = 3.0
# (phase, share of the run time, rate at its end as a multiple of the steady rate); the last phase lasts until the
# run time is over
PHASES = (
    ("steady", 0.20, 1.0),
    ("ramp up", 0.05, SPIKE_FACTOR),
    ("spike", 0.25, SPIKE_FACTOR),
    ("ramp down", 0.05, 1.0),
    ("recovery", math.inf, 1.0),
)


def stages(run_time: float, rate: float) -> list[tuple[float, float]]:
    """The ``ramping_arrival_rate`` stages for a run of ``run_time`` seconds at the steady ``rate``."""
    return [(share * run_time, factor * rate) for _phase, share, factor in PHASES]


def arrival_rate(run_time: float = DEFAULT_RUN_TIME_S, rate: float = DEFAULT_RATE, max_users: int = DEFAULT_MAX_USERS):
    return ramping_arrival_rate(stages(run_time, rate), start_rate=rate, max_users=max_users)


class ArrivalChatUser(locustfile.VoiceAssistUser):
    """Chat queries at the scenario's rate; its wait time is set from the options when Locust starts (``_plan``)."""

    wait_time = arrival_rate()
    tasks = [ChatTasks]


# An open model that drops iterations did not send the load it was asked for: the run fails (exit code 99), as in
# k6 with ``dropped_iterations: ['count<1']``. ``--arrival-max-users`` is the knob when it does.
thresholds.add("dropped_iterations:count<1", names=[ArrivalChatUser.__name__], label="Arrival-rate iterations")


@events.init_command_line_parser.add_listener
def _options(parser) -> None:
    # Read once, when Locust starts (the schedule is built then): not offered in the web UI, where a change would
    # not take effect.
    parser.add_argument(
        "--arrival-rate",
        type=float,
        default=DEFAULT_RATE,
        help="arrival_rate_scenario: chat queries per second in the steady phases (the spike is 3 times that)",
        include_in_web_ui=False,
    )
    parser.add_argument(
        "--arrival-max-users",
        type=int,
        default=DEFAULT_MAX_USERS,
        help="arrival_rate_scenario: the most users started to keep the rate (beyond -u; then iterations drop)",
        include_in_web_ui=False,
    )


@events.init.add_listener
def _plan(environment, **_kw) -> None:
    options = environment.parsed_options
    run_time = getattr(options, "run_time", None) or DEFAULT_RUN_TIME_S
    rate = getattr(options, "arrival_rate", None) or DEFAULT_RATE
    max_users = getattr(options, "arrival_max_users", None) or DEFAULT_MAX_USERS
    ArrivalChatUser.wait_time = arrival_rate(float(run_time), float(rate), int(max_users))
