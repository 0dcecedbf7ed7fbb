"""The Locust versions locust-rs supports, and the check ``import locust_rs`` makes first.

It reads the installed distribution's version without importing Locust, whose gevent monkey-patching a notebook
that only wants ``locust_rs.results`` must not get. The range is the one ``pyproject.toml`` declares; ``.ci/run``
tests its floor and its newest release (``make test-locust-floor``), and ``locust_rs._compat`` lists what
locust-rs needs from Locust.

Why 2.46.7: locust-rs imports and runs on Locust 2.40 with two small shims (``StopTest`` before 2.43,
``RestMixin`` before 2.46.6), but its clients do what Locust's own clients do from 2.46.7 on. Run against the
installed Locust's own clients, the contract tests find 93 differences on 2.40.5, 34 on 2.43.4, 28 on 2.46.0 and
13 on 2.46.6 (redirects, streaming, names, auth in the base URL), all changes of Locust's clients, and none on
2.46.7 beyond five of Locust's own (strict xfails in ``tests/conftest.py``).
"""

from __future__ import annotations

import re
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version

#: The lowest Locust release locust-rs runs on, and the first it does not.
FLOOR = (2, 46, 7)
CEILING = (3, 0, 0)
RANGE = ">=2.46.7,<3"


class LocustVersionError(ImportError):
    """The installed Locust is outside :py:data:`RANGE`."""


def _parse(text: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", text)[:3])


def check() -> None:
    """Raises :py:class:`LocustVersionError` with one sentence when the installed Locust is outside the range."""
    try:
        found = _version("locust")
    except PackageNotFoundError:
        raise LocustVersionError(f"locust-rs needs Locust {RANGE}, and Locust is not installed") from None
    if not FLOOR <= _parse(found) < CEILING:
        raise LocustVersionError(
            f"locust-rs needs Locust {RANGE}, but Locust {found} is installed: pip install 'locust{RANGE}'"
        ) from None
