"""Nested TaskSets: a thread inside a forum inside the site. Each forum visit reads one thread, then leaves."""

from locust import HttpUser, SequentialTaskSet, TaskSet, constant, task
from locust.exception import StopUser


class Thread(TaskSet):
    @task
    def read(self):
        self.client.get("/echo/thread")
        self.interrupt()


class Forum(SequentialTaskSet):
    def on_start(self):
        self.user.visits += 1
        if self.user.visits > 4:
            raise StopUser()
        self.client.get("/echo/forum")

    tasks = [Thread]

    @task
    def leave(self):
        self.client.get("/echo/forum-exit")
        self.interrupt()


class Site(TaskSet):
    tasks = [Forum]

    def on_start(self):
        self.client.get("/echo/site")


class NestedUser(HttpUser):
    wait_time = constant(0)
    tasks = [Site]

    def on_start(self):
        self.visits = 0
