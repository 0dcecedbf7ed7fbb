"""A custom LoadTestShape: two users for a moment, then the shape ends the test."""

from locust import HttpUser, LoadTestShape, constant, task
from locust.exception import StopUser


class ShapedUser(HttpUser):
    wait_time = constant(0)

    def on_start(self):
        self.n = 0

    @task
    def hit(self):
        self.n += 1
        if self.n > 3:
            raise StopUser()
        self.client.get("/echo/shaped")


class TwoStepShape(LoadTestShape):
    def tick(self):
        t = self.get_run_time()
        if t < 2.5:
            return (2, 10)
        return None
