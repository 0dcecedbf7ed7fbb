"""The import swap: Locust's HTTP user classes and sessions are replaced by locust-rs's before a locustfile is imported.

``locust-rs`` (the console command, ``locust_rs.cli``) installs it and then runs Locust's own ``main`` with every
argument unchanged, so an unchanged locustfile gets the Rust engine. As a library call::

    import locust_rs
    locust_rs.install()   # before the locustfile (or your own code) imports from locust
"""

from __future__ import annotations

import sys

SWAPPED = (
    "locust.HttpUser",
    "locust.FastHttpUser",
    "locust.contrib.fasthttp.FastHttpUser",
    "locust.contrib.fasthttp.FastHttpSession",
    "locust.clients.HttpSession",
)

_installed = False


def install(announce: bool = False) -> list[str]:
    """Makes ``from locust import HttpUser, FastHttpUser``, ``from locust.contrib.fasthttp import FastHttpUser,
    FastHttpSession`` and ``from locust.clients import HttpSession`` give locust-rs's classes. Idempotent; returns
    the names swapped. Code that imported the originals before the call keeps them.

    Locust itself keeps working: its ``HttpUser`` class object is unchanged in ``locust.user.users``, and the web UI's
    "is this an HTTP user" check is widened to accept both.
    """
    global _installed
    import locust
    import locust.clients
    import locust.contrib.fasthttp as fasthttp
    import locust.user
    import locust.web

    import locust_rs

    if not _installed:
        # setattr: to a type checker these names are Locust's classes, and rebinding them is the whole point.
        for module, name, value in (
            (locust, "HttpUser", locust_rs.HttpUser),
            (locust.user, "HttpUser", locust_rs.HttpUser),
            (locust, "FastHttpUser", locust_rs.FastHttpUser),
            # The web UI asks issubclass(cls, HttpUser) (bound at its import) and issubclass(cls,
            # fasthttp.FastHttpUser) (read at call time) to find the hosts of HTTP users; a tuple keeps both families
            # recognised.
            (locust.web, "HttpUser", (locust.user.users.HttpUser, locust_rs.HttpUser, locust_rs.FastHttpUser)),
            (fasthttp, "FastHttpUser", locust_rs.FastHttpUser),
            (fasthttp, "FastHttpSession", locust_rs.FastHttpSession),
            (locust.clients, "HttpSession", locust_rs.HttpSession),
        ):
            setattr(module, name, value)
        _installed = True
        if announce:
            print(
                f"locust-rs {locust_rs.__version__}: HttpUser, FastHttpUser, FastHttpSession and HttpSession "
                "from locust now run on the Rust engine",
                file=sys.stderr,
                flush=True,
            )
    return list(SWAPPED)


def installed() -> bool:
    return _installed
