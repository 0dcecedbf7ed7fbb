"""Task weights and tags. The weighted choice is random, so the file bounds each task by its own count: whatever
the draw, every task ends up making exactly its quota of requests. Run with ``--exclude-tags slow``."""

from locust import HttpUser, constant, tag, task
from locust.exception import StopUser

QUOTA = {"home": 6, "search": 3, "slow": 0}


class WeightedUser(HttpUser):
    wait_time = constant(0)

    def on_start(self):
        self.done = dict.fromkeys(QUOTA, 0)

    def _one(self, name, path):
        if all(self.done[k] >= QUOTA[k] for k in QUOTA):
            raise StopUser()
        if self.done[name] < QUOTA[name]:
            self.done[name] += 1
            self.client.get(path, name=name)

    @tag("web")
    @task(3)
    def home(self):
        self._one("home", "/echo/home")

    @tag("web", "search")
    @task(1)
    def search(self):
        self._one("search", "/json?q=shoes")

    @tag("slow")
    @task(1)
    def slow(self):
        self._one("slow", "/slow?delay=5")
