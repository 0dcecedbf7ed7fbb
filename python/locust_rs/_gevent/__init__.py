"""The gevent side of the engine (private): ``bridge``, the hub watcher that wakes the greenlets waiting on native
tickets, and ``wait``, Locust's ``wait_time`` sleep that skips the hub for zero waits."""
