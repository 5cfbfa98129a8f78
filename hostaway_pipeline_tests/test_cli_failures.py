"""Every ``hostaway-pipeline`` failure ends with one line naming its cause, never a traceback: real processes.

Bad settings stop a command before it starts; bad input (Ctrl-D at a prompt, an unknown migration, a port in
use), an unreachable database and a failed sync each print exactly one line on stderr.
"""

from __future__ import annotations

import os
import pty
import socket
import subprocess
import sys

import pytest
import sqlalchemy as sa

from hostaway_pipeline.simulator.server import SimulatorServer
from hostaway_pipeline_tests.cli_runner import isolated_environment, run_cli


def assert_one_line_failure(result: subprocess.CompletedProcess, *causes: str) -> str:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for cause in causes:
        assert cause in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def unreachable_environment(tmp_path, secret_key):
    """A database nobody listens on: a command that gets past its checks fails on the database instead."""
    url = f"postgresql+psycopg2://postgres@/hostaway?host={tmp_path}/nowhere"
    return isolated_environment(tmp_path, url, secret_key)


@pytest.mark.parametrize(("variable", "value", "arguments"), [
    ("HOSTAWAY_API_POOL_LIMIT", "²", ("accounts", "list")),
    ("HOSTAWAY_API_POOL_LIMIT", "²", ("sync", "1")),
    ("HOSTAWAY_API_POOL_LIMIT", "²", ("db", "upgrade")),
    ("HOSTAWAY_API_POOL_LIMIT", "1001", ("status",)),
    ("HOSTAWAY_RATE_LIMIT_PER_IP", "15/0s", ("accounts", "list")),
    ("HOSTAWAY_API_BASE_URL", "http://api.hostaway.com/v1", ("accounts", "list")),
])
def test_a_bad_setting_stops_the_command_at_its_start_in_one_line(unreachable_environment, variable, value,
                                                                   arguments):
    result = run_cli(*arguments, environment={**unreachable_environment, variable: value})
    assert_one_line_failure(result, f"{variable}={value!r}")
    assert result.returncode == 2


def test_the_retired_reconcile_cron_is_one_warning_line_and_stops_nothing(unreachable_environment):
    result = run_cli("accounts", "list", environment={**unreachable_environment,
                                                        "HOSTAWAY_RECONCILE_CRON": "0 2 * * *"})
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("hostaway-pipeline: warning: HOSTAWAY_RECONCILE_CRON='0 2 * * *' is retired")
    assert lines[-1].startswith("hostaway-pipeline: error: database error")  # it went on to the database


def test_a_bad_database_url_is_named_without_showing_it(unreachable_environment):
    password = "pw-9d1c-never-shown"
    environment = {**unreachable_environment, "HOSTAWAY_DATABASE_URL": f"mysql://u:{password}@db.example/h"}
    result = run_cli("accounts", "list", environment=environment)
    assert_one_line_failure(result, "HOSTAWAY_DATABASE_URL is not a PostgreSQL URL")
    assert password not in result.stdout + result.stderr


def test_an_unreachable_database_is_one_line(unreachable_environment):
    assert_one_line_failure(run_cli("accounts", "list", environment=unreachable_environment),
                            "database error", "nowhere")


@pytest.mark.parametrize(("arguments", "cause"), [
    (("accounts", "add", "31337"), "no client secret was typed"),
    (("secrets", "rotate-key"), "no new key was typed"),
])
def test_ctrl_d_at_a_secret_prompt_is_one_line_and_changes_nothing(unreachable_environment, arguments, cause):
    leader, follower = pty.openpty()
    process = subprocess.Popen([sys.executable, "-m", "hostaway_pipeline.cli", *arguments],
                               stdin=follower, stdout=follower, stderr=follower, env=unreachable_environment)
    os.close(follower)
    output = b""
    while b": " not in output:  # the prompt
        output += os.read(leader, 1024)
    os.write(leader, b"\x04")  # Ctrl-D
    assert process.wait(timeout=120) == 2
    try:
        while chunk := os.read(leader, 1024):
            output += chunk
    except OSError:
        pass
    os.close(leader)
    text = output.decode()
    assert "Traceback" not in text, text
    assert text.strip().splitlines()[-1] == f"hostaway-pipeline: error: {cause}; nothing changed"


@pytest.fixture
def database_environment(tmp_path, make_database, secret_key):
    url = make_database("hostaway_cli_failures")
    return isolated_environment(tmp_path, url, secret_key), url


def _schema_revision(url: str) -> str:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as connection:
        revision = connection.execute(sa.text("SELECT version_num FROM hostaway.alembic_version")).scalar_one()
    engine.dispose()
    return revision


@pytest.mark.parametrize("action", ["upgrade", "downgrade"])
def test_an_unknown_migration_revision_is_one_line_and_changes_nothing(database_environment, action):
    environment, url = database_environment
    upgraded = run_cli("db", "upgrade", environment=environment)
    assert upgraded.returncode == 0, upgraded.stderr
    head = _schema_revision(url)
    line = assert_one_line_failure(run_cli("db", action, "no_such_revision", environment=environment),
                                   f"cannot {action} schema hostaway to 'no_such_revision'", "0001")
    assert line.startswith("hostaway-pipeline: error: ")
    assert _schema_revision(url) == head


def test_simulator_serve_on_a_port_in_use_is_one_line():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run([sys.executable, "-m", "hostaway_pipeline.cli", "simulator", "serve", "--port",
                                 str(port)], capture_output=True, text=True, timeout=60)
    assert_one_line_failure(result, f"cannot listen on 127.0.0.1:{port}", "in use")


def test_a_failed_sync_prints_its_cause_and_no_dagster_traceback(database_environment):
    environment, url = database_environment
    account = 51002
    with SimulatorServer(accounts={account: 20}, seed=5, time_scale=50.0) as simulator:
        environment.update({
            "HOSTAWAY_API_BASE_URL": simulator.base_url,
            "HOSTAWAY_RATE_LIMIT_PER_IP": "15/0.2s",
            "HOSTAWAY_RATE_LIMIT_PER_ACCOUNT": "20/0.2s",
            "HOSTAWAY_CLIENT_SECRET": simulator.client_secret(account),
        })
        assert run_cli("accounts", "add", str(account), environment=environment).returncode == 0
        simulator.add_fault(kind="empty_page", endpoint="reservations", count=1000)
        failed = run_cli("sync", str(account), "--assets", "listings,reservations", environment=environment,
                         timeout=300)
    line = assert_one_line_failure(failed, "step hostaway__reservations: ",
                                   f"account {account} reservations: read 0 of the 20 objects")
    # The traceback is kept where it belongs: in the run's event log.
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as connection:
        logged = connection.execute(sa.text(
            "SELECT event FROM event_logs WHERE dagster_event_type = 'STEP_FAILURE'")).scalars().all()
    engine.dispose()
    assert len(logged) == 1 and '"stack"' in logged[0] and "hostaway_pipeline/defs/assets.py" in logged[0]
    assert line.startswith("hostaway-pipeline: error: run ")


def test_the_default_home_is_found_from_any_directory(tmp_path, secret_key):
    environment = isolated_environment(tmp_path, None, secret_key)
    del environment["HOSTAWAY_PIPELINE_HOME"]
    environment["XDG_DATA_HOME"] = str(tmp_path / "data")
    seen = []
    for directory in ("repository", "elsewhere"):
        (tmp_path / directory).mkdir()
        stopped = subprocess.run([sys.executable, "-m", "hostaway_pipeline.cli", "db", "stop"], env=environment,
                                 cwd=tmp_path / directory, capture_output=True, text=True, timeout=60)
        assert stopped.returncode == 0, stopped.stderr
        seen.append(stopped.stdout.strip())
    assert seen == [f"embedded Postgres in {tmp_path / 'data' / 'hostaway_pipeline'} was not running"] * 2
