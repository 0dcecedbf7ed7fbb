"""Plain HttpUser tasks with names, params and a bounded iteration count."""

from locust import HttpUser, constant, task
from locust.exception import StopUser

import os

ITERATIONS = 5


class BasicUser(HttpUser):
    wait_time = constant(0)

    def on_start(self):
        self.n = 0
        # Lets the fork test see which class each process really runs (no effect otherwise).
        probe_dir = os.environ.get("CORPUS_PROBE_DIR")
        if probe_dir:
            with open(os.path.join(probe_dir, f"{os.getpid()}-{id(self)}"), "w") as f:
                f.write(f"{type(self.client).__module__}.{type(self.client).__qualname__}")

    @task
    def visit(self):
        self.n += 1
        if self.n > ITERATIONS:
            raise StopUser()
        self.client.get("/echo")
        self.client.get("/json", params={"page": self.n}, name="/json?page=[n]")
        self.client.get("/status/404")
        self.client.post("/echo", json={"n": self.n})
