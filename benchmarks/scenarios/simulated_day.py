"""``simulated_day``: the pacing sensor driving real reconciliations of many accounts through compressed days.

30 small accounts (5 reservations each, 5 conversations) on the strict stand-in in its own process
(``--time-scale``: its 10 s windows last 10/K s). A Dagster instance on Postgres with the shipped queue
limits (``dagster.yaml``: 4 runs, 3 account runs, one per account) and run coordinator; Dagster's own sensor
daemon iteration evaluates the shipped pacing sensor, built with the day compressed to ``DAY_SECONDS``
real seconds (an account is due one compressed day after its last reconciliation, retried a compressed 2 h
after a failure), and Dagster's own queue daemon launches the runs, executed in this process one after
another (synchronous in-process launcher: run slots never overlap here). All accounts start never
reconciled (a missed day: the catch-up is stalest first, K at a time); a few upstream changes land every
simulated hour. Two simulated days: the first catches up, the second is the steady state.

Reported: accounts reconciled per simulated day (day 2), the worst account's staleness (simulated hours,
after its first reconciliation), runs queued for an account that had one in flight (target 0), most
reconciliation runs waiting at once (<= K), 429s (target 0), calls per reconciliation and run wall seconds;
then the extrapolation to one real IP (129,600 calls a day) for this size and the seed size
(``daily_cost``: 39 - 59 calls), beside the run-slot, run-launch and pacing ceilings (docs/performance.md).
"""

from __future__ import annotations

import logging
import os
import random
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dagster as dg
import yaml
from sqlalchemy.engine import make_url

from benchmarks.report import ScenarioResult, Target
from benchmarks.scenarios.options import BenchOptions
from benchmarks.stand_in import StandInProcess
from benchmarks.wiring import fresh_database, server_url
from hostaway_pipeline.defs.assets import HOSTAWAY_ASSETS
from hostaway_pipeline.defs.checks import HOSTAWAY_CHECKS
from hostaway_pipeline.defs.jobs import reconcile_account_job
from hostaway_pipeline.defs.pools import ensure_api_pool_limit
from hostaway_pipeline.defs.reconciliation_pacing import (
    RECONCILE_EVERY,
    RETRY_FAILED_AFTER,
    SENSOR_NAME,
    build_reconciliation_pacing_sensor,
)
from hostaway_pipeline.defs.sensors import account_partitions_sensor
from hostaway_pipeline.settings import RATE_LIMIT_GUARD_SECONDS_DEFAULT, RECONCILE_MAX_QUEUED_DEFAULT

ACCOUNTS = {61001 + index: 5 for index in range(30)}
DAY_SECONDS = 300.0  # one simulated day in real seconds (288x compressed)
DAYS = 2
SIM_HOUR_SECONDS = DAY_SECONDS / 24
LOOP_SECONDS = 2.0  # the daemons' pass: sensor iteration, then the run queue
CHANGES_PER_SIM_HOUR = {"new_reservations": 1, "incoming_messages": 1}
IP_CALLS_PER_DAY = 129_600
SEED_CALLS = (39, 59)  # daily_cost: a quiet day and the day above on a seed-size account
ACCOUNT_RUN_SLOTS = 3
CORES = 2
RUN_CPU_SECONDS = 3.15  # run_overhead: in-process run, launched by the default run launcher
RUN_WALL_OVERHEAD_SECONDS = 3.9  # run_overhead: wall seconds of a run beyond its API span
SENSOR_INTERVAL_SECONDS = 30  # the shipped pacing sensor's minimum interval
FRESHNESS_HOURS = 26.0
REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
_COMPRESSION = 86_400 / DAY_SECONDS


def _sim_hours(real_seconds: float) -> float:
    return real_seconds * _COMPRESSION / 3600


def _definitions() -> dg.Definitions:
    """The shipped assets, checks, job and sensors, the pacing sensor's day compressed."""
    from hostaway_pipeline.definitions import build_resources

    pacing = build_reconciliation_pacing_sensor(
        max_queued=RECONCILE_MAX_QUEUED_DEFAULT, every=RECONCILE_EVERY / _COMPRESSION,
        retry_failed_after=RETRY_FAILED_AFTER / _COMPRESSION, minimum_interval_seconds=1)
    return dg.Definitions(assets=HOSTAWAY_ASSETS, asset_checks=HOSTAWAY_CHECKS, jobs=[reconcile_account_job],
                          sensors=[pacing, account_partitions_sensor], resources=build_resources(),
                          executor=dg.in_process_executor)


SIMULATED_DAY_DEFS = _definitions() if os.environ.get("HOSTAWAY_BENCH_SIMULATED_DAY") else None


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextmanager
def _instance(database_url: str) -> Iterator[dg.DagsterInstance]:
    """Postgres storage, the shipped run coordinator and queue limits, runs executed in this process."""
    shipped = yaml.safe_load((REPOSITORY_ROOT / "dagster.yaml").read_text())
    url = make_url(database_url).set(drivername="postgresql+psycopg2").render_as_string(hide_password=False)
    config = {
        "storage": {"postgres": {"postgres_url": url}},
        "run_coordinator": shipped["run_coordinator"],
        "concurrency": shipped["concurrency"],
        "run_launcher": {"module": "dagster._core.launcher.sync_in_memory_run_launcher",
                         "class": "SyncInMemoryRunLauncher"},
        "telemetry": {"enabled": False},
    }
    with tempfile.TemporaryDirectory(prefix="simulated_day_dagster_home_") as home:
        Path(home, "dagster.yaml").write_text(yaml.safe_dump(config))
        with dg.DagsterInstance.from_config(home) as instance:
            yield instance


def _simulate(instance: dg.DagsterInstance, stand_in: StandInProcess) -> dict[str, Any]:
    from dagster._core.remote_origin import InProcessCodeLocationOrigin
    from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
    from dagster._core.workspace.context import WorkspaceProcessContext
    from dagster._core.workspace.load_target import InProcessWorkspaceLoadTarget
    from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import QueuedRunCoordinatorDaemon
    from dagster._daemon.sensor import execute_sensor_iteration

    origin = InProcessCodeLocationOrigin(
        LoadableTargetOrigin(module_name=__name__, attribute="SIMULATED_DAY_DEFS"), location_name="simulated_day")
    log = logging.getLogger("simulated_day")
    log.setLevel(logging.WARNING)
    rng = random.Random(5)
    most_waiting = 0
    changes = 0
    with WorkspaceProcessContext(instance, InProcessWorkspaceLoadTarget(origin)) as context:
        began = time.monotonic()
        next_change = began + SIM_HOUR_SECONDS
        while time.monotonic() - began < DAYS * DAY_SECONDS:
            list(execute_sensor_iteration(context, log, threadpool_executor=None, submit_threadpool_executor=None))
            waiting = instance.get_runs_count(dg.RunsFilter(statuses=[dg.DagsterRunStatus.QUEUED],
                                                            tags={"dagster/sensor_name": SENSOR_NAME}))
            most_waiting = max(most_waiting, waiting)
            list(QueuedRunCoordinatorDaemon(interval_seconds=1).run_iteration(context))
            while time.monotonic() >= next_change:
                stand_in.mutate(rng.choice(list(ACCOUNTS)), CHANGES_PER_SIM_HOUR)
                changes += 1
                next_change += SIM_HOUR_SECONDS
            time.sleep(max(0.0, LOOP_SECONDS - (time.monotonic() - began) % LOOP_SECONDS))
        elapsed = time.monotonic() - began
    return {"most_waiting": most_waiting, "changes": changes, "elapsed": elapsed,
            "began_epoch": time.time() - (time.monotonic() - began), "began_monotonic": began}


def _overlapping_runs(records: list[Any]) -> int:
    """Runs created while another run of the same account was queued or running."""
    by_account: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for record in records:
        end = record.end_time or time.time()
        by_account[record.dagster_run.tags["hostaway/account_id"]].append((record.create_timestamp.timestamp(), end))
    overlaps = 0
    for spans in by_account.values():
        spans.sort()
        overlaps += sum(1 for (_, end), (start, _) in zip(spans, spans[1:], strict=False) if start < end)
    return overlaps


def _worst_staleness_seconds(ends: dict[str, list[float]], window_start: float, window_end: float) -> float:
    """The longest any account went without a finished reconciliation, over gaps that reach into the window
    (the staleness an account reaches just before its next reconciliation, or at the window's end)."""
    worst = 0.0
    for finished in ends.values():
        finished = sorted(finished)
        for previous, following in zip(finished, [*finished[1:], window_end], strict=True):
            if following > window_start:
                worst = max(worst, following - previous)
    return worst


def run(options: BenchOptions) -> ScenarioResult:
    with fresh_database(server_url(options.database_server_url)) as database_url, \
            StandInProcess(ACCOUNTS, seed=options.seed, time_scale=options.time_scale) as stand_in:
        window = 10.0 / options.time_scale
        environment = {
            "HOSTAWAY_BENCH_SIMULATED_DAY": "1", "HOSTAWAY_DATABASE_URL": database_url,
            "HOSTAWAY_API_BASE_URL": stand_in.base_url, "HOSTAWAY_RATE_LIMIT_PER_IP": f"15/{window:g}s",
            "HOSTAWAY_RATE_LIMIT_PER_ACCOUNT": f"20/{window:g}s",
            "HOSTAWAY_RATE_LIMIT_GUARD": f"{RATE_LIMIT_GUARD_SECONDS_DEFAULT / options.time_scale:g}",
        }
        with _environment(environment), _instance(database_url) as instance:
            global SIMULATED_DAY_DEFS
            SIMULATED_DAY_DEFS = _definitions()
            from hostaway_pipeline.defs.resources import WarehouseResource

            warehouse = WarehouseResource(database_url=database_url)
            for account_id in ACCOUNTS:
                warehouse.accounts.add(account_id, stand_in.client_secret(account_id), name="simulated_day")
            ensure_api_pool_limit(instance, 4)
            stand_in.reset_stats()
            simulated = _simulate(instance, stand_in)
            stats = stand_in.stats()
            calls_log = stand_in.calls()
            records = list(instance.get_run_records(dg.RunsFilter(tags={"dagster/sensor_name": SENSOR_NAME})))

    began = simulated["began_epoch"]
    day_two = (began + DAY_SECONDS, began + DAYS * DAY_SECONDS)
    succeeded = [r for r in records if r.dagster_run.status == dg.DagsterRunStatus.SUCCESS and r.end_time]
    ends: dict[str, list[float]] = defaultdict(list)
    for record in succeeded:
        ends[record.dagster_run.tags["hostaway/account_id"]].append(float(record.end_time or 0.0))
    first_round = max(min(times) for times in ends.values()) - began if len(ends) == len(ACCOUNTS) else None
    in_day_two = [r for r in succeeded if day_two[0] <= (r.end_time or 0.0) < day_two[1]]
    # The stand-in stamps calls on the machine's monotonic clock.
    calls_began = simulated["began_monotonic"]
    calls_day_two = sum(1 for c in calls_log
                        if calls_began + DAY_SECONDS <= float(c["time"]) < calls_began + DAYS * DAY_SECONDS)
    walls = [(r.end_time or 0.0) - r.start_time for r in succeeded if r.start_time]
    calls_per_reconciliation = calls_day_two / len(in_day_two) if in_day_two else 0.0
    ip_calls_per_sim_day = 15 / window * DAY_SECONDS

    # One real IP, a real day: the ceilings each resource puts on daily account reconciliations.
    def ip_bound(calls: float) -> int:
        return int(IP_CALLS_PER_DAY // calls) if calls else 0

    def slot_bound(calls: float) -> int:
        """Runs 3 account slots turn over were the IP unlimited: overhead plus the calls at the account's 2/s."""
        return int(ACCOUNT_RUN_SLOTS * 86_400 // (RUN_WALL_OVERHEAD_SECONDS + calls / 2.0))

    result = ScenarioResult(
        "simulated_day",
        f"{len(ACCOUNTS)} accounts of 5 reservations, pacing sensor (K={RECONCILE_MAX_QUEUED_DEFAULT}) through "
        f"Dagster's sensor and queue daemons, {DAYS} days of {DAY_SECONDS:g} real s each, stand-in at "
        f"{options.time_scale:g}x, runs executed in process one at a time")
    result.figures = {
        "accounts": len(ACCOUNTS),
        "runs": len(records),
        "runs_failed": sum(1 for r in records if r.dagster_run.status == dg.DagsterRunStatus.FAILURE),
        "catch_up_sim_hours": round(_sim_hours(first_round), 1) if first_round is not None else -1,
        "day_two_reconciliations": len(in_day_two),
        "day_two_accounts_reconciled": len({r.dagster_run.tags["hostaway/account_id"] for r in in_day_two}),
        "worst_staleness_sim_hours": round(_sim_hours(_worst_staleness_seconds(ends, began + (first_round or 0),
                                                                                 day_two[1])), 2),
        "runs_for_an_account_already_in_flight": _overlapping_runs(records),
        "most_runs_waiting": simulated["most_waiting"],
        "served_429": int(stats["served_429"]),
        "calls": int(stats["total_calls"]),
        "day_two_calls_per_reconciliation": round(calls_per_reconciliation, 1),
        "day_two_ip_utilization": round(calls_day_two / ip_calls_per_sim_day, 4),
        "run_wall_seconds_median": round(statistics.median(walls), 2) if walls else 0.0,
        "real_ip_accounts_per_day_this_size": ip_bound(calls_per_reconciliation),
        "real_ip_accounts_per_day_seed_quiet": ip_bound(SEED_CALLS[0]),
        "real_ip_accounts_per_day_seed_busy": ip_bound(SEED_CALLS[1]),
        "run_slot_ceiling_this_size": slot_bound(calls_per_reconciliation),
        "run_slot_ceiling_seed_busy": slot_bound(SEED_CALLS[1]),
        "run_launch_cpu_ceiling": int(CORES * 86_400 // RUN_CPU_SECONDS),
        "pacing_ceiling_runs_per_day": RECONCILE_MAX_QUEUED_DEFAULT * 86_400 // SENSOR_INTERVAL_SECONDS,
    }
    result.targets = [
        Target("served_429", "==", 0),
        Target("runs_for_an_account_already_in_flight", "==", 0),
        Target("most_runs_waiting", "<=", RECONCILE_MAX_QUEUED_DEFAULT),
        Target("day_two_accounts_reconciled", "==", len(ACCOUNTS)),
        Target("worst_staleness_sim_hours", "<=", FRESHNESS_HOURS),
        Target("runs_failed", "==", 0),
    ]
    result.details = {"upstream_changes": simulated["changes"], "changes_per_sim_hour": CHANGES_PER_SIM_HOUR,
                      "simulated_seconds": round(simulated["elapsed"], 1), "day_seconds": DAY_SECONDS,
                      "ip_calls_per_sim_day": ip_calls_per_sim_day,
                      "by_endpoint": stats.get("by_endpoint"),
                      "run_cpu_seconds_assumed": RUN_CPU_SECONDS,
                      "run_wall_overhead_seconds_assumed": RUN_WALL_OVERHEAD_SECONDS}
    return result
