"""``hostaway-pipeline webhooks ...`` as a user runs it: real processes, real Postgres, the stand-in."""

from __future__ import annotations

import pytest

from hostaway_pipeline_tests.cli_runner import isolated_environment, run_cli


@pytest.fixture
def cli_environment(tmp_path, make_database, secret_key) -> dict[str, str]:
    return isolated_environment(tmp_path, make_database("hostaway_webhooks_cli"), secret_key)


@pytest.mark.parametrize("missing", ["HOSTAWAY_WEBHOOK_LOGIN", "HOSTAWAY_WEBHOOK_PASSWORD"])
def test_serve_refuses_to_start_without_credentials_in_one_line(cli_environment, missing):
    cli_environment.update(HOSTAWAY_WEBHOOK_LOGIN="hook", HOSTAWAY_WEBHOOK_PASSWORD="pw")
    del cli_environment[missing]
    result = run_cli("webhooks", "serve", "--port", "0", environment=cli_environment, timeout=60)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and missing in result.stderr and "Traceback" not in result.stderr
