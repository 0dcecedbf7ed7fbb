"""Login in on_start, a session cookie carried by every later request, logout in on_stop."""

from locust import HttpUser, constant, task
from locust.exception import StopUser


class LoggedInUser(HttpUser):
    wait_time = constant(0)

    def on_start(self):
        self.n = 0
        self.client.post("/echo/login", data={"username": "alice", "password": "secret"})
        self.client.get("/cookies/set?session=abc123&theme=dark", name="/cookies/set")

    @task
    def account(self):
        self.n += 1
        if self.n > 4:
            raise StopUser()
        with self.client.get("/cookies", catch_response=True) as r:
            if r.json()["cookies"].get("session") != "abc123":
                r.failure("not logged in")
        self.client.get("/cookies/set-redirect?visited=1", name="/cookies/set-redirect")

    def on_stop(self):
        self.client.get("/cookies/delete?session", name="/cookies/delete")
        with self.client.get("/cookies", name="/cookies after logout", catch_response=True) as r:
            if "session" in r.json()["cookies"]:
                r.failure("still logged in")
