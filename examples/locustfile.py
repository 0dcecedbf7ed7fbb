"""Example locustfile: a shopper browsing the toy shop of ``examples/target.py``.

    python examples/target.py --port 8080 &
    locust -f examples/locustfile.py --host http://127.0.0.1:8080

The only locust-rs specific line is the import of ``FastHttpUser``; everything else is plain Locust.
"""

from locust import between, task

import random

from locust_rs import FastHttpUser

# ids the target knows (1..20, see examples/target.py)
ITEM_IDS = range(1, 21)


class Shopper(FastHttpUser):
    wait_time = between(0.01, 0.05)

    def on_start(self) -> None:
        with self.client.post(
            "/api/login", json={"username": "shopper", "password": "secret"}, catch_response=True
        ) as resp:
            token = resp.json().get("token") if resp.status_code == 200 else None
            if not token:
                resp.failure(f"login gave no token (status {resp.status_code})")
                self.auth = {}
                return
        self.auth = {"Authorization": f"Bearer {token}"}

    @task(1)
    def home(self) -> None:
        self.client.get("/")

    @task(3)
    def list_items(self) -> None:
        with self.client.get("/api/items", headers=self.auth, catch_response=True) as resp:
            # a 200 with the wrong body is still a failure for the shopper
            if resp.status_code == 200 and not resp.json().get("items"):
                resp.failure("no items in the answer")

    @task(2)
    def view_item(self) -> None:
        item_id = random.choice(ITEM_IDS)
        # one stats row for every item page instead of one per id
        self.client.get(f"/api/items/{item_id}", headers=self.auth, name="/api/items/[id]")
