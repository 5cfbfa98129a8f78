"""No client secret or access token in anything a user or a log can see: CLI output and the event log.

A succeeding and a failing ``hostaway-pipeline sync`` run as real processes against the stand-in; their
stdout, stderr and every row of the Dagster event log (stored in the test database) are scanned for the
account's client secret and for every token the stand-in issued.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from hostaway_pipeline.hostaway.errors import HostawayResponseError
from hostaway_pipeline.simulator.server import SimulatorServer
from hostaway_pipeline_tests.cli_runner import run_cli, stand_in_environment
from hostaway_pipeline_tests.pipeline_harness import TIME_SCALE, build_harness

ACCOUNT = 53001


def event_log_text(url: str) -> str:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as connection:
        rows = connection.execute(sa.text("SELECT event FROM event_logs")).scalars().all()
    engine.dispose()
    return "\n".join(rows)


def test_a_succeeding_and_a_failing_sync_show_neither_secret_nor_token(tmp_path, make_database, secret_key):
    url = make_database("hostaway_secrets")
    with SimulatorServer(accounts={ACCOUNT: 40}, seed=9, time_scale=TIME_SCALE) as simulator:
        environment = stand_in_environment(tmp_path, url, secret_key, simulator.base_url,
                                           simulator.client_secret(ACCOUNT))
        added = run_cli("accounts", "add", str(ACCOUNT), environment=environment)
        assert added.returncode == 0, added.stderr
        succeeded = run_cli("sync", str(ACCOUNT), environment=environment, timeout=300)
        assert succeeded.returncode == 0, succeeded.stderr
        simulator.revoke_all_tokens()  # the next run mints another token, then fails on the messages
        simulator.add_fault(kind="status", endpoint="messages", status_code=503, count=10_000)
        simulator.mutate(ACCOUNT, {"outgoing_messages": 3})
        failed = run_cli("sync", str(ACCOUNT), environment=environment, timeout=300)
        assert failed.returncode != 0
        tokens = simulator.tokens.issued_values()
    assert len(tokens) >= 2
    secrets = [simulator.client_secret(ACCOUNT), *tokens]
    seen = "\n".join([added.stdout, added.stderr, succeeded.stdout, succeeded.stderr, failed.stdout, failed.stderr,
                      event_log_text(url)])
    assert "HTTP 503" in seen  # the failure is there to be read ...
    assert [s for s in secrets if s in seen] == []  # ... and no secret with it


def test_a_token_that_is_not_a_plain_string_is_refused_without_echoing_it(engine, database_url, pipeline_settings_env):
    hostile = "eyJhbGciOi\nSet-Cookie: x"
    with SimulatorServer(accounts={ACCOUNT: "empty"}, seed=9, time_scale=TIME_SCALE) as simulator:
        simulator.add_fault(kind="status", endpoint="accessTokens", status_code=200,
                            body={"token_type": "Bearer", "expires_in": 1000, "access_token": hostile})
        harness = build_harness(database_url, simulator)
        harness.warehouse.accounts.add(ACCOUNT, simulator.client_secret(ACCOUNT))
        with pytest.raises(HostawayResponseError) as raised:
            harness.api.client_for(ACCOUNT).listings()
    message = str(raised.value)
    assert "not a plain printable string" in message
    assert "eyJhbGciOi" not in message and "Set-Cookie" not in message
