"""The four Hostaway assets, one partition per account. Thin: each calls ``sync`` and reports metadata."""

from datetime import timedelta

import dagster as dg

from hostaway_pipeline.defs.partitions import account_partitions
from hostaway_pipeline.defs.pools import API_POOL
from hostaway_pipeline.defs.resources import HostawayApiResource, WarehouseResource
from hostaway_pipeline.storage.account_registry import AccountError
from hostaway_pipeline.sync import full_sync, messages_sync
from hostaway_pipeline.sync.outcome import SyncOutcome

KEY_PREFIX = "hostaway"
# The daily reconciliation runs every 24 h; a day and a bit without one means something is wrong.
RECONCILIATION_FRESHNESS = dg.FreshnessPolicy.time_window(fail_window=timedelta(hours=26),
                                                          warn_window=timedelta(hours=25))


class MessagesSyncConfig(dg.Config):
    full_refresh: bool = False
    """Re-read every conversation's messages, not only those whose markers moved (costs one call each)."""
    reverify_days: int = messages_sync.DEFAULT_REVERIFY_DAYS
    """Also re-read the least recently read conversations so each is read at least once per this many
    syncs (catches changes the markers miss); 0 turns it off."""


def _account_id(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> int:
    account_id = int(context.partition_key)
    try:
        account = warehouse.accounts.get(account_id)
    except AccountError:
        message = f"account {account_id} is not registered (hostaway-pipeline accounts add {account_id})"
        raise dg.Failure(message) from None
    if not account.enabled:
        raise dg.Failure(f"account {account_id} is disabled (hostaway-pipeline accounts enable {account_id})")
    return account_id


def _result(context: dg.AssetExecutionContext, outcome: SyncOutcome) -> dg.MaterializeResult:
    context.log.info(f"{outcome.resource} for account {outcome.account_id}: {outcome.metadata()}")
    return dg.MaterializeResult(
        metadata={**outcome.metadata(), "preview": dg.MetadataValue.md(outcome.preview_markdown())}
    )


def _asset(name: str, description: str, deps: list | None = None):
    return dg.asset(
        name=name,
        key_prefix=KEY_PREFIX,
        partitions_def=account_partitions,
        pool=API_POOL,
        group_name="hostaway",
        kinds={"postgres"},
        description=description,
        deps=deps,
        freshness_policy=RECONCILIATION_FRESHNESS,
        metadata={"table": f"hostaway.{name}"},
    )


@_asset("listings", "Every listing of the account, reconciled in full; gone upstream -> deleted_at.")
def listings(context: dg.AssetExecutionContext, warehouse: WarehouseResource,
             hostaway_api: HostawayApiResource) -> dg.MaterializeResult:
    client = hostaway_api.client_for(_account_id(context, warehouse))
    return _result(context, full_sync.sync_listings(client, warehouse.writer, warehouse.engine))


@_asset("reservations", "Every reservation of the account (afterId cursor: none missed or duplicated).")
def reservations(context: dg.AssetExecutionContext, warehouse: WarehouseResource,
                 hostaway_api: HostawayApiResource) -> dg.MaterializeResult:
    client = hostaway_api.client_for(_account_id(context, warehouse))
    return _result(context, full_sync.sync_reservations(client, warehouse.writer, warehouse.engine))


@_asset("conversations", "Every guest conversation of the account with its change markers.")
def conversations(context: dg.AssetExecutionContext, warehouse: WarehouseResource,
                  hostaway_api: HostawayApiResource) -> dg.MaterializeResult:
    client = hostaway_api.client_for(_account_id(context, warehouse))
    return _result(context, full_sync.sync_conversations(client, warehouse.writer, warehouse.engine))


@_asset("messages", "Messages of every conversation whose markers moved since its messages were last read.",
        deps=[conversations])
def messages(context: dg.AssetExecutionContext, config: MessagesSyncConfig, warehouse: WarehouseResource,
             hostaway_api: HostawayApiResource) -> dg.MaterializeResult:
    client = hostaway_api.client_for(_account_id(context, warehouse))
    outcome = messages_sync.sync_messages(client, warehouse.writer, warehouse.engine, config.full_refresh,
                                          config.reverify_days)
    return _result(context, outcome)


HOSTAWAY_ASSETS = [listings, reservations, conversations, messages]
