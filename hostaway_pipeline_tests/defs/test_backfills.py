"""Asset backfills as the Dagster daemon runs them: per-account work only, and an account disabled midway.

The backfill is created the way the UI's Materialize dialog creates one (an asset backfill of the four
assets over some account partitions, no tags), then driven by Dagster's own backfill iteration and its
queued-run dequeuer against an instance using this pipeline's run coordinator. Runs execute in this
process (Dagster's synchronous test launcher) with the module-level ``Definitions``, whose resources read
the environment: the test database and the stand-in over real sockets.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import dagster as dg
import pytest
from dagster._core.execution.backfill import BulkActionStatus, PartitionBackfill
from dagster._core.remote_origin import InProcessCodeLocationOrigin
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import InProcessWorkspaceLoadTarget
from dagster._daemon.backfill import execute_backfill_iteration
from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import QueuedRunCoordinatorDaemon

from hostaway_pipeline.defs.account_freshness import ACCOUNT_FRESHNESS_KEY
from hostaway_pipeline.defs.partitions import ACCOUNT_PARTITIONS_NAME, partition_key
from hostaway_pipeline.defs.resources import WarehouseResource
from hostaway_pipeline.defs.sensors import account_partitions_sensor
from hostaway_pipeline.settings import RATE_LIMIT_GUARD_SECONDS_DEFAULT
from hostaway_pipeline.simulator.server import SimulatorServer

TIME_SCALE = 50.0
ACCOUNTS = (52001, 52002, 52003)
DISABLED = 52002
FOUR_ASSETS = [dg.AssetKey(["hostaway", name]) for name in ("listings", "reservations", "conversations", "messages")]


@pytest.fixture
def simulator() -> Iterator[SimulatorServer]:
    with SimulatorServer(accounts=dict.fromkeys(ACCOUNTS, 3), seed=5, time_scale=TIME_SCALE) as server:
        yield server


@pytest.fixture
def warehouse(engine, database_url, simulator, pipeline_settings_env, monkeypatch) -> WarehouseResource:
    """The Definitions' own resources read these: the test database, the stand-in, time-scaled limits."""
    window = 10.0 / TIME_SCALE
    monkeypatch.setenv("HOSTAWAY_API_BASE_URL", simulator.base_url)
    monkeypatch.setenv("HOSTAWAY_RATE_LIMIT_PER_IP", f"15/{window:g}s")
    monkeypatch.setenv("HOSTAWAY_RATE_LIMIT_PER_ACCOUNT", f"20/{window:g}s")
    monkeypatch.setenv("HOSTAWAY_RATE_LIMIT_GUARD", f"{RATE_LIMIT_GUARD_SECONDS_DEFAULT / TIME_SCALE:g}")
    monkeypatch.setenv("HOSTAWAY_EGRESS_ID", f"backfill-test-{simulator.port}")
    warehouse = WarehouseResource(database_url=database_url)
    for account_id in ACCOUNTS:
        warehouse.accounts.add(account_id, simulator.client_secret(account_id),
                               egress_pool=f"backfill-test-{simulator.port}")
    return warehouse


@pytest.fixture
def daemon(warehouse) -> Iterator[WorkspaceProcessContext]:
    """An instance queuing runs through this pipeline's run coordinator, and the workspace its daemon loads."""
    overrides = {
        "run_coordinator": {"module": "hostaway_pipeline.defs.run_tags", "class": "AccountRunCoordinator"},
        "run_launcher": {"module": "dagster._core.launcher.sync_in_memory_run_launcher",
                         "class": "SyncInMemoryRunLauncher"},
    }
    origin = InProcessCodeLocationOrigin(
        LoadableTargetOrigin(module_name="hostaway_pipeline.definitions", attribute="defs"),
        location_name="hostaway_pipeline")
    with dg.instance_for_test(overrides=overrides) as instance:
        instance.add_dynamic_partitions(ACCOUNT_PARTITIONS_NAME, [partition_key(a) for a in ACCOUNTS])
        with WorkspaceProcessContext(instance, InProcessWorkspaceLoadTarget(origin)) as context:
            yield context


def launch_backfill(context: WorkspaceProcessContext) -> str:
    """What the UI's Materialize dialog does for the four assets and some partitions: an asset backfill."""
    backfill = PartitionBackfill.from_asset_partitions(
        backfill_id="bf" + str(int(time.time() * 1000)), asset_graph=context.create_request_context().asset_graph,
        partition_names=[partition_key(a) for a in ACCOUNTS], asset_selection=FOUR_ASSETS,
        backfill_timestamp=time.time(), tags={}, dynamic_partitions_store=context.instance, all_partitions=False,
        title=None, description=None, run_config=None,
    )
    context.instance.add_backfill(backfill)
    return backfill.backfill_id


def backfill_iteration(context: WorkspaceProcessContext) -> None:
    errors = [error for error in execute_backfill_iteration(context, logging.getLogger("backfill")) if error]
    assert not errors, errors


def dequeue_runs(context: WorkspaceProcessContext) -> None:
    """The daemon's run queue: launches the queued runs (each runs to its end here, synchronously)."""
    list(QueuedRunCoordinatorDaemon(interval_seconds=1).run_iteration(context))


def disable_account_as_the_cli_does(context: WorkspaceProcessContext, warehouse: WarehouseResource) -> None:
    warehouse.accounts.set_enabled(DISABLED, False)
    # The partition sensor ticks meanwhile; it used to delete the disabled account's partition here.
    with dg.build_sensor_context(instance=context.instance, resources={"warehouse": warehouse}) as sensor_context:
        result = account_partitions_sensor(sensor_context)
    for request in getattr(result, "dynamic_partitions_requests", None) or []:
        context.instance.add_dynamic_partitions(ACCOUNT_PARTITIONS_NAME, list(request.partition_keys))


def runs_by_account(instance: dg.DagsterInstance, backfill_id: str) -> dict[int, dg.DagsterRun]:
    runs = instance.get_runs(filters=dg.RunsFilter(tags={"dagster/backfill": backfill_id}))
    by_account = {int(run.tags["dagster/partition"]): run for run in runs}
    assert len(by_account) == len(runs), "one run per account partition"
    return by_account


def failure_descriptions(instance: dg.DagsterInstance, run_id: str) -> list[str | None]:
    failures = instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_FAILURE)
    return [event.dagster_event.step_failure_data.user_failure_data.description  # type: ignore[union-attr]
            for event in failures if event.dagster_event.step_failure_data.user_failure_data]  # type: ignore[union-attr]


def check_evaluations(instance: dg.DagsterInstance, run_id: str) -> list[dg.AssetCheckEvaluation]:
    events = instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)
    return [event.dagster_event.asset_check_evaluation_data for event in events]  # type: ignore[union-attr]


def test_an_account_disabled_during_a_backfill_fails_alone_and_keeps_its_partition(daemon, warehouse):
    instance = daemon.instance
    backfill_id = launch_backfill(daemon)
    backfill_iteration(daemon)  # queues one run per account partition
    queued = runs_by_account(instance, backfill_id)
    assert set(queued) == set(ACCOUNTS)
    assert {run.status for run in queued.values()} == {dg.DagsterRunStatus.QUEUED}

    disable_account_as_the_cli_does(daemon, warehouse)
    dequeue_runs(daemon)
    backfill_iteration(daemon)  # the backfill sees its runs finish (and would fail on a deleted partition)

    runs = runs_by_account(instance, backfill_id)
    assert {a: r.status for a, r in runs.items()} == {
        52001: dg.DagsterRunStatus.SUCCESS, 52002: dg.DagsterRunStatus.FAILURE, 52003: dg.DagsterRunStatus.SUCCESS}
    # Each of its API-reading steps fails with the one line (messages, after conversations, does not run).
    assert set(failure_descriptions(instance, runs[DISABLED].run_id)) == {
        f"account {DISABLED} is disabled (hostaway-pipeline accounts enable {DISABLED})"}
    for account_id in (52001, 52003):
        materialized = {e.asset_key for e in instance.all_logs(runs[account_id].run_id,
                                                               of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)
                        for e in [e.dagster_event.event_specific_data.materialization]}  # type: ignore[union-attr]
        assert materialized == set(FOUR_ASSETS)
    assert partition_key(DISABLED) in instance.get_dynamic_partitions(ACCOUNT_PARTITIONS_NAME)
    backfill = instance.get_backfill(backfill_id)
    assert backfill is not None and backfill.status == BulkActionStatus.COMPLETED_FAILED


def test_backfill_runs_carry_the_account_tags_and_run_no_all_accounts_check(daemon, warehouse):
    instance = daemon.instance
    backfill_id = launch_backfill(daemon)
    backfill_iteration(daemon)
    dequeue_runs(daemon)

    runs = runs_by_account(instance, backfill_id)
    assert {run.status for run in runs.values()} == {dg.DagsterRunStatus.SUCCESS}
    for account_id, run in runs.items():
        assert run.tags["hostaway/account_id"] == str(account_id)
        assert run.tags["hostaway/trigger"] == "backfill"
        evaluations = check_evaluations(instance, run.run_id)
        # The account's own checks ran (on its partition); the all-accounts freshness checks did not.
        assert {(e.asset_key.path[-1], e.check_name) for e in evaluations} >= {
            ("listings", "row_count_matches_api"), ("messages", "row_count_matches_api")}
        assert all(e.asset_key != ACCOUNT_FRESHNESS_KEY and e.partition == partition_key(account_id)
                   for e in evaluations)


def test_a_ui_materialization_of_the_four_assets_runs_no_all_accounts_check(warehouse):
    """The UI's Materialize runs the implicit asset job with the selected assets' checks."""
    from hostaway_pipeline.definitions import defs

    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(ACCOUNT_PARTITIONS_NAME, [partition_key(ACCOUNTS[0])])
    job = defs.resolve_implicit_global_asset_job_def()
    result = job.execute_in_process(instance=instance, asset_selection=FOUR_ASSETS,
                                    partition_key=partition_key(ACCOUNTS[0]))
    assert result.success
    assert len(result.get_asset_materialization_events()) == 4
    evaluations = result.get_asset_check_evaluations()
    assert len(evaluations) == 6  # the partition's own row-count and reference checks
    assert all(e.asset_key != ACCOUNT_FRESHNESS_KEY for e in evaluations)


@pytest.mark.parametrize(("tags", "added"), [
    ({"dagster/partition": "7", "dagster/backfill": "abc"},
     {"hostaway/account_id": "7", "hostaway/trigger": "backfill"}),
    ({"dagster/partition": "7"}, {"hostaway/account_id": "7", "hostaway/trigger": "ui"}),
    ({"dagster/partition": "7", "hostaway/account_id": "7", "hostaway/trigger": "cli"}, {}),
    ({}, {}),  # not an account run (the webhook apply job, the freshness job)
])
def test_the_run_coordinator_adds_only_missing_account_tags(tags, added):
    from hostaway_pipeline.defs.run_tags import missing_account_tags

    assert missing_account_tags(tags) == added


def test_a_reconciliation_runs_in_one_process_and_its_api_steps_wait_for_a_pool_slot(warehouse, simulator):
    import os
    import threading

    from dagster._core.test_utils import poll_for_pool_pending_step

    from hostaway_pipeline.definitions import defs
    from hostaway_pipeline.defs.jobs import reconcile_account_job
    from hostaway_pipeline.defs.pools import API_POOL

    account = partition_key(ACCOUNTS[0])
    job = defs.resolve_job_def(reconcile_account_job.name)
    with dg.instance_for_test(overrides={"concurrency": {"pools": {"granularity": "op"}}}) as instance:
        instance.add_dynamic_partitions(ACCOUNT_PARTITIONS_NAME, [account])
        storage = instance.event_log_storage
        storage.set_concurrency_slots(API_POOL, 1)
        assert storage.claim_concurrency_slot(API_POOL, "another-run", "its-step").is_claimed
        finished: dict[str, dg.ExecuteInProcessResult] = {}
        worker = threading.Thread(target=lambda: finished.update(
            run=job.execute_in_process(instance=instance, partition_key=account)))
        worker.start()
        try:
            assert poll_for_pool_pending_step(instance, API_POOL, timeout=60)
            assert simulator.stats()["total_calls"] == 0  # no API call while the only slot is taken
        finally:
            storage.free_concurrency_slots_for_run("another-run")
            worker.join(timeout=120)
    result = finished["run"]
    assert result.success
    assert len(result.get_asset_materialization_events()) == 4
    assert {event.pid for event in result.all_events if event.step_key} == {os.getpid()}
