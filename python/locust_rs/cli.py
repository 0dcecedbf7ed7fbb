"""``locust-rs``: the ``locust`` command with the import swap installed first (see ``locust_rs.swap``).

locust-rs -f locustfile.py --headless -u 100 ...   # every locust argument, unchanged
"""

from __future__ import annotations

import sys

from locust_rs.swap import install


def main() -> None:
    install(announce=True)
    from locust.main import main as locust_main

    sys.argv[0] = "locust"
    locust_main()


if __name__ == "__main__":
    main()
