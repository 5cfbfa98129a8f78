"""The webhook receiver in its own OS process, started exactly as ``hostaway-pipeline webhooks serve`` is.

The child gets a scratch ``HOSTAWAY_PIPELINE_HOME``, the benchmark database as ``HOSTAWAY_DATABASE_URL``
and the webhook login and password in its environment (never argv). Ready once ``/healthz`` answers 200
(the schema is migrated by then); stopped with SIGTERM, as a user's Ctrl-C would, killed if it lingers.
Its log goes to a file, shown when it fails to start.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from hostaway_pipeline.webhooks.receiver import WEBHOOK_PATH

STARTUP_DEADLINE_SECONDS = 120.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class ReceiverProcess:
    """Context manager: ``hostaway-pipeline webhooks serve`` on 127.0.0.1, a free port, ``database_url``."""

    def __init__(self, database_url: str, login: str, password: str) -> None:
        self.database_url = database_url
        self.login = login
        self.password = password
        self.host = "127.0.0.1"
        self.port = free_port()
        self._directory = tempfile.TemporaryDirectory(prefix="hostaway_bench_receiver_")
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def path(self) -> str:
        return WEBHOOK_PATH

    @property
    def log_path(self) -> Path:
        return Path(self._directory.name) / "receiver.log"

    def __enter__(self) -> ReceiverProcess:
        environment = {key: value for key, value in os.environ.items()
                       if not key.startswith(("HOSTAWAY_", "DAGSTER_"))}
        environment.update(HOSTAWAY_PIPELINE_HOME=str(Path(self._directory.name) / "home"),
                           HOSTAWAY_DATABASE_URL=self.database_url,
                           HOSTAWAY_WEBHOOK_LOGIN=self.login, HOSTAWAY_WEBHOOK_PASSWORD=self.password)
        if os.environ.get("HOSTAWAY_SECRET_KEY"):
            environment["HOSTAWAY_SECRET_KEY"] = os.environ["HOSTAWAY_SECRET_KEY"]
        command = [sys.executable, "-m", "hostaway_pipeline.cli", "webhooks", "serve",
                   "--host", self.host, "--port", str(self.port)]
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(command, env=environment, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + STARTUP_DEADLINE_SECONDS
        while not self._healthy():
            if self._process.poll() is not None or time.monotonic() > deadline:
                log_tail = self.log_path.read_text(errors="replace")[-2000:]
                self.__exit__()
                raise RuntimeError(f"the webhook receiver did not become healthy; its log ends:\n{log_tail}")
            time.sleep(0.1)
        return self

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.base_url}/healthz", timeout=5) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def __exit__(self, *exc_info: object) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=30)
            self._process = None
        self._directory.cleanup()
