"""A SequentialTaskSet: the steps run in order, three rounds."""

from locust import HttpUser, SequentialTaskSet, constant, task
from locust.exception import StopUser


class Checkout(SequentialTaskSet):
    @task
    def cart(self):
        self.client.get("/echo/cart")

    @task
    def address(self):
        self.client.post("/echo/address", data={"street": "Main St 1"})

    @task
    def pay(self):
        self.client.post("/echo/pay", json={"amount": 10})
        self.user.rounds += 1
        if self.user.rounds >= 3:
            raise StopUser()


class SequentialUser(HttpUser):
    wait_time = constant(0)
    tasks = [Checkout]

    def on_start(self):
        self.rounds = 0
