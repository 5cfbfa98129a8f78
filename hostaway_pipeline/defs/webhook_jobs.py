"""The webhook apply job: one op applies the pending events of an id range (``webhooks.apply``), no API call.

Each touched (asset, account) gets a materialization tagged ``hostaway/source: webhook`` with event counts
and the id range, and without ``reported_count``: it says the rows moved, not what the API counts.
"""

# No ``from __future__ import annotations``: Dagster reads the config and resource annotations as types.

import dagster as dg
from pydantic import Field

from hostaway_pipeline.defs.assets import KEY_PREFIX
from hostaway_pipeline.defs.partitions import partition_key
from hostaway_pipeline.defs.resources import WarehouseResource
from hostaway_pipeline.webhooks.apply import apply_events

APPLY_JOB_NAME = "apply_hostaway_webhook_events"
APPLY_OP_NAME = "apply_webhook_events"
SOURCE_TAG = "hostaway/source"
# Dequeued before interactive runs (0), backfill runs (0) and reconciliations (-1): see webhook_sensor.py.
APPLY_RUN_PRIORITY = "10"


class ApplyWebhookEventsConfig(dg.Config):
    first_event_id: int = Field(
        description="The first hostaway.webhook_events event_id of the range to apply (inclusive); the "
                    "hostaway_webhook_events sensor sets it. Required, no default.")
    last_event_id: int = Field(
        description="The last event_id of the range (inclusive). Only pending events of the range are applied, so "
                    "applying a range again is harmless. Required, no default.")


@dg.op(name=APPLY_OP_NAME, description="Applies the pending webhook events of an id range to the entity tables.")
def apply_webhook_events(context: dg.OpExecutionContext, config: ApplyWebhookEventsConfig,
                         warehouse: WarehouseResource) -> None:
    outcome = apply_events(warehouse.engine, warehouse.writer, config.first_event_id, config.last_event_id)
    for touched in outcome.touched.values():
        if not touched.applied:
            continue
        context.log_event(dg.AssetMaterialization(
            asset_key=dg.AssetKey([KEY_PREFIX, touched.entity]), partition=partition_key(touched.account_id),
            metadata=touched.metadata(), tags={SOURCE_TAG: "webhook"}))
    context.log.info(f"webhook events {config.first_event_id}..{config.last_event_id}: {outcome.applied} applied, "
                     f"{outcome.ignored} ignored, {outcome.retrying} to retry, {outcome.failed} failed for good")
    if outcome.failed:
        raise dg.Failure(f"{outcome.failed} webhook events failed for good (hostaway.webhook_events.last_error says "
                         "why); the next reconciliation of their accounts rewrites those rows")


@dg.job(name=APPLY_JOB_NAME, tags={"dagster/priority": APPLY_RUN_PRIORITY},
        description="Applies stored Hostaway webhook events (an id range) to the tables; started by the "
                    "hostaway_webhook_events sensor. No API call, so no hostaway_api pool and no partition.")
def apply_webhook_events_job() -> None:
    apply_webhook_events()


def apply_run_config(first_event_id: int, last_event_id: int) -> dict:
    return {"ops": {APPLY_OP_NAME: {"config": {"first_event_id": first_event_id, "last_event_id": last_event_id}}}}
