"""Running the pipeline's Dagster job from plain Python (CLI ``sync``, the demo) and reading its status.

Runs go through the same Dagster instance as the webserver and daemon (``DAGSTER_HOME``), so they
appear in the UI with their metadata, and their API calls pace through the same shared limiter. A caller
can follow a run's progress: the INFO lines a step logs starting with ``PROGRESS_PREFIX`` (the messages
step's done/total, calls, waits and time left) reach ``on_progress`` as they are logged, nothing else.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import dagster as dg
import sqlalchemy as sa
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus
from sqlalchemy.engine import Engine

from hostaway_pipeline.defs.assets import KEY_PREFIX
from hostaway_pipeline.defs.jobs import reconcile_account_job
from hostaway_pipeline.defs.partitions import ACCOUNT_PARTITIONS_NAME, partition_key
from hostaway_pipeline.defs.run_tags import PARTITION_TAG, TRIGGER_TAG
from hostaway_pipeline.storage import tables
from hostaway_pipeline.sync import sync_state
from hostaway_pipeline.sync.sync_state import SyncState

ASSET_NAMES = ("listings", "reservations", "conversations", "messages")
# What a step's progress lines start with (``context.log.info``), in the run's log and on the terminal.
PROGRESS_PREFIX = "progress: "


def asset_key(name: str) -> dg.AssetKey:
    return dg.AssetKey([KEY_PREFIX, name])


def progress_logger(on_progress: Callable[[str], None]) -> dg.LoggerDefinition:
    """A Dagster logger handing each progress line a step logs (its own words, no Dagster prefix) to ``on_progress``."""
    class ProgressHandler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            message = (getattr(record, "dagster_meta", None) or {}).get("orig_message")
            if isinstance(message, str) and message.startswith(PROGRESS_PREFIX):
                on_progress(message)

    def progress(_init_context: dg.InitLoggerContext) -> logging.Logger:
        progress_log = logging.Logger("hostaway_pipeline.progress", level=logging.INFO)
        progress_log.addHandler(ProgressHandler(level=logging.INFO))
        return progress_log

    return dg.LoggerDefinition(progress, description="The run's progress lines, for a terminal following the run")


def run_account_sync(instance: dg.DagsterInstance, account_id: int, asset_names: Sequence[str] | None = None,
                     full_refresh_messages: bool = False, raise_on_error: bool = False,
                     log_level: str = "WARNING", allow_mass_delete: bool = False,
                     on_progress: Callable[[str], None] | None = None) -> dg.ExecuteInProcessResult:
    """Materialize the account's partition (all four assets, or ``asset_names``) as a run of the instance;
    ``on_progress`` receives the steps' progress lines as they are logged."""
    from hostaway_pipeline.definitions import defs

    unknown = set(asset_names or ()) - set(ASSET_NAMES)
    if unknown:
        raise ValueError(f"unknown assets {sorted(unknown)}; choose from {', '.join(ASSET_NAMES)}")
    if partition_key(account_id) not in instance.get_dynamic_partitions(ACCOUNT_PARTITIONS_NAME):
        instance.add_dynamic_partitions(ACCOUNT_PARTITIONS_NAME, [partition_key(account_id)])
    job = defs.resolve_job_def(reconcile_account_job.name)
    selection = [asset_key(name) for name in asset_names] if asset_names else None
    # The run's full event log is in the instance (and the UI); the console gets warnings and errors only.
    run_config: dict[str, Any] = {"loggers": {"console": {"config": {"log_level": log_level}}}}
    ops: dict[str, Any] = {}
    for name in asset_names or ASSET_NAMES:
        op_config: dict[str, Any] = {}
        if allow_mass_delete:
            op_config["allow_mass_delete"] = True
        if full_refresh_messages and name == "messages":
            op_config["full_refresh"] = True
        if op_config:
            ops[f"{KEY_PREFIX}__{name}"] = {"config": op_config}
    if ops:
        run_config["ops"] = ops
    if on_progress is not None:
        job = job.with_logger_defs({**job.loggers, "progress": progress_logger(on_progress)})
        run_config["loggers"]["progress"] = {}
    return job.execute_in_process(
        instance=instance, partition_key=partition_key(account_id), asset_selection=selection,
        run_config=run_config, raise_on_error=raise_on_error,
        tags={"hostaway/account_id": str(account_id), "hostaway/trigger": "cli"},
    )


@dataclass
class RunVerdict:
    """Why a run is not green: failed steps (their one-line reasons) and failed ERROR-severity checks."""

    failed_steps: list[str] = field(default_factory=list)
    failed_checks: list[str] = field(default_factory=list)

    @property
    def green(self) -> bool:
        return not self.failed_steps and not self.failed_checks

    def summary(self) -> str:
        parts = [*(f"step {line}" for line in self.failed_steps),
                 *(f"check {line}" for line in self.failed_checks)]
        return "; ".join(parts)


def run_verdict(result: dg.ExecuteInProcessResult) -> RunVerdict:
    """The run's failed steps and its failed ERROR-severity checks (WARN checks never fail a run)."""
    verdict = RunVerdict()
    for event in result.get_step_failure_events():
        error = event.step_failure_data.error
        user_message = getattr(event.step_failure_data.user_failure_data, "description", None)
        reason = user_message or (error.message.strip().splitlines()[0] if error and error.message else "failed")
        verdict.failed_steps.append(f"{event.step_key}: {reason}")
    for evaluation in result.get_asset_check_evaluations():
        if not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.ERROR:
            figures = ", ".join(f"{k}={v.value}" for k, v in evaluation.metadata.items())
            verdict.failed_checks.append(
                f"{'/'.join(evaluation.asset_key.path)}:{evaluation.check_name}" + (f" ({figures})" if figures else "")
            )
    return verdict


def materialization_metadata(result: dg.ExecuteInProcessResult) -> dict[str, dict[str, Any]]:
    """Per asset name, the metadata its materialization reported."""
    found: dict[str, dict[str, Any]] = {}
    for event in result.get_asset_materialization_events():
        materialization = event.step_materialization_data.materialization
        found[materialization.asset_key.path[-1]] = {k: v.value for k, v in materialization.metadata.items()}
    return found


@dataclass
class LatestRun:
    """An account's newest run (of any job, for its partition) and, when it failed, what failed."""

    run_id: str
    status: str  # DagsterRunStatus name: QUEUED, STARTED, SUCCESS, FAILURE, CANCELED, ...
    ended_at: datetime | None
    # Assets the run set out to materialize for the account but did not (failed, or skipped behind a failure).
    not_materialized: list[str] = field(default_factory=list)
    # ``step_key: reason`` of its failed steps (read for the first ``FAILED_RUNS_EXPLAINED`` failed runs).
    failed_steps: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return self.status == dg.DagsterRunStatus.FAILURE.value


@dataclass
class AccountStatus:
    account_id: int
    enabled: bool
    last_sync: dict[str, datetime | None] = field(default_factory=dict)
    live_rows: dict[str, int] = field(default_factory=dict)
    failing_checks: list[str] = field(default_factory=list)
    # Per resource with a recorded complete read: what it proved (``hostaway.sync_state``).
    sync_states: dict[str, SyncState] = field(default_factory=dict)
    latest_run: LatestRun | None = None


def sync_state_summary(state: SyncState) -> str:
    """One line: the last full and incremental reads, the watermark (on the API's clock), the last counts."""
    def moment(value: datetime | None) -> str:
        return f"{value.astimezone():%Y-%m-%d %H:%M:%S %Z}" if value is not None else "none yet"

    watermark = f", watermark {moment(state.watermark)} (API clock)" if state.watermark is not None else ""
    if state.last_read_kind == "full":
        last = f"last read (full) held {state.last_read_objects} of {state.last_api_count} counted"
    else:  # a window or a head walk reads what changed, not the whole resource: not a short read
        last = (f"last read ({state.last_read_kind}) brought {state.last_read_objects} changed objects "
                f"({state.last_api_count} counted upstream)")
    return (f"last full read {moment(state.last_full_read_at)}, last incremental read "
            f"{moment(state.last_incremental_read_at)}{watermark}; {last}")


def live_row_counts(engine: Engine) -> dict[tuple[int, str], int]:
    """(account, resource) -> live rows, for every account, in one query."""
    counts_by_table = [
        sa.select(sa.literal(name).label("resource"), entity.table.c.account_id, sa.func.count().label("live_rows"))
        .where(entity.table.c.deleted_at.is_(None)).group_by(entity.table.c.account_id)
        for name, entity in tables.ENTITY_TABLES.items()
    ]
    with engine.connect() as connection:
        rows = connection.execute(sa.union_all(*counts_by_table)).all()
    return {(account_id, resource): live_rows for resource, account_id, live_rows in rows}


# Failed latest runs whose step failures (with their one-line reasons) ``status`` reads, one query each; the
# others still show as failed, with their run id and the assets they did not materialize.
FAILED_RUNS_EXPLAINED = 20


def account_statuses(instance: dg.DagsterInstance, engine: Engine, accounts: Sequence[Any]) -> list[AccountStatus]:
    """Per account: last sync per asset, live rows, sync state, failing checks and the latest run.

    A fixed number of queries whatever the number of accounts: one SQL query for the live rows, one for the
    sync states, one for every account's latest run (see ``_latest_runs``), two per asset for
    the latest materializations and one per asset for what the failed runs left unmaterialized, one per
    check for the latest evaluations; plus one per failed latest run, for the first ``FAILED_RUNS_EXPLAINED``.
    """
    partitions = {partition_key(account.account_id) for account in accounts}
    counts = live_row_counts(engine)
    states = sync_state.load_all(engine)
    last_sync = {name: _latest_materialization_times(instance, asset_key(name), partitions) for name in ASSET_NAMES}
    failing = _failing_checks(instance, sorted(partitions))
    latest_runs = _latest_runs(instance, sorted(partitions))
    _explain_failed_runs(instance, latest_runs)
    statuses: list[AccountStatus] = []
    for account in accounts:
        key = partition_key(account.account_id)
        status = AccountStatus(account.account_id, account.enabled, latest_run=latest_runs.get(key))
        for name in ASSET_NAMES:
            status.last_sync[name] = last_sync[name].get(key)
            status.live_rows[name] = counts.get((account.account_id, name), 0)
            if (account.account_id, name) in states:
                status.sync_states[name] = states[(account.account_id, name)]
        status.failing_checks = sorted(failing.get(key, set()))
        statuses.append(status)
    return statuses


def _latest_materialization_times(instance: dg.DagsterInstance, key: dg.AssetKey,
                                  partitions: set[str]) -> dict[str, datetime]:
    """Partition -> when its newest materialization was recorded (two queries for every partition)."""
    if not partitions:
        return {}
    storage_ids = instance.event_log_storage.get_latest_storage_id_by_partition(
        key, dg.DagsterEventType.ASSET_MATERIALIZATION, partitions)
    if not storage_ids:
        return {}
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, storage_ids=list(storage_ids.values())), limit=len(storage_ids)
    ).records
    return {record.partition_key: datetime.fromtimestamp(record.timestamp).astimezone()
            for record in records if record.partition_key is not None}


def _failing_checks(instance: dg.DagsterInstance, partitions: list[str]) -> dict[str, set[str]]:
    """Partition -> the account checks whose latest evaluation for it failed (one query per check)."""
    from hostaway_pipeline.defs.checks import HOSTAWAY_CHECKS

    check_keys = [check_key for checks in HOSTAWAY_CHECKS for check_key in checks.check_keys]
    failing: dict[str, set[str]] = {}
    if not partitions:
        return failing
    for info in instance.event_log_storage.get_asset_check_partition_info(check_keys, partition_keys=partitions):
        if info.partition_key is not None and info.latest_execution_status == AssetCheckExecutionRecordStatus.FAILED:
            failing.setdefault(info.partition_key, set()).add(
                f"{'/'.join(info.check_key.asset_key.path)}:{info.check_key.name}")
    return failing


# Runs that reconcile an account (the pacing sensor's, the CLI's, backfills and UI materializations);
# not its analytics runs or intraday passes, whose success says nothing about the reconciliation.
RECONCILING_TRIGGERS = ("daily_reconciliation", "cli", "backfill", "ui")


def _latest_runs(instance: dg.DagsterInstance, partitions: Sequence[str]) -> dict[str, LatestRun]:
    """Partition -> the account's newest reconciling run (see RECONCILING_TRIGGERS), in one query.

    Dagster's own "latest run per partition" (what the UI's partition status uses): it reads one narrow
    row (id, status, times, partition) per run of these partitions and keeps the newest of each. (Run
    storage ignores ``get_run_records``' ``bucket_by`` in Dagster 1.13, so that is no shortcut.)
    """
    if not partitions:
        return {}
    return {
        data.partition: LatestRun(
            data.run_id, data.status.value,
            datetime.fromtimestamp(data.end_time).astimezone() if data.end_time else None)
        for data in instance.run_storage.get_run_partition_data(dg.RunsFilter(
            tags={PARTITION_TAG: list(partitions), TRIGGER_TAG: list(RECONCILING_TRIGGERS)}))
    }


def _explain_failed_runs(instance: dg.DagsterInstance, latest_runs: dict[str, LatestRun]) -> None:
    """Fill in what the failed latest runs did not materialize (one query per asset) and, for the first
    ``FAILED_RUNS_EXPLAINED``, their failed steps with the one-line reason each gave."""
    failed = {key: run for key, run in latest_runs.items() if run.failed}
    if not failed:
        return
    storage = instance.event_log_storage
    for name in ASSET_NAMES:
        # Partition -> (run id, storage id) of its newest materialization attempt that has no materialization.
        attempts = storage.get_latest_asset_partition_materialization_attempts_without_materializations(asset_key(name))
        for key, run in failed.items():
            if key in attempts and attempts[key][0] == run.run_id:
                run.not_materialized.append(name)
    newest_first = sorted(failed.values(), key=lambda r: r.ended_at.timestamp() if r.ended_at else 0.0, reverse=True)
    for run in newest_first[:FAILED_RUNS_EXPLAINED]:
        for record in instance.get_records_for_run(run.run_id, of_type=dg.DagsterEventType.STEP_FAILURE).records:
            event = record.event_log_entry.dagster_event
            if event is not None and event.step_failure_data is not None:
                run.failed_steps.append(f"{event.step_key}: {_failure_reason(event.step_failure_data)}")


def _failure_reason(failure: Any) -> str:
    """The step's own one-line reason (a ``dg.Failure`` description), else the first line of its error."""
    described = getattr(failure.user_failure_data, "description", None)
    if described:
        return str(described)
    message = failure.error.message.strip() if failure.error and failure.error.message else ""
    return message.splitlines()[0] if message else "failed"
