"""The statistics' fast path: one request event, recorded by the statistics core directly when its listener is the
only one, else fired through Locust's ``EventHook`` as Locust's own clients fire it. The sessions call
:py:func:`fire_request` once per request (or, for a ``catch_response`` block, :py:func:`only_core` and
:py:func:`record` when it ends)."""

from __future__ import annotations

from locust import log as _locust_log
from locust.exception import InterruptTaskSet, RescheduleTask, RescheduleTaskImmediately, StopTest, StopUser

import logging
import traceback

from locust_rs import _native

_StatsCore = _native.StatsCore
# What Locust's EventHook.fire lets a listener raise through to the task.
_FLOW_CONTROL = (StopUser, StopTest, RescheduleTask, RescheduleTaskImmediately, InterruptTaskSet)


def only_core(hook):
    """The statistics core whose listener is the hook's only one, or None."""
    handlers = hook._handlers
    if len(handlers) == 1 and type(core := getattr(handlers[0], "__self__", None)) is _StatsCore:
        return core
    return None


def record(core, request_type, name, response_time, response_length, exception, interval, lead=None) -> None:
    try:
        core.record(request_type, name, response_time, response_length, exception, interval, lead)
    except _FLOW_CONTROL:
        raise
    except Exception:
        # As EventHook.fire does with a listener that raises.
        logging.error("Uncaught exception in event handler: \n%s", traceback.format_exc())
        _locust_log.unhandled_greenlet_exception = True


def fire_request(
    hook,
    request_type,
    name,
    response_time,
    response_length,
    exception,
    response,
    context,
    start_time,
    url,
    interval,
    lead=None,
    user=None,
) -> None:
    """``hook.fire(...)`` for one request. When the statistics core's listener is the hook's only one, as in a run
    without listeners of its own, the core records the request directly: no keyword dict is built and parsed per
    request, and nobody reads ``context``. Anything else (``--otel``, a user's listener, Locust's own statistics) gets
    Locust's ``fire``, with ``user``'s ``context()`` (when given) merged under ``context``, as Locust's clients do."""
    handlers = hook._handlers  # only_core, inline: this runs per request
    if len(handlers) == 1 and type(core := getattr(handlers[0], "__self__", None)) is _StatsCore:
        record(core, request_type, name, response_time, response_length, exception, interval, lead)
        return
    if user is not None:
        context = {**user.context(), **context}
    # Read by the statistics core's listener, for the corrected histogram: an arrival-rate iteration's lead, and this
    # user's expected interval. A failure without a response (a WebSocket one) has nowhere to carry them, and is
    # recorded as it was measured.
    if response is not None:
        if lead is not None:
            response._locust_rs_lead = lead
        if interval:
            response._locust_rs_interval = interval
    hook.fire(
        request_type=request_type,
        name=name,
        response_time=response_time,
        response_length=response_length,
        exception=exception,
        response=response,
        context=context,
        start_time=start_time,
        url=url,
    )
