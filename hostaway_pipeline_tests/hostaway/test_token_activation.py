"""A freshly minted token is sent by no thread before its activation delay, not only by the thread that minted it.

Measured on the stand-in's call log over real sockets: the delay is counted from the moment the token
request reached the server, so it is a lower bound for when Hostaway would accept the token.
"""

from __future__ import annotations

import threading
import time

import pytest

from hostaway_pipeline.defs.resources import HostawayApiResource
from hostaway_pipeline.simulator.server import SimulatorServer
from hostaway_pipeline_tests.pipeline_harness import TIME_SCALE, build_harness

ACCOUNT = 44001
ACTIVATION_DELAY = 1.0  # Hostaway's real delay, far longer than the stand-in's scaled one


@pytest.fixture
def simulator():
    with SimulatorServer(accounts={ACCOUNT: 20}, seed=13, time_scale=TIME_SCALE) as sim:
        yield sim


def calls_to(simulator: SimulatorServer, endpoint: str) -> list[dict]:
    return [call for call in simulator.calls() if call["endpoint"] == endpoint]


def test_a_second_thread_waits_for_the_activation_delay_of_a_token_another_thread_just_minted(
        engine, database_url, simulator, pipeline_settings_env):
    harness = build_harness(database_url, simulator)
    api = HostawayApiResource(warehouse=harness.warehouse, rate_limiter=harness.api.rate_limiter,
                              base_url=simulator.base_url, token_activation_delay_seconds=ACTIVATION_DELAY,
                              request_timeout_seconds=5.0, max_attempts=3)
    harness.warehouse.accounts.add(ACCOUNT, simulator.client_secret(ACCOUNT))
    client = api.client_for(ACCOUNT)  # one client, as its message-fetching threads share it
    errors: list[BaseException] = []

    def read_listings() -> None:
        try:
            client.listings()
        except BaseException as error:  # surfaced by the assertion below
            errors.append(error)

    first = threading.Thread(target=read_listings)
    first.start()
    deadline = time.monotonic() + 10
    while not calls_to(simulator, "accessTokens") and time.monotonic() < deadline:
        time.sleep(0.005)
    time.sleep(0.3)  # the first thread has the token in hand and is waiting out its activation delay
    second = threading.Thread(target=read_listings)
    second.start()
    first.join(30)
    second.join(30)

    assert not errors, errors
    (token_call,) = calls_to(simulator, "accessTokens")
    listings_calls = calls_to(simulator, "listings")
    assert len(listings_calls) == 2
    for call in listings_calls:
        assert call["time"] - token_call["time"] >= ACTIVATION_DELAY, "a thread used the token too early"
        assert call["status"] == 200
    assert client.stats.token_refreshes == 0
