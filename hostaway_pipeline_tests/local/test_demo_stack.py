"""``hostaway-pipeline demo`` end to end in real processes: webhooks applied by the daemon, nothing left behind.

Each test runs the demo as a child process on a fresh database and home, with a marker variable in its
environment that every process it starts inherits; afterwards no process carrying the marker may exist.
Small stand-in accounts keep the runs short; the seed-size account is what ``make demo`` uses.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet

from hostaway_pipeline.storage.engine import get_engine
from hostaway_pipeline.storage.tables import accounts

DEMO_TIMEOUT_SECONDS = 600


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _marked_processes(marker: str) -> list[int]:
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


def _wait_none_left(marker: str, seconds: float = 15.0) -> list[int]:
    deadline = time.monotonic() + seconds
    while (left := _marked_processes(marker)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


@pytest.fixture
def demo_environment(make_database, tmp_path: Path) -> dict[str, str]:
    marker = f"demo-test-{uuid.uuid4().hex}"
    environment = {
        **os.environ,
        "HOSTAWAY_DATABASE_URL": make_database("hostaway_demo"),
        "HOSTAWAY_SECRET_KEY": Fernet.generate_key().decode(),
        "HOSTAWAY_PIPELINE_HOME": str(tmp_path / "home"),
        "HOSTAWAY_WEBHOOK_PORT": str(_free_port()),
        "HOSTAWAY_DEMO_TEST_MARKER": marker,
    }
    for name in ("DAGSTER_HOME", "HOSTAWAY_DAGSTER_DATABASE_URL", "HOSTAWAY_WEBHOOK_LOGIN",
                 "HOSTAWAY_WEBHOOK_PASSWORD", "HOSTAWAY_API_BASE_URL"):
        environment.pop(name, None)
    yield environment
    for pid in _marked_processes(marker):  # never leave a failed test's processes running
        os.kill(pid, signal.SIGKILL)


def _demo(environment: dict[str, str], *arguments: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "hostaway_pipeline", "demo", "--sizes", "12,5", "--port", str(_free_port()),
         *arguments],
        env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_demo_once_applies_its_webhooks_through_the_daemon_and_leaves_no_process(demo_environment):
    demo = _demo(demo_environment, "--once")
    output, _ = demo.communicate(timeout=DEMO_TIMEOUT_SECONDS)
    assert demo.returncode == 0, output
    assert "0 webhook-sourced" not in output
    applied = [line for line in output.splitlines() if "webhook events applied by the daemon" in line]
    assert applied and int(applied[0].split()[0]) > 0, output
    assert "429 answers for exceeding the rate limit: 0" in output
    assert _wait_none_left(demo_environment["HOSTAWAY_DEMO_TEST_MARKER"]) == []
    engine = get_engine(demo_environment["HOSTAWAY_DATABASE_URL"])
    with engine.connect() as connection:  # the stand-in is gone: its accounts must not be synced meanwhile
        enabled = connection.execute(sa.select(accounts.c.account_id).where(accounts.c.enabled)).scalars().all()
    assert enabled == []


def test_ctrl_c_during_the_live_demo_stops_every_process_it_started(demo_environment):
    demo = _demo(demo_environment)
    assert demo.stdout is not None
    seen = []
    deadline = time.monotonic() + DEMO_TIMEOUT_SECONDS
    for line in demo.stdout:  # read until the demo is in its live phase
        seen.append(line)
        if "Ctrl-C stops the demo" in line or time.monotonic() > deadline:
            break
    assert any("Ctrl-C stops the demo" in line for line in seen), "".join(seen)
    assert len(_marked_processes(demo_environment["HOSTAWAY_DEMO_TEST_MARKER"])) >= 3  # demo, receiver, dagster
    demo.send_signal(signal.SIGINT)
    rest, _ = demo.communicate(timeout=120)
    assert "every process the demo started is stopped" in rest, "".join(seen) + rest
    assert _wait_none_left(demo_environment["HOSTAWAY_DEMO_TEST_MARKER"]) == []
