"""Running the pipeline's Dagster job from plain Python (CLI ``sync``, the demo) and reading its status.

Runs go through the same Dagster instance as the webserver and daemon (``DAGSTER_HOME``), so they
appear in the UI with their metadata, and their API calls pace through the same shared limiter.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import dagster as dg
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from hostaway_pipeline.defs.assets import KEY_PREFIX
from hostaway_pipeline.defs.jobs import reconcile_account_job
from hostaway_pipeline.defs.partitions import ACCOUNT_PARTITIONS_NAME, partition_key
from hostaway_pipeline.storage import tables
from hostaway_pipeline.sync import sync_state
from hostaway_pipeline.sync.sync_state import SyncState

ASSET_NAMES = ("listings", "reservations", "conversations", "messages")


def asset_key(name: str) -> dg.AssetKey:
    return dg.AssetKey([KEY_PREFIX, name])


def run_account_sync(instance: dg.DagsterInstance, account_id: int, asset_names: Sequence[str] | None = None,
                     full_refresh_messages: bool = False, raise_on_error: bool = False,
                     log_level: str = "WARNING", allow_mass_delete: bool = False) -> dg.ExecuteInProcessResult:
    """Materialize the account's partition (all four assets, or ``asset_names``) as a run of the instance."""
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
class AccountStatus:
    account_id: int
    enabled: bool
    last_sync: dict[str, datetime | None] = field(default_factory=dict)
    live_rows: dict[str, int] = field(default_factory=dict)
    failing_checks: list[str] = field(default_factory=list)
    # Per resource with a recorded complete read: what it proved (``hostaway.sync_state``).
    sync_states: dict[str, SyncState] = field(default_factory=dict)


def sync_state_summary(state: SyncState) -> str:
    """One line: the last full and incremental reads, the watermark (on the API's clock), the last counts."""
    def moment(value: datetime | None) -> str:
        return f"{value.astimezone():%Y-%m-%d %H:%M:%S %Z}" if value is not None else "none yet"

    watermark = f", watermark {moment(state.watermark)} (API clock)" if state.watermark is not None else ""
    return (f"last full read {moment(state.last_full_read_at)}, last incremental read "
            f"{moment(state.last_incremental_read_at)}{watermark}; last read ({state.last_read_kind}) held "
            f"{state.last_read_objects} of {state.last_api_count} counted")


def live_row_counts(engine: Engine) -> dict[tuple[int, str], int]:
    counts: dict[tuple[int, str], int] = {}
    with engine.connect() as connection:
        for name, entity in tables.ENTITY_TABLES.items():
            table = entity.table
            rows = connection.execute(
                sa.select(table.c.account_id, sa.func.count()).where(table.c.deleted_at.is_(None))
                .group_by(table.c.account_id)
            ).all()
            for account_id, count in rows:
                counts[(account_id, name)] = count
    return counts


def account_statuses(instance: dg.DagsterInstance, engine: Engine, accounts: Sequence[Any]) -> list[AccountStatus]:
    """Last sync per asset (from the run history), live row counts, sync state and failing checks, per account."""
    counts = live_row_counts(engine)
    states = sync_state.load_all(engine)
    statuses: list[AccountStatus] = []
    check_failures = _latest_failing_checks(instance)
    for account in accounts:
        status = AccountStatus(account.account_id, account.enabled)
        for name in ASSET_NAMES:
            records = instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=asset_key(name), asset_partitions=[partition_key(account.account_id)]),
                limit=1,
            ).records
            status.last_sync[name] = (
                datetime.fromtimestamp(records[0].timestamp).astimezone() if records else None
            )
            status.live_rows[name] = counts.get((account.account_id, name), 0)
            if (account.account_id, name) in states:
                status.sync_states[name] = states[(account.account_id, name)]
        status.failing_checks = sorted(check_failures.get(partition_key(account.account_id), set()))
        statuses.append(status)
    return statuses


# How many of the newest check evaluations ``status`` reads: several weeks of daily syncs for hundreds of
# accounts. A (partition, check) not evaluated within them is reported as not failing.
CHECK_EVALUATIONS_READ = 5000


def _latest_failing_checks(instance: dg.DagsterInstance) -> dict[str, set[str]]:
    """Partition key -> checks whose most recent evaluation for that partition failed."""
    # Newest first: read oldest first, the window would stay on the first evaluations ever stored and
    # miss every later one once the history grew past it.
    records = instance.get_event_records(
        dg.EventRecordsFilter(event_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION),
        limit=CHECK_EVALUATIONS_READ, ascending=False,
    )
    latest: dict[tuple[str, str], bool] = {}
    for record in records:
        event = record.event_log_entry.dagster_event
        if event is None:
            continue
        evaluation = event.asset_check_evaluation_data
        partition = getattr(evaluation, "partition", None) or ""
        name = f"{'/'.join(evaluation.asset_key.path)}:{evaluation.check_name}"
        latest.setdefault((partition, name), evaluation.passed)  # the first seen is the latest
    failing: dict[str, set[str]] = {}
    for (partition, name), passed in latest.items():
        if not passed:
            failing.setdefault(partition, set()).add(name)
    return failing
