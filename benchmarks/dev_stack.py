"""``hostaway-pipeline dev`` in its own process group, for benchmarks that need the whole local system.

The command runs exactly as a user starts it (the console script next to this interpreter), with a
scratch ``HOSTAWAY_PIPELINE_HOME`` (so its own ``DAGSTER_HOME`` and logs), the benchmark database as
``HOSTAWAY_DATABASE_URL`` (warehouse and Dagster storage), the stand-in as the API, and the webhook
login and password in the environment. Every other setting is left at its default. Ready when the
receiver's ``/healthz`` and the webserver's ``/server_info`` answer; stopped with SIGINT (its Ctrl-C
path), and whatever is left of its process group is killed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

from benchmarks.receiver_process import free_port
from hostaway_pipeline.webhooks.receiver import WEBHOOK_PATH

STARTUP_DEADLINE_SECONDS = 300.0
STOP_GRACE_SECONDS = 60.0


class DevStackProcess:
    """Context manager: ``hostaway-pipeline dev --port P`` with the receiver on another free port."""

    def __init__(self, database_url: str, api_base_url: str, login: str, password: str) -> None:
        self.database_url = database_url
        self.api_base_url = api_base_url
        self.login = login
        self.password = password
        self.ui_port = free_port()
        self.webhook_port = free_port()
        self._directory = tempfile.TemporaryDirectory(prefix="hostaway_bench_dev_")
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def home(self) -> Path:
        return Path(self._directory.name) / "home"

    @property
    def webhook_url(self) -> str:
        return f"http://127.0.0.1:{self.webhook_port}{WEBHOOK_PATH}"

    @property
    def log_path(self) -> Path:
        return Path(self._directory.name) / "dev.log"

    def __enter__(self) -> DevStackProcess:
        environment = {key: value for key, value in os.environ.items()
                       if not key.startswith(("HOSTAWAY_", "DAGSTER_"))}
        environment.update(
            HOSTAWAY_PIPELINE_HOME=str(self.home), HOSTAWAY_DATABASE_URL=self.database_url,
            HOSTAWAY_API_BASE_URL=self.api_base_url, HOSTAWAY_WEBHOOK_HOST="127.0.0.1",
            HOSTAWAY_WEBHOOK_PORT=str(self.webhook_port), HOSTAWAY_WEBHOOK_LOGIN=self.login,
            HOSTAWAY_WEBHOOK_PASSWORD=self.password)
        if os.environ.get("HOSTAWAY_SECRET_KEY"):
            environment["HOSTAWAY_SECRET_KEY"] = os.environ["HOSTAWAY_SECRET_KEY"]
        command = [str(Path(sys.executable).with_name("hostaway-pipeline")), "dev", "--port", str(self.ui_port)]
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(command, env=environment, stdout=log, stderr=subprocess.STDOUT,
                                             start_new_session=True)
        deadline = time.monotonic() + STARTUP_DEADLINE_SECONDS
        while not (self._answers(f"http://127.0.0.1:{self.webhook_port}/healthz")
                   and self._answers(f"http://127.0.0.1:{self.ui_port}/server_info")):
            if self._process.poll() is not None or time.monotonic() > deadline:
                log_tail = self.log_path.read_text(errors="replace")[-3000:]
                self.__exit__()
                raise RuntimeError(f"hostaway-pipeline dev did not become ready; its output ends:\n{log_tail}")
            time.sleep(0.5)
        return self

    @staticmethod
    def _answers(url: str) -> bool:
        try:
            return requests.get(url, timeout=5).status_code == 200
        except requests.RequestException:
            return False

    def __exit__(self, *exc_info: object) -> None:
        process, self._process = self._process, None
        if process is not None:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
                try:
                    process.wait(timeout=STOP_GRACE_SECONDS)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=30)
            # Anything the stack left behind in its process group (it should have stopped it all).
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
        self._directory.cleanup()
