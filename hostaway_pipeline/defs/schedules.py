"""The daily reconciliation: one run per enabled account, queued behind the shared limiter and the pool."""

import dagster as dg

from hostaway_pipeline.defs.jobs import reconcile_account_job
from hostaway_pipeline.defs.partitions import ACCOUNT_PARTITIONS_NAME, partition_key
from hostaway_pipeline.defs.resources import WarehouseResource
from hostaway_pipeline.defs.run_tags import account_run_tags
from hostaway_pipeline.settings import load_settings


def reconciliation_run_requests(instance: dg.DagsterInstance, enabled_account_ids: list[int],
                                day: str) -> list[dg.RunRequest]:
    """One request per account that is both enabled and a registered partition; ``run_key`` stable per day.

    Disabled and removed accounts keep their partitions (``partitions.py``) and get no request.
    """
    partitions = set(instance.get_dynamic_partitions(ACCOUNT_PARTITIONS_NAME))
    return [
        dg.RunRequest(
            run_key=f"reconcile-{day}-{account_id}",
            partition_key=partition_key(account_id),
            tags=account_run_tags(account_id, "daily_reconciliation"),
        )
        for account_id in sorted(enabled_account_ids)
        if partition_key(account_id) in partitions
    ]


def build_daily_reconciliation_schedule(cron: str | None = None) -> dg.ScheduleDefinition:
    @dg.schedule(
        name="daily_hostaway_reconciliation",
        job=reconcile_account_job,
        cron_schedule=cron or load_settings().reconcile_cron,
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Reconciles every enabled account once a day (HOSTAWAY_RECONCILE_CRON, default 02:00 UTC, "
                    "away from Hostaway's midnight peak); runs queue and share one API budget.",
    )
    def daily_hostaway_reconciliation(context: dg.ScheduleEvaluationContext, warehouse: WarehouseResource):
        day = (context.scheduled_execution_time.strftime("%Y-%m-%d") if context.scheduled_execution_time
               else "manual")
        requests = reconciliation_run_requests(context.instance, warehouse.accounts.enabled_account_ids(), day)
        if not requests:
            return dg.SkipReason("no enabled accounts (hostaway-pipeline accounts add ACCOUNT_ID)")
        return requests

    return daily_hostaway_reconciliation


daily_reconciliation_schedule = build_daily_reconciliation_schedule()
