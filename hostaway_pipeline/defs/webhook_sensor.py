"""Sensor ``hostaway_webhook_events``: one apply run per tick for the next id range of pending events.

The cursor is the next event id not yet requested: a tick asks for at most ``max_events_per_run`` pending
events from there (one indexed query, far under Dagster's 60 s tick limit), and puts the range in the
run key and the run config, so a re-execution applies only what is still pending. Ids are not commit
order, so an event can commit below the cursor; a failed event stays ``pending`` to be retried; and an
event of an account registered late becomes ``pending`` again. So every tick, unless a sweep run is
still queued or running, a sweep also requests the pending events received over ``sweep_after_seconds``
ago, whatever their id, in a run of its own (claims skip locked rows: overlapping runs apply each once).

Housekeeping rides on the same ticks: every tick makes the events of accounts registered since they
arrived pending again (``requeue_registered_accounts``, one indexed update), and once an hour the events
applied more than ``HOSTAWAY_WEBHOOK_RETENTION_DAYS`` ago are pruned (the cursor remembers when).
The tick interval is ``HOSTAWAY_WEBHOOK_SENSOR_INTERVAL`` (default 15 s).

Why not starved: account runs may hold at most 3 of the instance's 4 run slots (``dagster.yaml``), so one
slot is always free for apply runs; they carry ``dagster/priority`` 10 (interactive runs 0, reconciliation
-1, backfills -2), so the queue starts them first; they have no partition tag (the one-run-per-account
limit does not hold them behind a reconciliation) and no ``hostaway_api`` pool (they make no API call,
so never wait for a slot).
"""

# No ``from __future__ import annotations``: Dagster reads the config and resource annotations as types.

import json
import time
from dataclasses import asdict, dataclass, replace
from datetime import timedelta

import dagster as dg

from hostaway_pipeline.defs.resources import WarehouseResource
from hostaway_pipeline.defs.webhook_jobs import APPLY_JOB_NAME, apply_run_config, apply_webhook_events_job
from hostaway_pipeline.settings import load_settings
from hostaway_pipeline.webhooks.apply import pending_range
from hostaway_pipeline.webhooks.event_store import prune_applied, requeue_registered_accounts

MAX_EVENTS_PER_RUN = 1000
SWEEP_AFTER_SECONDS = 60.0
PRUNE_EVERY_SECONDS = 3600.0
IN_FLIGHT = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
             dg.DagsterRunStatus.STARTED]


@dataclass(frozen=True)
class WebhookCursor:
    next_event_id: int = 1
    sweeps: int = 0
    pruned_at: float = 0.0  # epoch seconds of the last prune

    @classmethod
    def parse(cls, cursor: str | None) -> "WebhookCursor":
        return cls(**json.loads(cursor)) if cursor else cls()

    def dump(self) -> str:
        return json.dumps(asdict(self))


SWEEP_TAG = "hostaway/sweep"


def _sweep_in_flight(instance: dg.DagsterInstance) -> bool:
    """One sweep at a time: a queued sweep will claim what a second one would ask for."""
    return bool(instance.get_run_ids(
        dg.RunsFilter(job_name=APPLY_JOB_NAME, statuses=IN_FLIGHT, tags={SWEEP_TAG: "true"}), limit=1))


def _apply_request(run_key: str, first: int, last: int, sweep: bool) -> dg.RunRequest:
    tags = {"hostaway/first_event_id": str(first), "hostaway/last_event_id": str(last)}
    if sweep:
        tags[SWEEP_TAG] = "true"
    return dg.RunRequest(run_key=run_key, run_config=apply_run_config(first, last), tags=tags)


def _housekeeping(engine, cursor: WebhookCursor, retention: timedelta, log) -> WebhookCursor:
    requeued = requeue_registered_accounts(engine)
    if requeued:
        log.info(f"{requeued} stored events of newly registered accounts are pending again")
    now = time.time()
    if now - cursor.pruned_at < PRUNE_EVERY_SECONDS:
        return cursor
    pruned = prune_applied(engine, retention)
    if pruned:
        log.info(f"pruned {pruned} webhook events applied more than {retention.days} days ago")
    return replace(cursor, pruned_at=now)


def build_webhook_events_sensor(minimum_interval_seconds: int | None = None,
                                max_events_per_run: int = MAX_EVENTS_PER_RUN,
                                sweep_after_seconds: float = SWEEP_AFTER_SECONDS,
                                retention_days: int | None = None) -> dg.SensorDefinition:
    settings = load_settings() if minimum_interval_seconds is None or retention_days is None else None
    interval = minimum_interval_seconds or settings.webhook_sensor_interval_seconds  # type: ignore[union-attr]
    retention = timedelta(days=retention_days or settings.webhook_retention_days)  # type: ignore[union-attr]

    @dg.sensor(name="hostaway_webhook_events", job=apply_webhook_events_job,
               minimum_interval_seconds=interval, default_status=dg.DefaultSensorStatus.RUNNING,
               description="Starts one apply run per tick for the next id range of pending webhook events, and "
                           "sweeps up events committed late or left to retry.")
    def webhook_events_sensor(context: dg.SensorEvaluationContext, warehouse: WarehouseResource):
        cursor = _housekeeping(warehouse.engine, WebhookCursor.parse(context.cursor), retention, context.log)
        requests: list[dg.RunRequest] = []
        next_cursor = cursor
        found = pending_range(warehouse.engine, cursor.next_event_id, max_events_per_run)
        if found is not None:
            first, last, count = found
            requests.append(_apply_request(f"webhook-events-{first}-{last}", first, last, sweep=False))
            next_cursor = replace(next_cursor, next_event_id=last + 1)
            context.log.info(f"{count} new pending webhook events in {first}..{last}")
        # Every tick, not only idle ones: under steady traffic events committed late, requeued or left to
        # retry would otherwise wait forever. Claims skip locked rows, so overlapping runs apply each once.
        sweeping = _sweep_in_flight(context.instance)
        swept = None if sweeping else pending_range(
            warehouse.engine, 1, max_events_per_run, received_before_seconds=sweep_after_seconds)
        if swept is not None:
            first, last, count = swept
            sweeps = next_cursor.sweeps + 1
            requests.append(_apply_request(f"webhook-sweep-{sweeps}-{first}-{last}", first, last, sweep=True))
            next_cursor = replace(next_cursor, next_event_id=max(next_cursor.next_event_id, last + 1), sweeps=sweeps)
            context.log.info(f"sweep: {count} webhook events pending for over {sweep_after_seconds:g} s in "
                             f"{first}..{last}")
        if not requests:
            reason = "no new pending events; a sweep run is in flight" if sweeping else "no pending webhook events"
            return dg.SensorResult(skip_reason=reason, cursor=next_cursor.dump())
        return dg.SensorResult(run_requests=requests, cursor=next_cursor.dump())

    return webhook_events_sensor


webhook_events_sensor = build_webhook_events_sensor()
