"""Fixtures for the simulator tests: simulators on real sockets, shared read-only or fresh per test."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from hostaway_pipeline.simulator.server import SimulatorServer
from hostaway_pipeline_tests.simulator.support import NO_LIMIT, Api


@pytest.fixture(scope="session")
def seed_sim() -> Iterator[SimulatorServer]:
    """A shared, read-only simulator: a seed-size account, a 40-reservation one and an empty one.

    Tests using it must not mutate it; limits are lifted so they never see a 429.
    """
    with SimulatorServer(
        accounts={10001: "seed", 10002: 40, 10003: "empty"},
        seed=7,
        time_scale=100.0,
        ip_limit=NO_LIMIT,
        account_limit=NO_LIMIT,
    ) as sim:
        yield sim


@pytest.fixture(scope="session")
def seed_truth(seed_sim: SimulatorServer) -> dict[str, Any]:
    return seed_sim.truth(10001)


@pytest.fixture(scope="session")
def seed_api(seed_sim: SimulatorServer) -> Api:
    return Api(seed_sim, 10001)


@pytest.fixture
def small_sim() -> Iterator[SimulatorServer]:
    """A fresh, unlimited simulator with one 60-reservation account, for tests that change things."""
    with SimulatorServer(
        accounts={20001: 60}, seed=11, time_scale=100.0, ip_limit=NO_LIMIT, account_limit=NO_LIMIT
    ) as sim:
        yield sim
