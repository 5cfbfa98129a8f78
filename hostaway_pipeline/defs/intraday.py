"""The intraday pass: a job per account and its schedule, stopped until switched on in the UI.

One run reads the head of the account's conversation list and the messages of the conversations that
moved (``sync.intraday``: about one call when nothing changed, plus one per moved conversation). It is
for deployments with webhooks on that want host-sent and scheduled messages sooner than the daily
reconciliation reads them; the daily reconciliation still covers what the head cannot show (see
``sync.intraday``). The schedule (``HOSTAWAY_INTRADAY_CRON``, hourly at :17 UTC by default) ships
stopped: each pass spends calls from the same per-IP budget as every account's reconciliation.
"""

from datetime import timedelta

import dagster as dg
from pydantic import Field

from hostaway_pipeline.defs.partitions import ACCOUNT_PARTITIONS_NAME, account_partitions, partition_key
from hostaway_pipeline.defs.pools import API_POOL
from hostaway_pipeline.defs.resources import HostawayApiResource, WarehouseResource
from hostaway_pipeline.defs.run_tags import account_run_tags
from hostaway_pipeline.settings import load_settings
from hostaway_pipeline.storage.account_registry import AccountError
from hostaway_pipeline.storage.sync_locks import SyncLockTimeout
from hostaway_pipeline.sync import intraday, messages_sync, sync_state
from hostaway_pipeline.sync.deletions import DeletePolicy
from hostaway_pipeline.sync.failures import SyncFailure

INTRADAY_TRIGGER = "intraday"


class IntradayConfig(dg.Config):
    overlap_minutes: float = Field(
        default=sync_state.DEFAULT_OVERLAP.total_seconds() / 60, ge=1,
        description="How far before the newest messageSentOn stored the head walk must reach back (API clock): "
                    "messages committed late or stamped by a lagging API server.")
    max_failed_conversations: int = Field(
        default=messages_sync.DEFAULT_MAX_FAILED_CONVERSATIONS, ge=0,
        description="How many moved conversations may fail to be read with the run still green; they keep their "
                    "old messages and are read again by the next pass.")
    allow_mass_delete: bool = Field(
        default=False,
        description="Only used when the head walk falls back to the whole list: let it soft-delete more than 10% "
                    "of the account's conversations when upstream really lost them.")


@dg.op(pool=API_POOL, description="The head of the conversation list, then the moved conversations' messages.")
def intraday_pass(context: dg.OpExecutionContext, config: IntradayConfig, warehouse: WarehouseResource,
                  hostaway_api: HostawayApiResource) -> None:
    account_id = int(context.partition_key)
    try:
        account = warehouse.accounts.get(account_id)
    except AccountError:
        raise dg.Failure(f"account {account_id} is not registered (hostaway-pipeline accounts add {account_id})") \
            from None
    if not account.enabled:
        raise dg.Failure(f"account {account_id} is disabled (hostaway-pipeline accounts enable {account_id})")
    client = hostaway_api.client_for(account_id)
    try:
        conversations, messages = intraday.sync_intraday(
            client, warehouse.writer, warehouse.engine, overlap=timedelta(minutes=config.overlap_minutes),
            policy=DeletePolicy(allow_mass_delete=config.allow_mass_delete), on_wait=context.log.info,
            on_progress=context.log.info, max_failed_conversations=config.max_failed_conversations)
    except SyncFailure as failure:
        raise dg.Failure(description=str(failure), metadata=failure.outcome.metadata()) from None
    except SyncLockTimeout as timeout:
        raise dg.Failure(description=str(timeout)) from None
    metadata = {**{f"conversations_{key}": value for key, value in conversations.metadata().items()
                   if not key.startswith("conversations_")},
                **{key: value for key, value in conversations.extra.items() if key.startswith("conversations_")},
                **{f"messages_{key}": value for key, value in messages.metadata().items()
                   if not key.startswith("conversations_")},
                "conversations_messages_read": messages.extra.get("conversations_read"),
                "api_calls": client.stats.calls}
    context.log.info(f"intraday pass for account {account_id}: {metadata}")
    context.add_output_metadata(metadata)


@dg.job(name="intraday_hostaway_account", partitions_def=account_partitions, executor_def=dg.in_process_executor,
        description="Intraday pass of one account: the conversation list's head and the moved conversations' "
                    "messages (about 1 call plus 1 per moved conversation); the daily reconciliation covers the rest.",
        tags={"dagster/priority": "-1"})
def intraday_account_job() -> None:
    intraday_pass()


def intraday_run_requests(instance: dg.DagsterInstance, enabled_account_ids: list[int],
                          moment: str) -> list[dg.RunRequest]:
    """One request per account that is enabled and a registered partition; ``run_key`` stable per tick."""
    partitions = set(instance.get_dynamic_partitions(ACCOUNT_PARTITIONS_NAME))
    return [dg.RunRequest(run_key=f"intraday-{moment}-{account_id}", partition_key=partition_key(account_id),
                          tags=account_run_tags(account_id, INTRADAY_TRIGGER))
            for account_id in sorted(enabled_account_ids) if partition_key(account_id) in partitions]


def build_intraday_schedule(cron: str | None = None) -> dg.ScheduleDefinition:
    @dg.schedule(
        name="intraday_hostaway_pass",
        job=intraday_account_job,
        cron_schedule=cron or load_settings().intraday_cron,
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.STOPPED,
        description="An intraday pass per enabled account (HOSTAWAY_INTRADAY_CRON, default every hour at :17 UTC). "
                    "Stopped by default: switch it on in the UI where fresher host-sent and scheduled messages are "
                    "worth about 24 + moved-conversation calls per account a day.",
    )
    def intraday_hostaway_pass(context: dg.ScheduleEvaluationContext, warehouse: WarehouseResource):
        moment = (context.scheduled_execution_time.strftime("%Y-%m-%dT%H:%M") if context.scheduled_execution_time
                  else "manual")
        requests = intraday_run_requests(context.instance, warehouse.accounts.enabled_account_ids(), moment)
        if not requests:
            return dg.SkipReason("no enabled accounts (hostaway-pipeline accounts add ACCOUNT_ID)")
        return requests

    return intraday_hostaway_pass


intraday_schedule = build_intraday_schedule()

