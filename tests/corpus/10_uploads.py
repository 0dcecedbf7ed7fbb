"""File uploads: multipart with a filename and content type, from a file object, and raw bytes with a PUT."""

from locust import HttpUser, constant, task
from locust.exception import StopUser

import io


class UploadUser(HttpUser):
    wait_time = constant(0)

    def on_start(self):
        self.n = 0

    @task
    def upload(self):
        self.n += 1
        if self.n > 3:
            raise StopUser()
        files = {"report": ("report.csv", b"a,b\n1,2\n", "text/csv")}
        with self.client.post("/echo/upload", files=files, data={"kind": "csv"}, catch_response=True) as r:
            if "report.csv" not in r.json()["body"]:
                r.failure("file missing")
        self.client.post("/echo/upload-fileobj", files={"blob": io.BytesIO(b"\x00" * 2048)})
        self.client.put("/echo/raw", data=b"\x01\x02" * 100, headers={"Content-Type": "application/octet-stream"})
