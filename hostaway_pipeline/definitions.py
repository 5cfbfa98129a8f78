"""The one Dagster ``Definitions`` of hostaway_pipeline: wires assets, checks, jobs, schedules, sensors, resources."""

from __future__ import annotations

import dagster as dg

from hostaway_pipeline.defs.account_freshness import (
    ACCOUNT_FRESHNESS_CHECKS,
    account_freshness,
    account_freshness_job,
    account_freshness_schedule,
)
from hostaway_pipeline.defs.analytics_assets import ANALYTICS_ASSETS, analytics_automation_sensor
from hostaway_pipeline.defs.assets import HOSTAWAY_ASSETS
from hostaway_pipeline.defs.checks import HOSTAWAY_CHECKS
from hostaway_pipeline.defs.intraday import intraday_account_job, intraday_schedule
from hostaway_pipeline.defs.jobs import reconcile_account_job
from hostaway_pipeline.defs.reconciliation_pacing import reconciliation_pacing_sensor
from hostaway_pipeline.defs.resources import HostawayApiResource, HostawayRateLimiterResource, WarehouseResource
from hostaway_pipeline.defs.sensors import account_partitions_sensor
from hostaway_pipeline.defs.webhook_jobs import apply_webhook_events_job
from hostaway_pipeline.defs.webhook_sensor import webhook_events_sensor


def build_resources() -> dict[str, dg.ConfigurableResource]:
    warehouse = WarehouseResource()
    rate_limiter = HostawayRateLimiterResource(warehouse=warehouse)
    return {
        "warehouse": warehouse,
        "hostaway_rate_limiter": rate_limiter,
        "hostaway_api": HostawayApiResource(warehouse=warehouse, rate_limiter=rate_limiter),
    }


defs = dg.Definitions(
    assets=[*HOSTAWAY_ASSETS, account_freshness, *ANALYTICS_ASSETS],
    asset_checks=[*HOSTAWAY_CHECKS, *ACCOUNT_FRESHNESS_CHECKS],
    jobs=[reconcile_account_job, account_freshness_job, apply_webhook_events_job, intraday_account_job],
    schedules=[account_freshness_schedule, intraday_schedule],
    sensors=[reconciliation_pacing_sensor, account_partitions_sensor, webhook_events_sensor,
             analytics_automation_sensor],
    resources=build_resources(),
    # Runs wait on the API, not the CPU: one process per run, also for runs the UI launches of the assets.
    executor=dg.in_process_executor,
)
