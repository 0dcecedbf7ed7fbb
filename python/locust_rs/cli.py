"""``locust-rs``: the ``locust`` command with the import swap installed first (see ``locust_rs.swap``).

locust-rs -f locustfile.py --headless -u 100 ...   # every locust argument, unchanged
locust-rs compare BASELINE CANDIDATE               # two runs' results compared (locust_rs.compare)

Locust exits 1 for a usage error (a missing locustfile, one that fails to import, a bad option value) as for failed
requests; ``locust-rs`` exits 2 for those, so that a CI step can tell a broken set-up from a failed run (see
``locust_rs.stats.verdict``).
"""

from __future__ import annotations

import sys
import traceback

from locust_rs.swap import install


def _run_began() -> bool:
    """Whether Locust got as far as its ``init`` event (the runner exists): an exit after it is the run's own."""
    plugin = sys.modules.get("locust_rs._locust.plugin")
    return plugin is not None and plugin.run_began()


def main() -> None:
    if sys.argv[1:2] == ["compare"]:
        # `locust-rs compare BASELINE CANDIDATE`: two runs' results, not a run (locust_rs.compare)
        from locust_rs.compare.command import main as compare_main

        raise SystemExit(compare_main(sys.argv[2:]))
    install(announce=True)
    from locust.main import main as locust_main

    sys.argv[0] = "locust"
    try:
        locust_main()
    except SystemExit as e:
        if e.code == 1 and not _run_began():
            raise SystemExit(2) from None
        raise
    except Exception:
        if _run_began():
            raise
        # A locustfile that fails to import: its traceback, as Python prints it, and the usage error's code.
        traceback.print_exc()
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
