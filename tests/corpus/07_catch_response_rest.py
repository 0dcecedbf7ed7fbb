"""catch_response validations (success on 404, failure on content) and rest()."""

from locust import HttpUser, constant, task
from locust.exception import StopUser


class ValidatingUser(HttpUser):
    wait_time = constant(0)

    def on_start(self):
        self.n = 0

    @task
    def validate(self):
        self.n += 1
        if self.n > 4:
            raise StopUser()
        with self.client.get("/status/404", catch_response=True, name="expected 404") as r:
            if r.status_code == 404:
                r.success()
        with self.client.get("/json", catch_response=True) as r:
            if r.json().get("hello") != "world":
                r.failure("wrong greeting")
        with self.client.get("/text", catch_response=True) as r:
            if "nothing like this" not in r.text:
                r.failure("text check failed")
        with self.rest("POST", "/echo/api", json={"n": self.n}) as r:
            if r.js["method"] != "POST":
                r.failure("wrong method")
        with self.rest("GET", "/json-invalid"):
            pass
        with self.rest("GET", "/json") as r:
            assert r.js["hello"] == "mars", "unexpected planet"
