"""``hostaway-pipeline demo`` end to end in real processes: webhooks applied by the daemon, nothing left behind.

Each test runs the demo as a child process on a fresh database and home, with a marker variable in its
environment that every process it starts inherits; afterwards no process carrying the marker may exist.
Small stand-in accounts keep the runs short; the seed-size account is what ``make demo`` uses.
"""

from __future__ import annotations

import signal

import sqlalchemy as sa

from hostaway_pipeline.storage.engine import get_engine
from hostaway_pipeline.storage.tables import accounts
from hostaway_pipeline_tests.local.demo_processes import (
    DEMO_TIMEOUT_SECONDS,
    marked_processes,
    start_demo,
    wait_for_live_phase,
    wait_none_left,
)


def test_demo_once_applies_its_webhooks_through_the_daemon_and_leaves_no_process(demo_environment):
    demo = start_demo(demo_environment, "--once")
    output, _ = demo.communicate(timeout=DEMO_TIMEOUT_SECONDS)
    assert demo.returncode == 0, output
    assert "0 webhook-sourced" not in output
    applied = [line for line in output.splitlines() if "webhook events applied by the daemon" in line]
    assert applied and int(applied[0].split()[0]) > 0, output
    assert "429 answers for exceeding the rate limit: 0" in output
    assert wait_none_left(demo_environment["HOSTAWAY_DEMO_TEST_MARKER"]) == []
    engine = get_engine(demo_environment["HOSTAWAY_DATABASE_URL"])
    with engine.connect() as connection:  # the stand-in is gone: its accounts must not be synced meanwhile
        enabled = connection.execute(sa.select(accounts.c.account_id).where(accounts.c.enabled)).scalars().all()
    assert enabled == []


def test_ctrl_c_during_the_live_demo_stops_every_process_it_started(demo_environment):
    demo = start_demo(demo_environment)
    seen = wait_for_live_phase(demo)
    assert len(marked_processes(demo_environment["HOSTAWAY_DEMO_TEST_MARKER"])) >= 3  # demo, receiver, dagster
    demo.send_signal(signal.SIGINT)
    rest, _ = demo.communicate(timeout=120)
    assert "every process the demo started is stopped" in rest, "".join(seen) + rest
    assert wait_none_left(demo_environment["HOSTAWAY_DEMO_TEST_MARKER"]) == []
