"""A whole pipeline for tests: the local Hostaway stand-in over real sockets, real Postgres, real Dagster."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import dagster as dg

from hostaway_pipeline.defs.assets import HOSTAWAY_ASSETS
from hostaway_pipeline.defs.checks import HOSTAWAY_CHECKS
from hostaway_pipeline.defs.partitions import ACCOUNT_PARTITIONS_NAME, partition_key
from hostaway_pipeline.defs.resources import HostawayApiResource, HostawayRateLimiterResource, WarehouseResource
from hostaway_pipeline.settings import RATE_LIMIT_GUARD_SECONDS_DEFAULT
from hostaway_pipeline.simulator.data import AccountSize
from hostaway_pipeline.simulator.server import SimulatorServer

TIME_SCALE = 50.0  # the stand-in's 10 s windows last 0.2 s


@dataclass
class PipelineHarness:
    simulator: SimulatorServer
    warehouse: WarehouseResource
    api: HostawayApiResource
    instance: dg.DagsterInstance

    @property
    def resources(self) -> dict[str, Any]:
        return {"warehouse": self.warehouse, "hostaway_rate_limiter": self.api.rate_limiter,
                "hostaway_api": self.api}

    def register(self, account_id: int) -> None:
        self.warehouse.accounts.add(account_id, self.simulator.client_secret(account_id))
        self.instance.add_dynamic_partitions(ACCOUNT_PARTITIONS_NAME, [partition_key(account_id)])

    def materialize(self, account_id: int, asset_names: Sequence[str] | None = None,
                    run_config: dict | None = None, raise_on_error: bool = True,
                    selection: dg.AssetSelection | None = None) -> dg.ExecuteInProcessResult:
        if asset_names is not None:
            selection = dg.AssetSelection.assets(*[dg.AssetKey(["hostaway", name]) for name in asset_names])
        return dg.materialize(
            [*HOSTAWAY_ASSETS, *HOSTAWAY_CHECKS],
            partition_key=partition_key(account_id),
            resources=self.resources,
            instance=self.instance,
            selection=selection,
            run_config=run_config,
            raise_on_error=raise_on_error,
        )

    def metadata(self, result: dg.ExecuteInProcessResult, asset_name: str) -> dict[str, Any]:
        for event in result.get_asset_materialization_events():
            materialization = event.step_materialization_data.materialization
            if materialization.asset_key == dg.AssetKey(["hostaway", asset_name]):
                return {key: value.value for key, value in materialization.metadata.items()}
        raise AssertionError(f"{asset_name} was not materialized")

    @staticmethod
    def metadata_of_failure(result: dg.ExecuteInProcessResult) -> dict[str, Any]:
        """The figures a failed step reported with its failure (``dg.Failure(metadata=...)``)."""
        failure = result.get_step_failure_events()[0].step_failure_data.user_failure_data
        assert failure is not None, "the step failed without a dg.Failure"
        return {key: value.value for key, value in failure.metadata.items()}


def build_harness(database_url: str, simulator: SimulatorServer, time_scale: float = TIME_SCALE,
                  **api_overrides: Any) -> PipelineHarness:
    warehouse = WarehouseResource(database_url=database_url)
    window = 10.0 / time_scale
    # The jitter guard scales with the windows, as the benchmarks scale it: production proportions.
    limiter = HostawayRateLimiterResource(warehouse=warehouse, per_ip=f"15/{window:g}s",
                                          per_account=f"20/{window:g}s",
                                          guard_seconds=RATE_LIMIT_GUARD_SECONDS_DEFAULT / time_scale)
    api = HostawayApiResource(
        warehouse=warehouse, rate_limiter=limiter, base_url=simulator.base_url,
        token_activation_delay_seconds=1.0 / time_scale,
        **{"request_timeout_seconds": 5.0, "max_attempts": 3, **api_overrides},
    )
    return PipelineHarness(simulator, warehouse, api, dg.DagsterInstance.ephemeral())


@contextmanager
def registered_harness(database_url: str, accounts: Mapping[int, AccountSize], seed: int,
                       time_scale: float = TIME_SCALE) -> Iterator[PipelineHarness]:
    """A started stand-in serving ``accounts``, each registered with its partition; the stand-in stops on exit."""
    with SimulatorServer(accounts=dict(accounts), seed=seed, time_scale=time_scale) as simulator:
        harness = build_harness(database_url, simulator, time_scale)
        for account_id in accounts:
            harness.register(account_id)
        yield harness
