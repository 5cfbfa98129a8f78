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
    # Windows of 300 simulated s at time_scale 10 last 30 s of real time: a burst of a few dozen calls
    # always lands inside one window, however busy the box is, so counts are exact and timing-free.
    with SimulatorServer(
        accounts={40001: 5, 40002: 5}, seed=2, time_scale=10.0, window_seconds=300.0, trust_forwarded_for=True
    ) as server:
        yield server


@pytest.fixture
def short_sim() -> Iterator[SimulatorServer]:
    # 1 s real windows, for the tests that need calls to leave the window; they only assert order and
    # invariants, never that a burst fits in the window.
    with SimulatorServer(accounts={40001: 5}, seed=2, time_scale=10.0, trust_forwarded_for=True) as server:
        yield server


def token(sim: SimulatorServer, account_id: int) -> str:
    """A usable token minted in-process, so no token call sits in any rate-limit window."""
    value = sim.tokens.issue(account_id).value
    time.sleep(1.0 / sim.time_scale + 0.05)  # activation delay: a lower bound, safe on a slow box
    return value


def call(sim: SimulatorServer, token: str, ip: str = "10.0.0.1") -> requests.Response:
    return requests.get(
        f"{sim.base_url}/listings",
        timeout=10,
        headers={"Authorization": f"Bearer {token}", "X-Forwarded-For": ip},
    )


def test_sixteenth_call_in_a_window_from_one_ip_is_refused(sim: SimulatorServer) -> None:
    value = token(sim, 40001)
    statuses = [call(sim, value).status_code for _ in range(16)]
    refused = call(sim, value, ip="10.0.0.1")
    stats = sim.stats()
    assert statuses == [200] * 15 + [429]
    assert refused.json() == RATE_LIMITED
    assert (stats["served_429"], stats["accepted_calls"], stats["max_calls_in_any_window_by_ip"]) == (
        2,
        15,
        15,
    )


def test_twenty_first_call_in_a_window_for_one_account_is_refused(sim: SimulatorServer) -> None:
    value = token(sim, 40001)
    statuses = [call(sim, value, ip=f"10.0.1.{i % 2}").status_code for i in range(20)]
    twenty_first = call(sim, value, ip="10.0.2.1")
    stats = sim.stats()
    assert statuses == [200] * 20
    assert twenty_first.status_code == 429
    assert (stats["served_429"], stats["max_calls_in_any_window_by_account"]) == (1, 20)
    assert stats["max_calls_in_any_window_by_ip"] == 10


def test_other_accounts_are_not_limited_by_a_busy_account(sim: SimulatorServer) -> None:
    busy, quiet = token(sim, 40001), token(sim, 40002)
    for i in range(20):
        call(sim, busy, ip=f"10.0.3.{i}")
    assert call(sim, busy, ip="10.0.4.1").status_code == 429
    assert call(sim, quiet, ip="10.0.4.1").status_code == 200


def test_window_slides_so_calls_are_accepted_again_once_old_ones_leave(short_sim: SimulatorServer) -> None:
    value = token(short_sim, 40001)
    statuses = []
    while 429 not in statuses and len(statuses) < 500:
        statuses.append(call(short_sim, value).status_code)
    time.sleep(short_sim.policy.window_seconds + 0.1)  # every earlier call has left the window now
    assert statuses.count(200) >= 15 and statuses[-1] == 429
    assert call(short_sim, value).status_code == 200
    assert short_sim.stats()["max_calls_in_any_window_by_ip"] <= 15  # never more accepted than the limit


def brute_force_max_in_window(times: list[float], window: float) -> int:
    return max((sum(1 for t in times if end - window < t <= end) for end in times), default=0)


def test_max_calls_in_any_window_matches_a_brute_force_count_of_the_call_log(short_sim: SimulatorServer) -> None:
    value = token(short_sim, 40001)
    # Bursts about half a window apart: how many share a window depends on the box's speed; the
    # statistic must equal an independent count over the logged times either way.
    for burst in range(3):
        for _ in range(5):
            assert call(short_sim, value).status_code == 200
        if burst < 2:
            time.sleep(short_sim.policy.window_seconds * 0.6)
    stats = short_sim.stats()
    times = [c["time"] for c in short_sim.calls() if c["accepted"]]
    expected = brute_force_max_in_window(times, short_sim.policy.window_seconds)
    assert len(times) == 15 and 1 <= expected <= 15
    assert stats["max_calls_in_any_window_by_ip"] == stats["max_calls_in_any_window_by_account"] == expected
    assert max_in_any_window(times, short_sim.policy.window_seconds) == expected


def test_max_in_any_window_counts_the_trailing_half_open_window() -> None:
    assert max_in_any_window([], 1.0) == 0
    assert max_in_any_window([0.0, 0.5, 1.0, 1.5], 1.0) == 2  # (0, 1] holds 0.5 and 1.0; 0.0 has left
    assert max_in_any_window([0.0, 0.1, 0.2, 0.99, 2.0], 1.0) == 4
    assert max_in_any_window([3.0, 1.0, 2.0, 1.5, 2.2], 1.0) == 3  # order of arrival does not matter


def test_admin_calls_are_never_limited_nor_counted(sim: SimulatorServer) -> None:
    value = token(sim, 40001)
    for _ in range(15):
        call(sim, value)
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
    call(sim, token(sim, 40001))
    log = requests.get(f"{sim.admin_url}/calls", timeout=10).json()
    assert [(c["endpoint"], c["account_id"], c["status"], c["ip"]) for c in log] == [
        ("listings", 40001, 200, "10.0.0.1")
    ]
    requests.post(f"{sim.admin_url}/stats/reset", timeout=10)
    assert sim.stats()["total_calls"] == 0 and sim.stats()["first_call_at"] is None
