"""Benchmark scenarios, one module each; ``SCENARIOS`` maps a name to its ``run(options)`` function."""

from __future__ import annotations

from collections.abc import Callable

from benchmarks.report import ScenarioResult
from benchmarks.scenarios import (
    big_account,
    daily_cost,
    full_read,
    full_sync,
    ip_budget,
    multi_process,
    readings,
    run_overhead,
    simulated_day,
    webhook_latency,
    webhook_receiver,
)
from benchmarks.scenarios.options import BenchOptions

SCENARIOS: dict[str, Callable[[BenchOptions], ScenarioResult]] = {
    "full_read": full_read.run,
    "multi_process": multi_process.run,
    "full_sync": full_sync.run,
    "ip_budget": ip_budget.run,
    "readings": readings.run,
    "big_account": big_account.run,
    "daily_cost": daily_cost.run,
    "webhook_receiver": webhook_receiver.run,
    "webhook_latency": webhook_latency.run,
    "run_overhead": run_overhead.run,
    "simulated_day": simulated_day.run,
}
