"""``full_sync``: the Dagster job for one seed-size account, first run then a daily-style second run.

The first run is the full read plus the Postgres writes (asset checks included); then the stand-in
changes a little (cancellations, updates, new bookings, guest and host messages) and the second run
re-reads only what moved. The naive design re-reads every conversation's messages each day (805
calls); the target is a second run that costs a small fraction of that, with the tables still equal
to upstream (``row_count_matches_api`` passes in both runs).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import dagster as dg

from benchmarks.report import ScenarioResult, Target
from benchmarks.scenarios.options import BenchOptions
from benchmarks.stand_in import StandInProcess
from benchmarks.wiring import BenchTarget, fresh_database, server_url
from hostaway_pipeline.defs.assets import HOSTAWAY_ASSETS
from hostaway_pipeline.defs.checks import HOSTAWAY_CHECKS
from hostaway_pipeline.defs.partitions import ACCOUNT_PARTITIONS_NAME, partition_key
from hostaway_pipeline.orchestration import materialization_metadata

ACCOUNT_ID = 30001
DAILY_CHANGES = {"cancel_reservations": 3, "update_reservations": 5, "new_reservations": 4,
                 "incoming_messages": 8, "outgoing_messages": 6}


@contextmanager
def seed_account(options: BenchOptions, **stand_in_config: Any,
                 ) -> Iterator[tuple[str, StandInProcess, BenchTarget, dg.DagsterInstance]]:
    """A fresh database, a stand-in serving one seed-size account (``stand_in_config`` switched on), the
    account registered with its partition: what every scenario that runs this job starts from."""
    with fresh_database(server_url(options.database_server_url)) as database_url, \
            StandInProcess({ACCOUNT_ID: "seed"}, seed=options.seed, time_scale=options.time_scale) as stand_in:
        if stand_in_config:
            stand_in.configure(**stand_in_config)
        target = BenchTarget(database_url, stand_in.base_url, options.time_scale)
        instance = dg.DagsterInstance.ephemeral()
        target.api_resource().warehouse.accounts.add(ACCOUNT_ID, stand_in.client_secret(ACCOUNT_ID))
        instance.add_dynamic_partitions(ACCOUNT_PARTITIONS_NAME, [partition_key(ACCOUNT_ID)])
        yield database_url, stand_in, target, instance


def _materialize(target: BenchTarget, instance: dg.DagsterInstance) -> tuple[dg.ExecuteInProcessResult, float]:
    api = target.api_resource()
    started = time.monotonic()
    result = dg.materialize(
        [*HOSTAWAY_ASSETS, *HOSTAWAY_CHECKS], partition_key=partition_key(ACCOUNT_ID), instance=instance,
        resources={"warehouse": api.warehouse, "hostaway_rate_limiter": api.rate_limiter, "hostaway_api": api},
        raise_on_error=False, run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
    )
    return result, time.monotonic() - started


def _summary(result: dg.ExecuteInProcessResult) -> dict[str, Any]:
    metadata = materialization_metadata(result)
    failed_checks = [str(e.asset_check_key.name) for e in result.get_asset_check_evaluations() if not e.passed]
    return {"success": result.success, "failed_checks": failed_checks,
            "calls": sum(int(m.get("api_calls", 0)) for m in metadata.values()), "assets": metadata}


def run(options: BenchOptions) -> ScenarioResult:
    with seed_account(options) as (_, stand_in, target, instance):

        first, first_seconds = _materialize(target, instance)
        first_stats = stand_in.stats()
        stand_in.reset_stats()
        stand_in.mutate(ACCOUNT_ID, DAILY_CHANGES)
        second, second_seconds = _materialize(target, instance)
        second_stats = stand_in.stats()

    first_summary, second_summary = _summary(first), _summary(second)
    first_calls, second_calls = int(first_stats["total_calls"]), int(second_stats["total_calls"])
    result = ScenarioResult(
        "full_sync", f"Dagster job (4 assets + checks) for one seed-size account, then again after "
                     f"a day's changes; time scale {options.time_scale:g}x",
    )
    result.figures = {
        "runs_succeeded": int(first.success) + int(second.success),
        "failed_checks": len(first_summary["failed_checks"]) + len(second_summary["failed_checks"]),
        "served_429": int(first_stats["served_429"]) + int(second_stats["served_429"]),
        "first_run_calls": first_calls,
        "first_run_seconds": round(first_seconds, 2),
        "first_run_utilization": round(first_calls / (first_seconds * options.ip_calls_per_second), 3),
        "second_run_calls": second_calls,
        "second_run_seconds": round(second_seconds, 2),
        "second_run_call_fraction": round(second_calls / first_calls, 3),
    }
    result.targets = [
        Target("runs_succeeded", "==", 2),
        Target("failed_checks", "==", 0),
        Target("served_429", "==", 0),
        Target("second_run_call_fraction", "<=", 0.10),
    ]
    result.details = {"changes": DAILY_CHANGES, "first_run": first_summary, "second_run": second_summary,
                      "second_run_calls_by_endpoint": second_stats["by_endpoint"]}
    return result
