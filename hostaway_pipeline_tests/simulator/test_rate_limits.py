"""Strict sliding-window rate limits per IP and per account, and exact window statistics."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import requests

from hostaway_pipeline.simulator.rate_limits import max_in_any_window
from hostaway_pipeline.simulator.server import SimulatorServer
from hostaway_pipeline_tests.simulator.support import request_token

RATE_LIMITED = {
    "status": "fail",
    "message": "You have exceeded the rate limits for your account. Please try again later.",
}


@pytest.fixture
def sim() -> Iterator[SimulatorServer]:
    # time_scale 10: the 10 s windows last 1 s of real time, wide enough to be deterministic on a busy box.
    with SimulatorServer(
        accounts={40001: 5, 40002: 5}, seed=2, time_scale=10.0, trust_forwarded_for=True
    ) as server:
        yield server


def token_then_fresh_window(sim: SimulatorServer, account_id: int) -> str:
    token: str = request_token(sim, account_id).json()["access_token"]
    time.sleep(sim.policy.window_seconds + 0.05)  # the token call leaves every window
    sim.reset_stats()
    return token


def call(sim: SimulatorServer, token: str, ip: str = "10.0.0.1") -> requests.Response:
    return requests.get(
        f"{sim.base_url}/listings",
        timeout=10,
        headers={"Authorization": f"Bearer {token}", "X-Forwarded-For": ip},
    )


def test_sixteenth_call_in_a_window_from_one_ip_is_refused(sim: SimulatorServer) -> None:
    token = token_then_fresh_window(sim, 40001)
    statuses = [call(sim, token).status_code for _ in range(16)]
    refused = call(sim, token, ip="10.0.0.1")
    stats = sim.stats()
    assert statuses == [200] * 15 + [429]
    assert refused.json() == RATE_LIMITED
    assert (stats["served_429"], stats["accepted_calls"], stats["max_calls_in_any_window_by_ip"]) == (
        2,
        15,
        15,
    )


def test_twenty_first_call_in_a_window_for_one_account_is_refused(sim: SimulatorServer) -> None:
    token = token_then_fresh_window(sim, 40001)
    statuses = [call(sim, token, ip=f"10.0.1.{i % 2}").status_code for i in range(20)]
    twenty_first = call(sim, token, ip="10.0.2.1")
    stats = sim.stats()
    assert statuses == [200] * 20
    assert twenty_first.status_code == 429
    assert (stats["served_429"], stats["max_calls_in_any_window_by_account"]) == (1, 20)
    assert stats["max_calls_in_any_window_by_ip"] == 10


def test_other_accounts_are_not_limited_by_a_busy_account(sim: SimulatorServer) -> None:
    busy, quiet = token_then_fresh_window(sim, 40001), request_token(sim, 40002).json()["access_token"]
    time.sleep(sim.policy.window_seconds + 0.05)
    for i in range(20):
        call(sim, busy, ip=f"10.0.3.{i}")
    assert call(sim, busy, ip="10.0.4.1").status_code == 429
    assert call(sim, quiet, ip="10.0.4.1").status_code == 200


def test_window_slides_so_calls_are_accepted_again_once_old_ones_leave(sim: SimulatorServer) -> None:
    token = token_then_fresh_window(sim, 40001)
    for _ in range(15):
        call(sim, token)
    assert call(sim, token).status_code == 429
    time.sleep(sim.policy.window_seconds + 0.05)
    assert call(sim, token).status_code == 200


def test_max_calls_in_any_window_is_exact_on_a_crafted_sequence(sim: SimulatorServer) -> None:
    token = token_then_fresh_window(sim, 40001)
    # Three bursts of 5, 0.6 windows apart: any window holds at most two bursts (10 calls).
    for burst in range(3):
        for _ in range(5):
            assert call(sim, token).status_code == 200
        if burst < 2:
            time.sleep(sim.policy.window_seconds * 0.6)
    stats = sim.stats()
    times = [c["time"] for c in sim.calls() if c["accepted"]]
    assert stats["max_calls_in_any_window_by_ip"] == stats["max_calls_in_any_window_by_account"] == 10
    assert max_in_any_window(times, sim.policy.window_seconds) == 10


def test_max_in_any_window_counts_the_trailing_half_open_window() -> None:
    assert max_in_any_window([], 1.0) == 0
    assert max_in_any_window([0.0, 0.5, 1.0, 1.5], 1.0) == 2  # (0, 1] holds 0.5 and 1.0; 0.0 has left
    assert max_in_any_window([0.0, 0.1, 0.2, 0.99, 2.0], 1.0) == 4
    assert max_in_any_window([3.0, 1.0, 2.0, 1.5, 2.2], 1.0) == 3  # order of arrival does not matter


def test_admin_calls_are_never_limited_nor_counted(sim: SimulatorServer) -> None:
    token = token_then_fresh_window(sim, 40001)
    for _ in range(15):
        call(sim, token)
    admin = [requests.get(f"{sim.admin_url}/stats", timeout=10).status_code for _ in range(30)]
    stats = requests.get(f"{sim.admin_url}/stats", timeout=10).json()
    assert set(admin) == {200}
    assert stats["total_calls"] == 15


def test_token_requests_count_against_the_client_id_account(sim: SimulatorServer) -> None:
    sim.reset_stats()
    request_token(sim, 40002)
    stats = sim.stats()
    assert stats["by_endpoint"] == {"accessTokens": 1} and stats["by_account"] == {"40002": 1}


def test_stats_reset_and_call_log(sim: SimulatorServer) -> None:
    token = token_then_fresh_window(sim, 40001)
    call(sim, token)
    log = requests.get(f"{sim.admin_url}/calls", timeout=10).json()
    assert [(c["endpoint"], c["account_id"], c["status"], c["ip"]) for c in log] == [
        ("listings", 40001, 200, "10.0.0.1")
    ]
    requests.post(f"{sim.admin_url}/stats/reset", timeout=10)
    assert sim.stats()["total_calls"] == 0 and sim.stats()["first_call_at"] is None
