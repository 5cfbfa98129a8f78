"""The transport on broken responses, over real sockets: bodies that are not JSON."""

from __future__ import annotations

import pytest

from hostaway_pipeline.hostaway.errors import HostawayResponseError
from hostaway_pipeline.simulator.server import SimulatorServer
from hostaway_pipeline_tests.pipeline_harness import TIME_SCALE, build_harness

ACCOUNT = 43001


@pytest.fixture
def simulator():
    with SimulatorServer(accounts={ACCOUNT: 30}, seed=9, time_scale=TIME_SCALE) as sim:
        yield sim


def test_malformed_json_names_endpoint_status_type_and_length_but_no_body_bytes(
        engine, database_url, simulator, pipeline_settings_env):
    harness = build_harness(database_url, simulator)
    harness.warehouse.accounts.add(ACCOUNT, simulator.client_secret(ACCOUNT))
    client = harness.api.client_for(ACCOUNT)
    client.listings()  # the token is minted and cached; the faulty call below is the listings page only
    simulator.add_fault(kind="malformed_json", endpoint="listings")
    with pytest.raises(HostawayResponseError) as raised:
        client.listings()
    message = str(raised.value)
    assert "not valid JSON" in message
    assert "/v1/listings" in message and str(ACCOUNT) in message and "HTTP 200" in message
    assert "application/json" in message and "bytes" in message
    listing_names = [listing["name"] for listing in simulator.truth(ACCOUNT)["listings"]]
    for fragment in ('{"status"', '"result"', "success", *listing_names):
        assert fragment not in message
