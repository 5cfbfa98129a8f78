"""``hostaway-pipeline sync`` and ``status`` as real processes against the stand-in and a real instance."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from hostaway_pipeline.simulator.server import SimulatorServer
from hostaway_pipeline_tests.cli_runner import run_cli, stand_in_environment

ACCOUNT = 51001


@pytest.fixture
def environment_with_account(tmp_path, make_database, secret_key):
    url = make_database("hostaway_cli_sync")
    with SimulatorServer(accounts={ACCOUNT: 40}, seed=9, time_scale=50.0) as simulator:
        environment = stand_in_environment(tmp_path, url, secret_key, simulator.base_url,
                                           simulator.client_secret(ACCOUNT))
        assert run_cli("accounts", "add", str(ACCOUNT), environment=environment).returncode == 0
        yield environment, url, simulator


def test_sync_materializes_the_account_as_a_run_of_the_instance_and_status_reports_it(environment_with_account):
    environment, url, simulator = environment_with_account
    synced = run_cli("sync", str(ACCOUNT), environment=environment, timeout=300)
    assert synced.returncode == 0, synced.stderr
    assert "succeeded" in synced.stdout
    assert " - dagster - " not in synced.stdout + synced.stderr and "Traceback" not in synced.stderr
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as connection:
        reservations = connection.execute(sa.text("SELECT count(*) FROM hostaway.reservations")).scalar()
        runs = connection.execute(sa.text("SELECT pipeline_name, status FROM runs")).all()
    engine.dispose()
    assert reservations == len(simulator.truth(ACCOUNT)["reservations"])
    assert [(name, status) for name, status in runs] == [("reconcile_hostaway_account", "SUCCESS")]

    status = run_cli("status", environment=environment)
    assert status.returncode == 0, status.stderr
    assert f"account {ACCOUNT}" in status.stdout
    assert f"live rows {len(simulator.truth(ACCOUNT)['reservations'])}" in status.stdout
    assert "failing checks: none" in status.stdout
    assert "never" not in status.stdout
    assert "latest run: success at " in status.stdout


def test_sync_prints_the_messages_steps_progress_lines_as_the_run_logs_them(tmp_path, make_database, secret_key):
    account = ACCOUNT + 1
    url = make_database("hostaway_cli_progress")
    with SimulatorServer(accounts={account: 250}, seed=9, time_scale=50.0) as simulator:
        environment = stand_in_environment(tmp_path, url, secret_key, simulator.base_url,
                                           simulator.client_secret(account))
        assert run_cli("accounts", "add", str(account), environment=environment).returncode == 0
        synced = run_cli("sync", str(account), environment=environment, timeout=300)
        conversations = len(simulator.truth(account)["conversations"])
    assert synced.returncode == 0, synced.stderr
    progress = [line for line in synced.stdout.splitlines() if line.startswith("progress: ")]
    assert progress, synced.stdout  # at least one per batch of 100 conversations
    assert all(line.startswith(f"progress: messages of account {account}: ") for line in progress)
    assert f"/{conversations} conversations read" in progress[-1] and " calls" in progress[-1]
    # Only the progress lines (and the summary after the run): none of Dagster's own log lines.
    assert " - dagster - " not in synced.stdout + synced.stderr and "Traceback" not in synced.stderr


def test_sync_of_a_subset_and_of_a_disabled_account(environment_with_account):
    environment, _, _ = environment_with_account
    only_listings = run_cli("sync", str(ACCOUNT), "--assets", "listings", environment=environment, timeout=300)
    assert only_listings.returncode == 0 and "listings" in only_listings.stdout
    assert "reservations" not in only_listings.stdout
    assert run_cli("accounts", "disable", str(ACCOUNT), environment=environment).returncode == 0
    refused = run_cli("sync", str(ACCOUNT), environment=environment)
    assert refused.returncode == 2 and "is disabled" in refused.stderr


def test_sync_exits_non_zero_naming_the_short_read_and_deletes_nothing(environment_with_account):
    environment, url, simulator = environment_with_account
    assert run_cli("sync", str(ACCOUNT), environment=environment, timeout=300).returncode == 0
    simulator.add_fault(kind="empty_page", endpoint="reservations", count=1000)
    failed = run_cli("sync", str(ACCOUNT), environment=environment, timeout=300)
    assert failed.returncode != 0
    last_line = failed.stderr.strip().splitlines()[-1]
    counted = len(simulator.truth(ACCOUNT)["reservations"])
    assert "hostaway__reservations" in last_line
    assert f"account {ACCOUNT} reservations: read 0 of the {counted} objects the API counted" in last_line
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as connection:
        deleted = connection.execute(
            sa.text("SELECT count(*) FROM hostaway.reservations WHERE deleted_at IS NOT NULL")).scalar()
        live = connection.execute(
            sa.text("SELECT count(*) FROM hostaway.reservations WHERE deleted_at IS NULL")).scalar()
    engine.dispose()
    assert deleted == 0 and live == counted

    status = run_cli("status", environment=environment)
    assert status.returncode == 0, status.stderr
    assert "latest run: failure at " in status.stdout and "not materialized: reservations" in status.stdout
    reason = f"failed step hostaway__reservations: account {ACCOUNT} reservations: read 0 of the {counted}"
    assert reason in status.stdout, status.stdout


def test_sync_exits_non_zero_when_an_error_check_fails(environment_with_account):
    environment, url, simulator = environment_with_account
    assert run_cli("sync", str(ACCOUNT), environment=environment, timeout=300).returncode == 0
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as connection:
        # A row stamped as written by another writer after any read could begin: no sync deletes it, so the
        # live rows no longer match the API's count and the ERROR-severity row-count check fails.
        connection.execute(sa.text(
            "INSERT INTO hostaway.listings (account_id, id, raw, synced_at) "
            "VALUES (:account, 1, '{}'::jsonb, now() + interval '1 day')"), {"account": ACCOUNT})
    engine.dispose()
    checked = run_cli("sync", str(ACCOUNT), "--assets", "listings", environment=environment, timeout=300)
    assert checked.returncode != 0
    last_line = checked.stderr.strip().splitlines()[-1]
    assert "check hostaway/listings:row_count_matches_api" in last_line
    assert "live_rows=" in last_line and "api_count=" in last_line
