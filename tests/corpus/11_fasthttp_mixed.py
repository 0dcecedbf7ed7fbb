"""An HttpUser and a FastHttpUser in one file, both swapped by locust-rs."""

from locust import FastHttpUser, HttpUser, constant, task
from locust.exception import StopUser


class Classic(HttpUser):
    wait_time = constant(0)
    fixed_count = 1

    def on_start(self):
        self.n = 0

    @task
    def go(self):
        self.n += 1
        if self.n > 4:
            raise StopUser()
        self.client.get("/echo/classic", headers={"X-Kind": "classic"})


class Fast(FastHttpUser):
    wait_time = constant(0)
    fixed_count = 1

    def on_start(self):
        self.n = 0

    @task
    def go(self):
        self.n += 1
        if self.n > 4:
            raise StopUser()
        self.client.get("/echo/fast")
        self.client.get("/status/503")
