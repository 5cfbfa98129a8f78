"""Access tokens: both response shapes, bad credentials, activation delay, revoke, expiry, 401 mode."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import requests

from hostaway_pipeline.simulator.server import SimulatorServer
from hostaway_pipeline_tests.simulator.support import NO_LIMIT, request_token, usable_token

AUTH_FAILURE = {"status": "fail", "message": "Invalid or expired access token"}


@pytest.fixture
def sim() -> Iterator[SimulatorServer]:
    with SimulatorServer(
        accounts={30001: 5, 30002: 5}, seed=5, time_scale=20.0, ip_limit=NO_LIMIT, account_limit=NO_LIMIT
    ) as server:
        yield server


def listings(sim: SimulatorServer, token: str | None) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.get(f"{sim.base_url}/listings", headers=headers, timeout=10)


def test_plain_token_response_has_the_documented_shape(sim: SimulatorServer) -> None:
    body = request_token(sim, 30001).json()
    assert list(body) == ["token_type", "expires_in", "access_token"]
    assert body["token_type"] == "Bearer" and body["expires_in"] > 86400 * 180


def test_wrapped_token_response_is_switchable_at_runtime_over_admin(sim: SimulatorServer) -> None:
    requests.post(f"{sim.admin_url}/config", json={"token_response_shape": "wrapped"}, timeout=10)
    body = request_token(sim, 30001).json()
    assert body["status"] == "success" and body["result"]["token_type"] == "Bearer"


def test_wrapped_token_shape_can_be_chosen_in_the_constructor() -> None:
    with SimulatorServer(accounts={1: "empty"}, token_response_shape="wrapped") as sim:
        assert "access_token" in request_token(sim, 1).json()["result"]


def test_wrong_secret_or_unknown_account_is_403_fail(sim: SimulatorServer) -> None:
    wrong = request_token(sim, 30001, secret=sim.client_secret(30002))
    unknown = requests.post(
        f"{sim.base_url}/accessTokens",
        data={
            "grant_type": "client_credentials",
            "client_id": "99999",
            "client_secret": "x",
            "scope": "general",
        },
    )
    assert (wrong.status_code, wrong.json()["status"]) == (403, "fail")
    assert (unknown.status_code, unknown.json()["status"]) == (403, "fail")


def test_client_secrets_are_deterministic_and_overridable() -> None:
    a = SimulatorServer(accounts={1: "empty", 2: "empty"}, seed=9)
    b = SimulatorServer(accounts={1: "empty", 2: "empty"}, seed=9, client_secrets={2: "my-secret"})
    assert a.client_secret(1) == b.client_secret(1) != a.client_secret(2)
    assert b.client_secret(2) == "my-secret"


def test_token_is_unusable_until_one_second_over_time_scale(sim: SimulatorServer) -> None:
    token = request_token(sim, 30001).json()["access_token"]
    too_early = listings(sim, token)
    time.sleep(1.0 / sim.time_scale + 0.02)
    assert (too_early.status_code, too_early.json()) == (403, AUTH_FAILURE)
    assert listings(sim, token).status_code == 200


def test_missing_bearer_is_an_auth_403(sim: SimulatorServer) -> None:
    response = listings(sim, None)
    assert (response.status_code, response.json()) == (403, AUTH_FAILURE)


def test_revoked_token_answers_403_with_an_auth_body(sim: SimulatorServer) -> None:
    token = usable_token(sim, 30001)
    revoke = requests.delete(f"{sim.base_url}/accessTokens", params={"token": token}, timeout=10)
    response = listings(sim, token)
    assert revoke.status_code == 200
    assert (response.status_code, response.json()) == (403, AUTH_FAILURE)


def test_admin_revoke_all_and_expire_all_hit_only_the_chosen_account(sim: SimulatorServer) -> None:
    first, second = usable_token(sim, 30001), usable_token(sim, 30002)
    requests.post(f"{sim.admin_url}/tokens/expire_all", json={"account_id": 30001}, timeout=10)
    assert (listings(sim, first).status_code, listings(sim, second).status_code) == (403, 200)
    requests.post(f"{sim.admin_url}/tokens/revoke_all", json={}, timeout=10)
    assert listings(sim, second).status_code == 403


def test_invalid_token_status_can_be_401(sim: SimulatorServer) -> None:
    sim.configure(invalid_token_status=401)
    response = listings(sim, "not-a-token")
    assert (response.status_code, response.json()) == (401, AUTH_FAILURE)


def test_token_acts_only_on_its_own_account(sim: SimulatorServer) -> None:
    token = usable_token(sim, 30002)
    ids = {row["id"] for row in listings(sim, token).json()["result"]}
    assert ids == {row["id"] for row in sim.truth(30002)["listings"]}
