"""A TaskSet with one task, interrupting itself back to the user."""

from locust import HttpUser, TaskSet, constant, task
from locust.exception import StopUser


class Browse(TaskSet):
    @task
    def page(self):
        self.user.n += 1
        if self.user.n > 6:
            raise StopUser()
        self.client.get("/echo/browse")
        if self.user.n % 2 == 0:
            self.interrupt()


class TaskSetUser(HttpUser):
    wait_time = constant(0)
    tasks = [Browse]

    def on_start(self):
        self.n = 0
