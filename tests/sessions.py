"""A locust_rs session wired to a recording event hook, shared by the locust-rs-only test modules."""

from locust.event import EventHook

import locust_rs


def recording_session(base_url, **kwargs):
    """``(session, events)``: every ``events.request`` firing of the session lands in ``events`` as a dict."""
    events = []
    hook = EventHook()
    hook.add_listener(lambda **kw: events.append(kw))
    return locust_rs.FastHttpSession(base_url, hook, None, **kwargs), events
