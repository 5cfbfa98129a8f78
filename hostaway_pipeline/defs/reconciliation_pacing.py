"""Sensor ``hostaway_reconciliation_pacing``: every enabled account reconciled about once a day, spread over it.

It replaces the 02:00 schedule that queued one run per account at once (and a second one per account behind
the first when yesterday's queue had not drained). Each tick (every 30 s):

1. one query reads each enabled account's last reconciliation: the oldest of the last complete reads of its
   listings, reservations and conversations in ``hostaway.sync_state`` (written only by reads proved
   complete, in the transaction of their rows; webhook applies never write it). One indexed query for 2,000
   accounts, where Dagster's materialization records would take a query per account and asset to look past
   the webhook-sourced ones (``reconciliation_history.py``);
2. one runs query finds every run queued or running and its account (its ``hostaway/account_id`` or
   ``dagster/partition`` tag), and one finds the reconciliation runs that failed or were cancelled in the
   last 26 h;
3. an account is due 24 h after its last reconciliation (never reconciled: now), or 2 h after a failed run
   newer than that (Dagster's run retry has retried it once by then; a failing account costs a run every
   2 h, not one every tick); never while a run of it is queued or running, whoever started it (a backfill,
   the UI, the CLI); disabled and removed accounts never;
4. the stalest due accounts get a run each, as many as keep at most ``HOSTAWAY_RECONCILE_MAX_QUEUED``
   (default 6) of this sensor's runs waiting in the queue; the queue refills on the next tick as runs start.

So the work follows each account's own last reconciliation instead of the clock, within the 26 h freshness
promise (``account_freshness.py``) while the IP budget allows it; after an outage every account is due and
the stalest go first, K at a time, with no account ever queued twice. Runs carry the account tags
(``run_tags.account_run_tags``, trigger ``daily_reconciliation``) and priority -1: behind webhook apply
runs (10) and interactive runs (0), ahead of backfills. The run key names the account, the state the
request was based on and the day, so a re-evaluated tick never queues a second run.
"""

# No ``from __future__ import annotations``: Dagster reads the resource annotation as a type.

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import dagster as dg
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from hostaway_pipeline.defs.jobs import reconcile_account_job
from hostaway_pipeline.defs.partitions import registered_account_ids
from hostaway_pipeline.defs.pools import ensure_api_pool_limit
from hostaway_pipeline.defs.resources import WarehouseResource
from hostaway_pipeline.defs.run_tags import ACCOUNT_ID_TAG, PARTITION_TAG, TRIGGER_TAG, account_run_tags
from hostaway_pipeline.settings import load_settings
from hostaway_pipeline.storage import tables

SENSOR_NAME = "hostaway_reconciliation_pacing"
PACING_TRIGGER = "daily_reconciliation"
RECONCILIATION_PRIORITY = -1  # webhook apply runs 10, interactive runs 0, backfills below
RECONCILE_EVERY = timedelta(hours=24)
RETRY_FAILED_AFTER = timedelta(hours=2)
FAILURES_LOOKBACK = timedelta(hours=26)  # the freshness promise: an older failure no longer matters
FAILURES_READ_LIMIT = 5000
MINIMUM_INTERVAL_SECONDS = 30
# Reconciled whole by every run and recorded in sync_state (messages follow conversations in the same run).
RECONCILED_RESOURCES = ("listings", "reservations", "conversations")

IN_FLIGHT = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
             dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]
WAITING = frozenset({dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED})
ENDED_BADLY = [dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED]


@dataclass(frozen=True)
class AccountState:
    """What pacing knows of one enabled account."""

    account_id: int
    last_reconciled: datetime | None  # None: never reconciled whole
    last_failed: datetime | None = None  # the newest failed or cancelled run of it, when newer than that

    def due_at(self, every: timedelta, retry_failed_after: timedelta) -> datetime | None:
        """When the account is due; None means now (never reconciled, and no recent failure)."""
        if self.last_failed is not None:
            return self.last_failed + retry_failed_after
        return None if self.last_reconciled is None else self.last_reconciled + every

    def staleness_order(self) -> tuple[bool, datetime, int]:
        return (self.last_reconciled is not None, self.last_reconciled or datetime.min.replace(tzinfo=UTC),
                self.account_id)

    def run_key(self, now: datetime) -> str:
        """Stable for one state on one day: a re-evaluated tick repeats it (and Dagster queues nothing twice);
        a new reconciliation or failure, or the next day, makes a new one."""
        basis = max(filter(None, (self.last_reconciled, self.last_failed)), default=None)
        stamp = basis.astimezone(UTC).strftime("%Y%m%dT%H%M%S.%fZ") if basis else "never"
        return f"reconcile-{self.account_id}-after-{stamp}-{now.astimezone(UTC):%Y%m%d}"


@dataclass(frozen=True)
class PacingPlan:
    """One tick's decision."""

    requested: list[AccountState]
    due: int  # due accounts without a run in flight (requested or left for a later tick)
    waiting: int  # this sensor's runs already waiting in the queue
    in_flight_accounts: frozenset[int]
    next_due: datetime | None  # the earliest due time of the accounts not due yet


def last_reconciliations(engine: Engine) -> tuple[datetime, dict[int, datetime | None]]:
    """The database's now, and each enabled account's last whole reconciliation (one query for all accounts)."""
    state = tables.sync_state
    last_read = sa.func.greatest(state.c.last_full_read_at, state.c.last_incremental_read_at)
    query = (
        sa.select(tables.accounts.c.account_id,
                  sa.case((sa.func.count(sa.distinct(state.c.resource)) == len(RECONCILED_RESOURCES),
                           sa.func.min(last_read)), else_=None).label("last_reconciled"))
        .select_from(tables.accounts.outerjoin(state, sa.and_(state.c.account_id == tables.accounts.c.account_id,
                                                              state.c.resource.in_(RECONCILED_RESOURCES))))
        .where(tables.accounts.c.enabled)
        .group_by(tables.accounts.c.account_id)
    )
    with engine.connect() as connection:
        now = connection.execute(sa.select(sa.func.now())).scalar_one()
        rows = connection.execute(query).all()
    return now, {row.account_id: row.last_reconciled for row in rows}


def run_account_id(tags: Mapping[str, str]) -> int | None:
    """The account a run is for: its account tag, else its partition (a UI run not yet tagged); None for others."""
    value = tags.get(ACCOUNT_ID_TAG) or tags.get(PARTITION_TAG)
    return int(value) if value is not None and value.isascii() and value.isdigit() else None


def runs_in_flight(instance: dg.DagsterInstance) -> tuple[frozenset[int], int]:
    """Accounts with a run queued or running (any trigger), and how many of this sensor's runs are waiting."""
    runs = instance.get_runs(filters=dg.RunsFilter(statuses=IN_FLIGHT))
    accounts = frozenset(filter(None, (run_account_id(run.tags) for run in runs)))
    waiting = sum(1 for run in runs if run.status in WAITING and run.tags.get(TRIGGER_TAG) == PACING_TRIGGER)
    return accounts, waiting


def recent_failures(instance: dg.DagsterInstance, now: datetime) -> dict[int, datetime]:
    """The newest failed or cancelled reconciliation run per account over the last ``FAILURES_LOOKBACK``.

    Only the reconciliation job's runs (this sensor's and ``hostaway-pipeline sync``'s): a failed run of
    another job (an intraday pass, a backfill of one asset) must not hold back a reconciliation that is due.
    """
    records = instance.get_run_records(
        filters=dg.RunsFilter(job_name=reconcile_account_job.name, statuses=ENDED_BADLY,
                              updated_after=now - FAILURES_LOOKBACK),
        limit=FAILURES_READ_LIMIT)
    failed: dict[int, datetime] = {}
    for record in records:
        account_id = run_account_id(record.dagster_run.tags)
        if account_id is None:
            continue
        ended = datetime.fromtimestamp(record.end_time, UTC) if record.end_time else record.update_timestamp
        ended = ended if ended.tzinfo else ended.replace(tzinfo=UTC)
        failed[account_id] = max(ended, failed.get(account_id, ended))
    return failed


def plan_reconciliations(now: datetime, last_reconciled: Mapping[int, datetime | None],
                         failures: Mapping[int, datetime], in_flight_accounts: Iterable[int], waiting: int,
                         partitions: Iterable[int], max_queued: int, every: timedelta = RECONCILE_EVERY,
                         retry_failed_after: timedelta = RETRY_FAILED_AFTER) -> PacingPlan:
    """The stalest due accounts, as many as keep at most ``max_queued`` of this sensor's runs waiting."""
    busy = frozenset(in_flight_accounts)
    registered = frozenset(partitions)
    due: list[AccountState] = []
    next_due: datetime | None = None
    for account_id, last in last_reconciled.items():
        if account_id in busy or account_id not in registered:
            continue
        failed = failures.get(account_id)
        state = AccountState(account_id, last, failed if failed and (last is None or failed > last) else None)
        due_at = state.due_at(every, retry_failed_after)
        if due_at is None or due_at <= now:
            due.append(state)
        elif next_due is None or due_at < next_due:
            next_due = due_at
    due.sort(key=AccountState.staleness_order)
    room = max(0, max_queued - waiting)
    return PacingPlan(due[:room], len(due), waiting, busy, next_due)


def run_request(state: AccountState, now: datetime) -> dg.RunRequest:
    return dg.RunRequest(
        run_key=state.run_key(now),
        partition_key=str(state.account_id),
        tags={**account_run_tags(state.account_id, PACING_TRIGGER), "dagster/priority": str(RECONCILIATION_PRIORITY)},
    )


def _describe(state: AccountState) -> str:
    last = state.last_reconciled
    return f"{state.account_id} ({f'last {last:%Y-%m-%d %H:%M} UTC' if last else 'never'})"


def build_reconciliation_pacing_sensor(max_queued: int | None = None, every: timedelta = RECONCILE_EVERY,
                                       retry_failed_after: timedelta = RETRY_FAILED_AFTER,
                                       minimum_interval_seconds: int = MINIMUM_INTERVAL_SECONDS,
                                       ) -> dg.SensorDefinition:
    """The sensor; ``max_queued`` None reads ``HOSTAWAY_RECONCILE_MAX_QUEUED`` at each tick.

    ``every`` and ``retry_failed_after`` are for benchmarks that compress a day into minutes.
    """

    @dg.sensor(
        name=SENSOR_NAME,
        job=reconcile_account_job,
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Reconciles each enabled account about {every.total_seconds() / 3600:g} h after its last "
                    "reconciliation, stalest first, keeping at most HOSTAWAY_RECONCILE_MAX_QUEUED (default 6) "
                    "of its runs waiting in the queue; never an account with a run queued or running, never a "
                    f"disabled one; a failed account again after {retry_failed_after.total_seconds() / 3600:g} h.",
    )
    def hostaway_reconciliation_pacing(context: dg.SensorEvaluationContext, warehouse: WarehouseResource):
        settings = load_settings()
        # A deployment of only webserver + daemon gets the API pool's limit here, before the first run
        # this sensor queues (dagster.yaml's pools.default_limit is not used: see defs/pools.py).
        ensure_api_pool_limit(context.instance, settings.api_pool_limit)
        limit = max_queued if max_queued is not None else settings.reconcile_max_queued
        now, last_reconciled = last_reconciliations(warehouse.engine)
        if not last_reconciled:
            return dg.SkipReason("no enabled accounts (hostaway-pipeline accounts add ACCOUNT_ID)")
        in_flight_accounts, waiting = runs_in_flight(context.instance)
        plan = plan_reconciliations(now, last_reconciled, recent_failures(context.instance, now), in_flight_accounts,
                                    waiting, registered_account_ids(context.instance), limit, every,
                                    retry_failed_after)
        if not plan.requested:
            if plan.due:
                return dg.SkipReason(f"{plan.due} accounts due; {plan.waiting} reconciliation runs already waiting "
                                     f"(at most {limit})")
            upcoming = f"; next due {plan.next_due:%Y-%m-%d %H:%M:%S} UTC" if plan.next_due else ""
            return dg.SkipReason(f"no account due ({len(last_reconciled)} enabled, "
                                 f"{len(plan.in_flight_accounts)} with a run queued or running){upcoming}")
        context.log.info(f"{len(plan.requested)} of {plan.due} due accounts requested, stalest first: "
                         + ", ".join(_describe(state) for state in plan.requested))
        return [run_request(state, now) for state in plan.requested]

    return hostaway_reconciliation_pacing


reconciliation_pacing_sensor = build_reconciliation_pacing_sensor()
