"""``python -m locust_rs.compare``: the same as ``locust-rs compare``."""

import sys

from locust_rs.compare.command import main

sys.exit(main())
