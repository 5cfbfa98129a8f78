"""``hostaway-pipeline webhooks ...`` as a user runs it: real processes, real Postgres, the stand-in."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from hostaway_pipeline.simulator.server import SimulatorServer
from hostaway_pipeline.storage.account_registry import AccountRegistry
from hostaway_pipeline.storage.engine import get_engine
from hostaway_pipeline.storage.redaction import Redactor
from hostaway_pipeline.storage.secret_box import SecretBox
from hostaway_pipeline.webhooks.receiver import BasicCredentials, receiver_app
from hostaway_pipeline_tests.cli_runner import isolated_environment, run_cli
from hostaway_pipeline_tests.simulator.support import NO_LIMIT, Api
from hostaway_pipeline_tests.webhooks.support import LOGIN, PASSWORD, served, stored_events, webhook_url


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


# --- registration against the stand-in ---------------------------------------------------------------

ACCOUNT = 20001
OTHER_INTEGRATION = {"isEnabled": 1, "url": "https://other.example/hook", "login": "someone-else", "password": "p"}


@pytest.fixture
def sim() -> Iterator[SimulatorServer]:
    with SimulatorServer(accounts={ACCOUNT: 10}, seed=5, time_scale=100.0, ip_limit=NO_LIMIT,
                         account_limit=NO_LIMIT) as server:
        yield server


@pytest.fixture
def registered(cli_environment, sim, secret_key) -> dict[str, str]:
    """The CLI's environment on the stand-in, with ACCOUNT registered and the deployment's webhook credentials."""
    engine = get_engine(cli_environment["HOSTAWAY_DATABASE_URL"])
    AccountRegistry(engine, SecretBox(secret_key)).add(ACCOUNT, sim.client_secret(ACCOUNT))
    cli_environment.update(HOSTAWAY_API_BASE_URL=sim.base_url, HOSTAWAY_WEBHOOK_LOGIN=LOGIN,
                           HOSTAWAY_WEBHOOK_PASSWORD=PASSWORD)
    return cli_environment


def webhooks_on(sim: SimulatorServer) -> list[dict[str, Any]]:
    return Api(sim, ACCOUNT).json("/webhooks/unifiedWebhooks")["result"]


def test_register_twice_and_with_a_new_url_keeps_one_registration_and_spares_other_integrations(sim, registered):
    Api(sim, ACCOUNT).session.post(f"{sim.base_url}/webhooks/unifiedWebhooks", json=OTHER_INTEGRATION, timeout=30)
    results = [run_cli("webhooks", "register", str(ACCOUNT), "--url", url, environment=registered)
               for url in ("https://a.example/webhooks/hostaway", "https://a.example/webhooks/hostaway",
                           "https://b.example/webhooks/hostaway")]
    assert [r.returncode for r in results] == [0, 0, 0], [r.stderr for r in results]
    assert [r.stdout.split()[0] for r in results] == ["created", "updated", "updated"]
    ours = [w for w in webhooks_on(sim) if w["login"] == LOGIN]
    others = [w for w in webhooks_on(sim) if w["login"] != LOGIN]
    assert [(w["url"], w["password"], w["isEnabled"]) for w in ours] == [
        ("https://b.example/webhooks/hostaway", PASSWORD, 1)]
    assert [w["url"] for w in others] == [OTHER_INTEGRATION["url"]]
    assert all(PASSWORD not in r.stdout + r.stderr and PASSWORD not in " ".join(r.args) for r in results)


def test_list_shows_the_registration_without_its_password_and_unregister_deletes_only_ours(sim, registered):
    Api(sim, ACCOUNT).session.post(f"{sim.base_url}/webhooks/unifiedWebhooks", json=OTHER_INTEGRATION, timeout=30)
    assert run_cli("webhooks", "register", str(ACCOUNT), "--url", "https://a.example/h",
                   environment=registered).returncode == 0
    listed = run_cli("webhooks", "list", environment=registered)
    removed = run_cli("webhooks", "unregister", str(ACCOUNT), environment=registered)
    again = run_cli("webhooks", "unregister", str(ACCOUNT), environment=registered)
    assert listed.returncode == removed.returncode == again.returncode == 0, (listed.stderr, removed.stderr)
    assert "https://a.example/h" in listed.stdout and OTHER_INTEGRATION["url"] in listed.stdout
    assert PASSWORD not in listed.stdout and OTHER_INTEGRATION["password"] not in listed.stdout.split()
    assert "deleted unified webhook" in removed.stdout and "nothing deleted" in again.stdout
    assert [w["login"] for w in webhooks_on(sim)] == [OTHER_INTEGRATION["login"]]


def test_registering_for_an_account_not_registered_here_fails_in_one_line(sim, registered):
    result = run_cli("webhooks", "register", "999", "--url", "https://a.example/h", environment=registered)
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "999" in result.stderr
    assert "Traceback" not in result.stderr and webhooks_on(sim) == []


def test_the_stand_in_delivers_to_the_registered_receiver_with_the_registered_credentials(sim, registered):
    database_url = registered["HOSTAWAY_DATABASE_URL"]
    app = receiver_app(database_url, BasicCredentials(LOGIN, PASSWORD), Redactor([]))
    with served(app) as base_url:
        assert run_cli("webhooks", "register", str(ACCOUNT), "--url", webhook_url(base_url),
                       environment=registered).returncode == 0
        outcome = sim.mutate(ACCOUNT, {"update_reservations": 2, "incoming_messages": 1},
                             emit_webhooks_for_registered=True)
    stored = stored_events(get_engine(database_url))
    assert [d["status_code"] for d in outcome["webhook_deliveries"]] == [200] * len(outcome["events"])
    assert sorted((e.event, e.object_id) for e in stored) == sorted(
        (e["event"], e["object_id"]) for e in outcome["events"])
    assert {e.status for e in stored} == {"pending"}
