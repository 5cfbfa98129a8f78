"""When a 403 earns a refresh and when it does not, over real sockets against the stand-in.

Hostaway answers 403 for an invalid token, but also for a token it has not activated everywhere yet and
for a locked resource; a proxy may answer 403 with an empty body or an HTML page.
"""

from __future__ import annotations

import time

import pytest
from cryptography.fernet import Fernet

from hostaway_pipeline.defs.resources import HostawayApiResource
from hostaway_pipeline.hostaway.access_tokens import ACTIVATION_MARGIN_FACTOR, AccessTokenStore
from hostaway_pipeline.hostaway.client import YOUNG_TOKEN_ACTIVATION_DELAYS
from hostaway_pipeline.simulator.server import SimulatorServer
from hostaway_pipeline.storage.secret_box import SecretBox
from hostaway_pipeline_tests.pipeline_harness import TIME_SCALE, build_harness

ACCOUNT = 45001
AUTH_403 = {"status": "fail", "message": "Invalid or expired token"}


@pytest.fixture
def simulator():
    with SimulatorServer(accounts={ACCOUNT: 20}, seed=13, time_scale=TIME_SCALE) as sim:
        yield sim


@pytest.fixture
def harness(engine, database_url, simulator, pipeline_settings_env):
    harness = build_harness(database_url, simulator)
    harness.warehouse.accounts.add(ACCOUNT, simulator.client_secret(ACCOUNT))
    return harness


def calls_to(simulator: SimulatorServer, endpoint: str) -> list[dict]:
    return [call for call in simulator.calls() if call["endpoint"] == endpoint]


def test_a_new_token_waits_its_activation_delay_with_a_margin(harness, simulator):
    delay = 1.0  # Hostaway's real delay: long enough that the margin is not lost in scheduling noise
    api = HostawayApiResource(warehouse=harness.warehouse, rate_limiter=harness.api.rate_limiter,
                              base_url=simulator.base_url, token_activation_delay_seconds=delay,
                              request_timeout_seconds=5.0, max_attempts=3)
    api.client_for(ACCOUNT).listings()
    minted, first_use = calls_to(simulator, "accessTokens")[0], calls_to(simulator, "listings")[0]
    assert ACTIVATION_MARGIN_FACTOR >= 1.2
    assert first_use["time"] - minted["time"] >= delay * 1.2  # a fifth more than the documented second, at least


def test_a_403_on_a_token_just_activated_is_sent_again_with_the_same_token_before_any_refresh(harness, simulator):
    simulator.add_fault(kind="status", endpoint="listings", status_code=403, body=AUTH_403, count=1)
    # A half-second activation delay makes "just activated" last 2.5 s: far longer than a loaded machine's stalls.
    api = HostawayApiResource(warehouse=harness.warehouse, rate_limiter=harness.api.rate_limiter,
                              base_url=simulator.base_url, token_activation_delay_seconds=0.5,
                              request_timeout_seconds=5.0, max_attempts=3)
    client = api.client_for(ACCOUNT)
    assert client.listings().complete
    assert client.stats.token_refreshes == 0
    assert len(calls_to(simulator, "accessTokens")) == 1
    assert [call["status"] for call in calls_to(simulator, "listings")] == [403, 200]


@pytest.mark.parametrize("body", ["", "<html><head><title>403 Forbidden</title></head></html>", AUTH_403],
                         ids=["empty", "html", "auth-json"])
def test_a_403_on_an_older_token_refreshes_once_even_when_its_body_says_nothing(harness, simulator, body):
    client = harness.api.client_for(ACCOUNT)
    client.listings()
    time.sleep(2 * YOUNG_TOKEN_ACTIVATION_DELAYS / TIME_SCALE)  # the token is no longer young
    simulator.add_fault(kind="status", endpoint="listings", status_code=403, body=body, count=1)
    assert client.listings().complete
    assert client.stats.token_refreshes == 1
    assert len(calls_to(simulator, "accessTokens")) == 2


def test_a_locked_resource_403_is_never_a_refresh(harness, simulator):
    client = harness.api.client_for(ACCOUNT)
    client.listings()
    simulator.add_fault(kind="locked_403", endpoint="listings", count=1)
    with pytest.raises(Exception, match="locked"):
        client.listings()
    assert client.stats.token_refreshes == 0 and len(calls_to(simulator, "accessTokens")) == 1


def test_a_cached_token_under_a_key_no_longer_held_is_minted_again(harness, simulator, engine):
    harness.api.client_for(ACCOUNT).listings()  # a token is cached, encrypted under the current key
    other_store = AccessTokenStore(engine, SecretBox(Fernet.generate_key().decode()),
                                   activation_delay_seconds=1.0 / TIME_SCALE)
    assert other_store.current(ACCOUNT) is None
    fresh = other_store.refresh(ACCOUNT, lambda: ("a-new-token", 3600.0))
    assert fresh.token == "a-new-token"
