"""The receiver's worker processes (a real ``webhooks serve``): they serve, stop on SIGTERM, die with the parent."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from hostaway_pipeline.webhooks.receiver import WORKER_PROCESSES
from hostaway_pipeline_tests.cli_runner import isolated_environment
from hostaway_pipeline_tests.webhooks.support import LOGIN, PASSWORD
from hostaway_pipeline_tests.webhooks.test_receiver_killed import _free_port, _healthy, _wait_until

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux") or WORKER_PROCESSES < 2,
                                reason="worker processes are found through Linux's /proc")


def _children(parent: int) -> set[int]:
    children = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone while we looked
            continue
        if int(fields[1]) == parent:
            children.add(int(stat.parent.name))
    return children


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.fixture
def receiver(database_url, secret_key, tmp_path):
    environment = isolated_environment(tmp_path, database_url, secret_key)
    environment.update(HOSTAWAY_WEBHOOK_LOGIN=LOGIN, HOSTAWAY_WEBHOOK_PASSWORD=PASSWORD)
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "hostaway_pipeline.cli", "webhooks", "serve", "--port", str(port)],
        env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _wait_until(lambda: _healthy(f"http://127.0.0.1:{port}/healthz"), "the receiver's health", process)
        _wait_until(lambda: len(_children(process.pid)) >= WORKER_PROCESSES, "the receiver's workers", process)
        yield process, port
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=60)


def test_sigterm_stops_the_receiver_and_every_worker(receiver):
    process, port = receiver
    workers = _children(process.pid)
    assert requests.get(f"http://127.0.0.1:{port}/healthz", timeout=30).status_code == 200
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=120) == 0
    _wait_until(lambda: not any(_alive(pid) for pid in workers), "the workers to exit")


def test_workers_die_with_a_parent_killed_outright(receiver):
    process, _ = receiver
    workers = _children(process.pid)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    _wait_until(lambda: not any(_alive(pid) for pid in workers), "the workers to die with their parent")
