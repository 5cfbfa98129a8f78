"""Injected faults: status storms with Retry-After, timeouts, resets, malformed JSON, locks.

``page_drift`` and ``empty_page`` are specified in test_page_drift."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import requests

from hostaway_pipeline.simulator.server import SimulatorServer
from hostaway_pipeline_tests.simulator.support import NO_LIMIT, Api


@pytest.fixture
def sim() -> Iterator[SimulatorServer]:
    with SimulatorServer(
        accounts={50001: 250}, seed=13, time_scale=100.0, ip_limit=NO_LIMIT, account_limit=NO_LIMIT
    ) as server:
        yield server


@pytest.fixture
def api(sim: SimulatorServer) -> Api:
    return Api(sim, 50001)


def test_status_fault_answers_the_code_with_retry_after_after_skipping_and_for_count_requests(
    sim: SimulatorServer, api: Api
) -> None:
    sim.add_fault(kind="status", endpoint="listings", status_code=503, retry_after=2, after=1, count=2)
    responses = [api.get("/listings") for _ in range(4)]
    assert [r.status_code for r in responses] == [200, 503, 503, 200]
    assert responses[1].headers["Retry-After"] == "2"
    assert sim.stats()["injected_faults"] == {"status": 2}


def test_injected_429_is_not_counted_as_a_rate_limit_refusal(sim: SimulatorServer, api: Api) -> None:
    requests.post(
        f"{sim.admin_url}/faults", json={"kind": "status", "endpoint": "*", "status_code": 429}, timeout=10
    )
    response = api.get("/reservations")
    stats = sim.stats()
    assert response.status_code == 429 and "rate limits" in response.json()["message"]
    assert stats["served_429"] == 0 and stats["by_status"]["429"] == 1


def test_fault_can_target_one_account_and_spares_other_endpoints(sim: SimulatorServer, api: Api) -> None:
    sim.add_fault(kind="status", endpoint="reservations", account_id=99999, status_code=500)
    sim.add_fault(kind="status", endpoint="conversations", status_code=500)
    assert api.get("/reservations").status_code == 200
    assert api.get("/listings").status_code == 200
    assert api.get("/conversations").status_code == 500


def test_timeout_fault_stalls_past_the_client_timeout(sim: SimulatorServer, api: Api) -> None:
    sim.add_fault(kind="timeout", endpoint="listings", delay_seconds=5)
    started = time.monotonic()
    with pytest.raises(requests.Timeout):
        api.session.get(f"{sim.base_url}/listings", timeout=0.3)
    assert time.monotonic() - started < 2
    assert api.get("/listings").status_code == 200


def test_reset_fault_gives_the_client_a_connection_error(sim: SimulatorServer, api: Api) -> None:
    sim.add_fault(kind="reset", endpoint="listings")
    with pytest.raises(requests.ConnectionError):
        api.get("/listings")
    assert api.get("/listings").status_code == 200
    assert sim.stats()["by_status"]["reset"] == 1


def test_malformed_json_fault_sends_200_with_an_unparseable_body(sim: SimulatorServer, api: Api) -> None:
    sim.add_fault(kind="malformed_json", endpoint="reservations")
    response = api.get("/reservations")
    assert response.status_code == 200
    with pytest.raises(ValueError):
        response.json()


def test_locked_403_is_a_403_that_is_not_an_auth_failure(sim: SimulatorServer, api: Api) -> None:
    sim.add_fault(kind="locked_403", endpoint="*")
    response = api.get("/listings")
    assert (response.status_code, response.json()) == (
        403,
        {"status": "fail", "message": "Resource is locked"},
    )


def test_faults_are_listed_and_cleared_over_admin(sim: SimulatorServer, api: Api) -> None:
    requests.post(
        f"{sim.admin_url}/faults", json={"kind": "reset", "endpoint": "listings", "count": 2}, timeout=10
    )
    listed = requests.get(f"{sim.admin_url}/faults", timeout=10).json()
    requests.delete(f"{sim.admin_url}/faults", timeout=10)
    assert [(f["kind"], f["count"], f["spent"]) for f in listed] == [("reset", 2, False)]
    assert api.get("/listings").status_code == 200


def test_bad_fault_rule_is_rejected_with_400(sim: SimulatorServer) -> None:
    response = requests.post(
        f"{sim.admin_url}/faults", json={"kind": "status", "endpoint": "listings"}, timeout=10
    )
    assert (response.status_code, response.json()["status"]) == (400, "fail")
