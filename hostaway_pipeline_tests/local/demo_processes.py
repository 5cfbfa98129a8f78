"""Helpers for tests that run the demo as real processes: free ports, a fresh environment, leftovers."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

DEMO_TIMEOUT_SECONDS = 600
LIVE_LINE = "Ctrl-C stops the demo"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def marked_processes(marker: str) -> list[int]:
    """Pids of live processes whose environment holds ``marker`` (zombies excluded)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker.encode() in (entry / "environ").read_bytes() and \
                    (entry / "stat").read_text().split(")")[-1].split()[0] != "Z":
                found.append(int(entry.name))
        except OSError:  # gone meanwhile, or not ours to read
            continue
    return found


def wait_none_left(marker: str, seconds: float = 15.0) -> list[int]:
    deadline = time.monotonic() + seconds
    while (left := marked_processes(marker)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


@pytest.fixture
def demo_environment(make_database, tmp_path: Path) -> Iterator[dict[str, str]]:
    marker = f"demo-test-{uuid.uuid4().hex}"
    environment = {
        **os.environ,
        "HOSTAWAY_DATABASE_URL": make_database("hostaway_demo"),
        "HOSTAWAY_SECRET_KEY": Fernet.generate_key().decode(),
        "HOSTAWAY_PIPELINE_HOME": str(tmp_path / "home"),
        "HOSTAWAY_WEBHOOK_PORT": str(free_port()),
        "HOSTAWAY_DEMO_TEST_MARKER": marker,
    }
    for name in ("DAGSTER_HOME", "HOSTAWAY_DAGSTER_DATABASE_URL", "HOSTAWAY_WEBHOOK_LOGIN",
                 "HOSTAWAY_WEBHOOK_PASSWORD", "HOSTAWAY_API_BASE_URL"):
        environment.pop(name, None)
    yield environment
    for pid in marked_processes(marker):  # never leave a failed test's processes running
        os.kill(pid, signal.SIGKILL)


def start_demo(environment: dict[str, str], *arguments: str, port: int | None = None) -> subprocess.Popen:
    """The demo with two small stand-in accounts, its output (stdout and stderr) on a pipe."""
    return subprocess.Popen(
        [sys.executable, "-m", "hostaway_pipeline", "demo", "--sizes", "12,5", "--port", str(port or free_port()),
         *arguments],
        env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wait_for_live_phase(demo: subprocess.Popen) -> list[str]:
    """Read the demo's output until it says it is live; returns the lines read."""
    assert demo.stdout is not None
    seen: list[str] = []
    deadline = time.monotonic() + DEMO_TIMEOUT_SECONDS
    for line in demo.stdout:
        seen.append(line)
        if LIVE_LINE in line or time.monotonic() > deadline:
            break
    assert any(LIVE_LINE in line for line in seen), "".join(seen)
    return seen
