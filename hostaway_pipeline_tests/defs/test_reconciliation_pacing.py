"""The reconciliation pacing sensor, evaluated as Dagster evaluates it, on a real instance and real Postgres.

Stalest first, at most K waiting, never a second run for an account with one queued or running, never a
disabled account; and after a missed day (every account stale) the daemon's own sensor iteration and run
queue reconcile every account exactly once against the stand-in, refilling the queue as runs finish.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa
import yaml
from dagster._core.remote_origin import InProcessCodeLocationOrigin, RemoteJobOrigin, RemoteRepositoryOrigin
from dagster._core.test_utils import create_run_for_test, freeze_time
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import InProcessWorkspaceLoadTarget
from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import QueuedRunCoordinatorDaemon
from dagster._daemon.sensor import execute_sensor_iteration

from hostaway_pipeline.definitions import defs
from hostaway_pipeline.defs.jobs import reconcile_account_job
from hostaway_pipeline.defs.partitions import ACCOUNT_PARTITIONS_NAME, partition_key
from hostaway_pipeline.defs.pools import API_POOL
from hostaway_pipeline.defs.reconciliation_pacing import (
    RECONCILE_EVERY,
    RETRY_FAILED_AFTER,
    SENSOR_NAME,
    build_reconciliation_pacing_sensor,
    plan_reconciliations,
    reconciliation_pacing_sensor,
)
from hostaway_pipeline.defs.resources import WarehouseResource
from hostaway_pipeline.settings import RATE_LIMIT_GUARD_SECONDS_DEFAULT
from hostaway_pipeline.simulator.server import SimulatorServer
from hostaway_pipeline.sync import sync_state

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


@pytest.fixture
def warehouse(engine, database_url, pipeline_settings_env) -> WarehouseResource:
    return WarehouseResource(database_url=database_url)


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as instance:
        yield instance


def register(warehouse: WarehouseResource, instance: dg.DagsterInstance, *account_ids: int) -> None:
    for account_id in account_ids:
        warehouse.accounts.add(account_id, "secret")
    instance.add_dynamic_partitions(ACCOUNT_PARTITIONS_NAME, [partition_key(a) for a in account_ids])


def reconciled(warehouse: WarehouseResource, account_id: int, hours_ago: float) -> None:
    """What a successful reconciliation leaves: a complete read of each of the three listed resources."""
    with warehouse.engine.begin() as connection:
        began = connection.execute(sa.select(sa.func.now() - timedelta(hours=hours_ago))).scalar_one()
        for resource in ("listings", "reservations", "conversations"):
            sync_state.record_read(connection, account_id, resource, kind="full", read_began=began, objects_read=0,
                                   api_count=0, watermark=None)


def evaluate(instance: dg.DagsterInstance, warehouse: WarehouseResource,
             sensor: dg.SensorDefinition = reconciliation_pacing_sensor):
    # The code server evaluates a tick within the instance's partitions, as here (run requests are validated).
    with dg.build_sensor_context(instance=instance, resources={"warehouse": warehouse},
                                 repository_def=defs.get_repository_def()) as context, \
            dg.partition_loading_context(dynamic_partitions_store=instance):
        return sensor.evaluate_tick(context)


def requested(result) -> list[int]:
    return [int(request.partition_key) for request in result.run_requests]


def queue(instance: dg.DagsterInstance, account_id: int, status: dg.DagsterRunStatus,
          trigger: str = "daily_reconciliation") -> dg.DagsterRun:
    tags = {"dagster/partition": partition_key(account_id), "hostaway/trigger": trigger,
            "hostaway/account_id": str(account_id)}
    return create_run_for_test(instance, job_name=reconcile_account_job.name, status=status, tags=tags,
                               remote_job_origin=_ORIGIN)  # a queued run names the code location it came from


_ORIGIN = RemoteJobOrigin(
    RemoteRepositoryOrigin(InProcessCodeLocationOrigin(
        LoadableTargetOrigin(module_name="hostaway_pipeline.definitions", attribute="defs"),
        location_name="hostaway_pipeline"), "__repository__"),
    reconcile_account_job.name)


def test_the_stalest_accounts_go_first_and_at_most_k_are_requested(instance, warehouse):
    register(warehouse, instance, 11, 12, 13, 14, 15)
    reconciled(warehouse, 11, hours_ago=30)
    reconciled(warehouse, 12, hours_ago=50)
    reconciled(warehouse, 13, hours_ago=25)
    reconciled(warehouse, 15, hours_ago=2)  # fresh: not due for 22 h
    # 14 was never reconciled: the stalest of all.
    result = evaluate(instance, warehouse, build_reconciliation_pacing_sensor(max_queued=3))
    assert requested(result) == [14, 12, 11]
    request = result.run_requests[0]
    assert {"hostaway/account_id": "14", "hostaway/trigger": "daily_reconciliation", "dagster/priority": "-1",
            "dagster/partition": "14"}.items() <= request.tags.items()
    assert requested(evaluate(instance, warehouse, build_reconciliation_pacing_sensor(max_queued=10))) == [
        14, 12, 11, 13]


def test_k_is_read_from_the_setting_at_each_tick(instance, warehouse, monkeypatch):
    register(warehouse, instance, 21, 22, 23)
    monkeypatch.setenv("HOSTAWAY_RECONCILE_MAX_QUEUED", "2")
    assert requested(evaluate(instance, warehouse)) == [21, 22]


def test_an_account_with_a_run_queued_or_running_gets_no_second_one_and_only_waiting_runs_fill_k(instance,
                                                                                                 warehouse):
    register(warehouse, instance, 31, 32, 33, 34, 35)
    queue(instance, 31, dg.DagsterRunStatus.QUEUED)  # this sensor's, waiting: counts toward K
    queue(instance, 32, dg.DagsterRunStatus.STARTED)  # running: holds a run slot, not a queue place
    queue(instance, 33, dg.DagsterRunStatus.QUEUED, trigger="backfill")  # another trigger's run of the account
    result = evaluate(instance, warehouse, build_reconciliation_pacing_sensor(max_queued=2))
    assert requested(result) == [34]
    queue(instance, 34, dg.DagsterRunStatus.QUEUED)
    full = evaluate(instance, warehouse, build_reconciliation_pacing_sensor(max_queued=2))
    assert full.run_requests == [] and "2 reconciliation runs already waiting" in (full.skip_message or "")


def test_disabled_removed_and_partitionless_accounts_are_never_requested(instance, warehouse):
    register(warehouse, instance, 41, 42, 43)
    warehouse.accounts.add(44, "secret")  # no partition yet: the partition sensor adds it first
    warehouse.accounts.set_enabled(42, False)
    warehouse.accounts.remove(43)
    assert requested(evaluate(instance, warehouse, build_reconciliation_pacing_sensor(max_queued=10))) == [41]
    assert sorted(instance.get_dynamic_partitions(ACCOUNT_PARTITIONS_NAME)) == ["41", "42", "43"]


def test_no_enabled_accounts_is_a_skip_naming_what_to_do(instance, warehouse):
    result = evaluate(instance, warehouse)
    assert result.run_requests == [] and "accounts add" in (result.skip_message or "")


def test_a_fresh_fleet_is_a_skip_saying_when_the_next_account_is_due(instance, warehouse):
    register(warehouse, instance, 51, 52)
    reconciled(warehouse, 51, hours_ago=1)
    reconciled(warehouse, 52, hours_ago=3)
    result = evaluate(instance, warehouse)
    assert result.run_requests == [] and "no account due" in (result.skip_message or "")
    assert "next due" in (result.skip_message or "")


def test_a_re_evaluated_tick_repeats_its_run_keys_and_a_new_reconciliation_makes_a_new_one(instance, warehouse):
    register(warehouse, instance, 61, 62)
    reconciled(warehouse, 61, hours_ago=30)
    first = evaluate(instance, warehouse).run_requests
    again = evaluate(instance, warehouse).run_requests
    assert [r.run_key for r in again] == [r.run_key for r in first] and len(set(r.run_key for r in first)) == 2
    reconciled(warehouse, 62, hours_ago=25)
    later = {r.partition_key: r.run_key for r in evaluate(instance, warehouse).run_requests}
    assert later["61"] == first[1].run_key and later["62"] != first[0].run_key


def test_an_account_whose_run_just_failed_waits_and_leaves_its_queue_place_to_the_next(instance, warehouse):
    register(warehouse, instance, 71, 72)
    reconciled(warehouse, 72, hours_ago=30)
    failed = queue(instance, 71, dg.DagsterRunStatus.STARTED)
    instance.report_run_failed(failed)
    # Another job's failed run of 72 (an intraday pass) does not hold back its due reconciliation.
    other = create_run_for_test(instance, job_name="intraday_hostaway_account", status=dg.DagsterRunStatus.STARTED,
                                tags={"dagster/partition": "72", "hostaway/account_id": "72"})
    instance.report_run_failed(other)
    assert requested(evaluate(instance, warehouse, build_reconciliation_pacing_sensor(max_queued=1))) == [72]


def test_a_failed_account_is_due_again_after_the_retry_delay_and_a_success_after_the_failure_clears_it():
    last = NOW - timedelta(hours=30)

    def plan(failed_hours_ago: float, last_reconciled: datetime | None = last) -> list[int]:
        failure = NOW - timedelta(hours=failed_hours_ago)
        return [s.account_id for s in plan_reconciliations(NOW, {1: last_reconciled}, {1: failure}, [], 0, [1],
                                                           max_queued=5).requested]

    hours = RETRY_FAILED_AFTER.total_seconds() / 3600
    assert plan(hours - 0.5) == []
    assert plan(hours + 0.5) == [1]
    assert plan(hours - 0.5, last_reconciled=None) == []  # never reconciled, and failing: waits too
    # A reconciliation newer than the failure (the run retry succeeded): due 24 h after it, not now.
    assert plan(5, last_reconciled=NOW - timedelta(hours=1)) == []
    # A failure after the last reconciliation: retried 2 h after the failure, not 24 h after the reconciliation.
    assert plan(5, last_reconciled=NOW - RECONCILE_EVERY + timedelta(hours=1)) == [1]


# --- a missed day, through Dagster's own sensor daemon and run queue -----------------------------------------

TIME_SCALE = 50.0
MISSED_DAY_ACCOUNTS = (53101, 53102, 53103, 53104, 53105)
MAX_QUEUED = 2


@pytest.fixture
def stand_in() -> Iterator[SimulatorServer]:
    with SimulatorServer(accounts=dict.fromkeys(MISSED_DAY_ACCOUNTS, 3), seed=11, time_scale=TIME_SCALE) as server:
        yield server


@pytest.fixture
def daemon(engine, database_url, stand_in, pipeline_settings_env, monkeypatch) -> Iterator[WorkspaceProcessContext]:
    """The shipped Definitions (resources read this environment) behind the shipped instance's queue limits."""
    window = 10.0 / TIME_SCALE
    monkeypatch.setenv("HOSTAWAY_API_BASE_URL", stand_in.base_url)
    monkeypatch.setenv("HOSTAWAY_RATE_LIMIT_PER_IP", f"15/{window:g}s")
    monkeypatch.setenv("HOSTAWAY_RATE_LIMIT_PER_ACCOUNT", f"20/{window:g}s")
    monkeypatch.setenv("HOSTAWAY_RATE_LIMIT_GUARD", f"{RATE_LIMIT_GUARD_SECONDS_DEFAULT / TIME_SCALE:g}")
    monkeypatch.setenv("HOSTAWAY_RECONCILE_MAX_QUEUED", str(MAX_QUEUED))
    warehouse = WarehouseResource(database_url=database_url)
    for account_id in MISSED_DAY_ACCOUNTS:
        warehouse.accounts.add(account_id, stand_in.client_secret(account_id))
    shipped = yaml.safe_load((REPOSITORY_ROOT / "dagster.yaml").read_text())
    overrides = {
        "run_coordinator": shipped["run_coordinator"],
        "concurrency": {"runs": shipped["concurrency"]["runs"]},
        "run_launcher": {"module": "dagster._core.launcher.sync_in_memory_run_launcher",
                         "class": "SyncInMemoryRunLauncher"},
    }
    origin = InProcessCodeLocationOrigin(
        LoadableTargetOrigin(module_name="hostaway_pipeline.definitions", attribute="defs"),
        location_name="hostaway_pipeline")
    with dg.instance_for_test(overrides=overrides) as instance, \
            WorkspaceProcessContext(instance, InProcessWorkspaceLoadTarget(origin)) as context:
        yield context


_DAEMON_CLOCK = itertools.count(1)


def sensor_ticks(context: WorkspaceProcessContext) -> None:
    """One pass of the sensor daemon, its clock a minute on from the last (every sensor past its interval)."""
    with freeze_time(time.time() + 60 * next(_DAEMON_CLOCK)):
        list(execute_sensor_iteration(context, logging.getLogger("sensors"), threadpool_executor=None,
                                      submit_threadpool_executor=None))


def pacing_runs(instance: dg.DagsterInstance) -> list[dg.DagsterRun]:
    return list(instance.get_runs(filters=dg.RunsFilter(tags={"dagster/sensor_name": SENSOR_NAME})))


def test_after_a_missed_day_every_account_is_reconciled_once_and_the_queue_refills_as_runs_finish(daemon):
    instance = daemon.instance
    waiting_after_each_tick: list[int] = []
    for _tick in range(12):
        sensor_ticks(daemon)  # the partition sensor adds the accounts' partitions on the first pass
        sensor_ticks(daemon)  # a second evaluation before the queue moves: nothing more is queued
        runs = pacing_runs(instance)
        per_account = Counter(run.tags["hostaway/account_id"] for run in runs)
        assert max(per_account.values(), default=0) <= 1, per_account
        waiting = [run for run in runs if run.status == dg.DagsterRunStatus.QUEUED]
        waiting_after_each_tick.append(len(waiting))
        assert len(waiting) <= MAX_QUEUED
        if not waiting and len(runs) == len(MISSED_DAY_ACCOUNTS):
            break
        list(QueuedRunCoordinatorDaemon(interval_seconds=1).run_iteration(daemon))  # runs execute to their end

    runs = pacing_runs(instance)
    assert sorted(int(run.tags["hostaway/account_id"]) for run in runs) == list(MISSED_DAY_ACCOUNTS)
    assert {run.status for run in runs} == {dg.DagsterRunStatus.SUCCESS}
    assert all(run.tags["dagster/priority"] == "-1" for run in runs)
    # K at a time: the queue was refilled to K after each batch finished, then emptied.
    assert waiting_after_each_tick[:3] == [MAX_QUEUED, MAX_QUEUED, 1] and waiting_after_each_tick[-1] == 0
    sensor_ticks(daemon)
    assert len(pacing_runs(instance)) == len(MISSED_DAY_ACCOUNTS)  # every account fresh: nothing more


def test_a_tick_gives_an_instance_without_one_the_api_pool_limit_and_keeps_one_set_by_hand(instance, warehouse,
                                                                                           monkeypatch):
    """A deployment of only webserver + daemon never runs a hostaway-pipeline command that would set it."""
    monkeypatch.setenv("HOSTAWAY_API_POOL_LIMIT", "3")
    storage = instance.event_log_storage
    assert API_POOL not in storage.get_concurrency_keys()
    evaluate(instance, warehouse)
    assert storage.get_concurrency_info(API_POOL).slot_count == 3
    storage.set_concurrency_slots(API_POOL, 7)  # an operator's own choice stays
    evaluate(instance, warehouse)
    assert storage.get_concurrency_info(API_POOL).slot_count == 7
