"""The receiver killed mid-request (SIGKILL, a real process) loses no event it acknowledged."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Any

import requests
import sqlalchemy as sa

from hostaway_pipeline_tests.cli_runner import isolated_environment
from hostaway_pipeline_tests.webhooks.support import LOGIN, PASSWORD, register_account, stored_events

ACCOUNT = 31001
STARTUP_DEADLINE_SECONDS = 120.0  # a wait for readiness on a loaded machine, not an assertion on speed


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _delivery(object_id: int) -> dict[str, Any]:
    return {"object": "reservation", "event": "reservation.updated", "accountId": ACCOUNT,
            "payload": {"data": {"id": object_id, "updatedOn": "2026-03-01 10:00:00"}}}


def _wait_until(condition, what: str, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + STARTUP_DEADLINE_SECONDS
    while not condition():
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the receiver exited ({process.returncode}): {process.stderr.read()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting: {what}")
        time.sleep(0.05)


def _healthy(url: str) -> bool:
    try:
        return requests.get(url, timeout=5).status_code == 200
    except requests.RequestException:
        return False


def test_every_acknowledged_event_is_stored_when_the_receiver_is_killed_mid_request(
        engine, database_url, secret_key, tmp_path):
    register_account(engine, ACCOUNT)
    environment = isolated_environment(tmp_path, database_url, secret_key)
    environment.update(HOSTAWAY_WEBHOOK_LOGIN=LOGIN, HOSTAWAY_WEBHOOK_PASSWORD=PASSWORD)
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "hostaway_pipeline.cli", "webhooks", "serve", "--port", str(port)],
        env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}/webhooks/hostaway"
    outcomes: dict[int, int | str] = {}
    try:
        _wait_until(lambda: _healthy(f"http://127.0.0.1:{port}/healthz"), "the receiver's health", process)
        for object_id in (1, 2, 3):  # acknowledged before anything goes wrong
            outcomes[object_id] = requests.post(url, json=_delivery(object_id), auth=(LOGIN, PASSWORD),
                                                timeout=60).status_code

        def deliver(object_id: int) -> None:
            try:
                outcomes[object_id] = requests.post(url, json=_delivery(object_id), auth=(LOGIN, PASSWORD),
                                                    timeout=60).status_code
            except requests.RequestException as error:
                outcomes[object_id] = type(error).__name__

        # Hold the table so the receiver's inserts wait, then kill it while they are in flight.
        with engine.connect() as blocker:
            blocker.execute(sa.text("LOCK TABLE hostaway.webhook_events IN EXCLUSIVE MODE"))
            senders = [threading.Thread(target=deliver, args=(object_id,)) for object_id in range(10, 15)]
            for sender in senders:
                sender.start()
            # (or until the receiver answered them all without waiting for the database: then it acknowledged
            # what it had not stored, and the kill shows it)
            _wait_until(lambda: _waiting_inserts(engine) == len(senders)
                        or not any(sender.is_alive() for sender in senders), "the receiver's inserts to wait")
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=60)
            for sender in senders:
                sender.join(timeout=120)
            blocker.rollback()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=60)
    acknowledged = {object_id for object_id, outcome in outcomes.items() if outcome == 200}
    stored = {event.object_id for event in stored_events(engine)}
    assert {1, 2, 3} <= acknowledged
    assert acknowledged <= stored, f"acknowledged but lost: {sorted(acknowledged - stored)}; outcomes {outcomes}"


def _waiting_inserts(engine) -> int:
    with engine.connect() as connection:
        return connection.execute(sa.text(
            "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
            "WHERE c.relname = 'webhook_events' AND NOT l.granted"
        )).scalar_one()
