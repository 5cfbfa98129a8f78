"""Helpers for the simulator tests: getting usable tokens and a small bearer-authenticated client."""

from __future__ import annotations

import time
from typing import Any

import requests

from hostaway_pipeline.simulator.server import SimulatorServer

NO_LIMIT = 1_000_000  # calls per window: lifts the rate limits for tests that are not about them


def request_token(sim: SimulatorServer, account_id: int, secret: str | None = None) -> requests.Response:
    return requests.post(
        f"{sim.base_url}/accessTokens",
        data={
            "grant_type": "client_credentials",
            "client_id": str(account_id),
            "client_secret": sim.client_secret(account_id) if secret is None else secret,
            "scope": "general",
        },
        timeout=10,
    )


def usable_token(sim: SimulatorServer, account_id: int) -> str:
    """A token already past its activation delay (1 s / time_scale)."""
    response = request_token(sim, account_id)
    response.raise_for_status()
    body = response.json()
    token: str = body["access_token"] if "access_token" in body else body["result"]["access_token"]
    time.sleep(1.0 / sim.time_scale + 0.02)
    return token


class Api:
    """A bearer-authenticated session on one simulated account."""

    def __init__(self, sim: SimulatorServer, account_id: int, token: str | None = None) -> None:
        self.sim = sim
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token or usable_token(sim, account_id)}"

    def get(self, path: str, **params: Any) -> requests.Response:
        return self.session.get(f"{self.sim.base_url}{path}", params=params, timeout=10)

    def json(self, path: str, **params: Any) -> Any:
        response = self.get(path, **params)
        assert response.status_code == 200, (response.status_code, response.text[:300])
        return response.json()

    def all_pages(self, path: str, **params: Any) -> list[dict[str, Any]]:
        """Every row of an offset-paged endpoint."""
        rows: list[dict[str, Any]] = []
        offset = 0
        while True:
            page = self.json(path, limit=100, offset=offset, **params)["result"]
            rows += page
            if len(page) < 100:
                return rows
            offset += 100
