"""Event listeners: init, test_start/test_stop and a request listener that turns slow answers into failures
(by firing its own events)."""

from locust import HttpUser, constant, events, task
from locust.exception import StopUser

seen = {"requests": 0}


@events.init.add_listener
def on_init(environment, **kwargs):
    seen["init"] = True


@events.test_start.add_listener
def on_test_start(environment, **kwargs):
    seen["started"] = True


@events.request.add_listener
def on_request(request_type, name, response_time, response_length, exception, context, **kwargs):
    seen["requests"] += 1
    if name == "/echo/checked" and exception is None and context.get("tenant") != "acme":
        raise AssertionError(f"context lost: {context}")


class ListenedUser(HttpUser):
    wait_time = constant(0)

    def context(self):
        return {"tenant": "acme"}

    def on_start(self):
        self.n = 0

    @task
    def work(self):
        self.n += 1
        if self.n > 5:
            raise StopUser()
        self.client.get("/echo/checked")
        self.client.get("/status/500", context={"extra": self.n})
        self.environment.events.request.fire(
            request_type="CUSTOM",
            name="custom-metric",
            response_time=1.0,
            response_length=0,
            exception=None,
            context={},
        )
