"""The four Hostaway assets, one partition per account. Thin: each calls ``sync`` and reports metadata.

Reservations are listed in full on the first sync and weekly (run config ``full_listing`` forces it,
``full_listing_every_days`` sets the cadence); in between only what changed since the watermark is read.
Each materialization's metadata carries its read (``read_kind``, ``read_window_start``) and the sync state
it recorded (``sync_watermark``, ``sync_last_full_read_at``, ...). Every materialization also carries
Dagster's standard table metadata (``dagster/table_name``, ``dagster/row_count``: the account's live
rows, ``dagster/column_schema`` from the table's comments) and ``changes``: the ids it inserted, updated
and soft-deleted (see ``table_metadata``).

A sync that cannot finish green (an incomplete read, a refused mass deletion, conversations whose
messages could not be read) has already written what it read for certain; the asset then fails its step
with the sync's one-line reason and figures, so the run, the UI and ``hostaway-pipeline sync`` all show
red. A failed step is also what keeps downstream work off a bad read: ``messages`` depends on
``conversations`` and does not run when the conversations read failed (it would otherwise take the
stored conversations as the list to read, and soft-delete messages of conversations missing from it).
The row-count checks are not blocking: they compare the stored rows with the API's count at the read,
which a busy account can move between the read and the check; they fail as ERROR and
``hostaway-pipeline sync`` exits non-zero on them, but they do not hold back the next asset.
"""

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import dagster as dg
from pydantic import Field

from hostaway_pipeline.defs import table_metadata
from hostaway_pipeline.defs.partitions import account_partitions
from hostaway_pipeline.defs.pools import API_POOL
from hostaway_pipeline.defs.resources import HostawayApiResource, WarehouseResource
from hostaway_pipeline.hostaway.client import HostawayClient
from hostaway_pipeline.storage.account_registry import AccountError
from hostaway_pipeline.storage.sync_locks import SyncLockTimeout
from hostaway_pipeline.sync import full_sync, messages_sync, reservations_sync, sync_state
from hostaway_pipeline.sync.deletions import DeletePolicy
from hostaway_pipeline.sync.failures import SyncFailure
from hostaway_pipeline.sync.outcome import SyncOutcome

KEY_PREFIX = "hostaway"
# The daily reconciliation runs every 24 h; a day and a bit without one means something is wrong.
RECONCILIATION_FRESHNESS = dg.FreshnessPolicy.time_window(fail_window=timedelta(hours=26),
                                                          warn_window=timedelta(hours=25))


class ReconcileConfig(dg.Config):
    allow_mass_delete: bool = Field(
        default=False,
        description="Let this run soft-delete more than 10% (and more than 5) of the account's live rows of this "
                    "resource when upstream really lost them; otherwise such a run deletes nothing and fails. "
                    "Default: false.",
    )


class ReservationsSyncConfig(ReconcileConfig):
    full_listing: bool = Field(
        default=False,
        description="List every reservation now (and prove deletions by id), whatever the cadence; otherwise "
                    "only what changed since the last complete read is read, until a full listing is due. "
                    "Default: false.")
    full_listing_every_days: float = Field(
        default=reservations_sync.DEFAULT_FULL_LISTING_EVERY.total_seconds() / 86400, ge=0,
        description="How often a full listing (the only read that proves deletions) replaces the incremental "
                    "read, in days since the last complete one; 0 lists in full every time. Default: "
                    f"{reservations_sync.DEFAULT_FULL_LISTING_EVERY.total_seconds() / 86400:g}.")
    overlap_minutes: float = Field(
        default=sync_state.DEFAULT_OVERLAP.total_seconds() / 60, ge=1,
        description="How far before the watermark (the newest change the last complete read saw, on the API's "
                    "clock) an incremental read starts: changes committed late or stamped by a lagging API server. "
                    f"Default: {sync_state.DEFAULT_OVERLAP.total_seconds() / 60:g}.")


class MessagesSyncConfig(ReconcileConfig):
    full_refresh: bool = Field(
        default=False,
        description="Re-read every conversation's messages, not only those whose markers moved (one call each). "
                    "Default: false.")
    reverify_active_days: int = Field(
        default=messages_sync.DEFAULT_REVERIFY_ACTIVE_DAYS, ge=0,
        description="Also re-read conversations that can still change (reservation upcoming, in stay, or departed "
                    "within active_after_departure_days, not cancelled) so each is read in full at least once per "
                    "this many syncs, whatever its markers say: edits of older messages and scheduled messages that "
                    "are not the preview move no marker. 0 turns it off.")
    reverify_other_days: int = Field(
        default=messages_sync.DEFAULT_REVERIFY_OTHER_DAYS, ge=0,
        description="The same guarantee for every other conversation (departed long ago, or cancelled), which "
                    "rarely changes: read in full at least once per this many syncs. 0 turns it off.")
    active_after_departure_days: int = Field(
        default=messages_sync.DEFAULT_ACTIVE_AFTER_DEPARTURE_DAYS, ge=0,
        description="How many days after its departure a conversation still counts as active (late guest "
                    "messages, post-stay scheduled messages).")
    reverify_days: int | None = Field(
        default=None, ge=0,
        description="When set, replaces the two cycles above with one for every conversation (each read at least "
                    "once per this many syncs); 0 turns re-verification off.")
    max_failed_conversations: int = Field(
        default=messages_sync.DEFAULT_MAX_FAILED_CONVERSATIONS, ge=0,
        description="How many conversations may fail to be read (after retries, a 404, or a short read) with the "
                    "step still green; they keep their old messages and are read again next sync. Default: "
                    f"{messages_sync.DEFAULT_MAX_FAILED_CONVERSATIONS}.")


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


def _run_sync(context: dg.AssetExecutionContext, warehouse: WarehouseResource, sync: Callable[..., SyncOutcome],
              client: HostawayClient, *args: Any, **options: Any) -> dg.MaterializeResult:
    """Run one sync; a :class:`SyncFailure` becomes a failed step carrying its one line and figures."""
    try:
        outcome = sync(client, warehouse.writer, warehouse.engine, *args, on_wait=context.log.info, **options)
    except SyncFailure as failure:
        raise dg.Failure(description=str(failure), metadata=failure.outcome.metadata()) from None
    except SyncLockTimeout as timeout:
        raise dg.Failure(description=str(timeout)) from None
    return _result(context, outcome, table_metadata.live_rows(warehouse.engine, outcome.resource, outcome.account_id))


def _result(context: dg.AssetExecutionContext, outcome: SyncOutcome, live_rows: int) -> dg.MaterializeResult:
    """The sync's figures, Dagster's standard table metadata and what changed (ids), and one readable log line."""
    counts, stats = outcome.counts, outcome.stats
    context.log.info(
        f"{outcome.resource} of account {outcome.account_id}: read {outcome.fetched} (API count "
        f"{outcome.reported_count}) in {stats.calls} calls; {counts.inserted} inserted, {counts.updated} updated, "
        f"{counts.soft_deleted} soft-deleted, {counts.unchanged} unchanged, {counts.stale} older than stored; "
        f"{live_rows} live rows")
    return dg.MaterializeResult(
        metadata={**outcome.metadata(),
                  **table_metadata.materialization_metadata(outcome.resource, live_rows, counts)}
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
        metadata={"table": f"hostaway.{name}", **table_metadata.definition_metadata(name)},
    )


@_asset("listings", "Every listing of the account, reconciled in full; gone upstream -> deleted_at.")
def listings(context: dg.AssetExecutionContext, config: ReconcileConfig, warehouse: WarehouseResource,
             hostaway_api: HostawayApiResource) -> dg.MaterializeResult:
    client = hostaway_api.client_for(_account_id(context, warehouse))
    return _run_sync(context, warehouse, full_sync.sync_listings, client,
                     policy=DeletePolicy(allow_mass_delete=config.allow_mass_delete))


@_asset("reservations", "Every reservation of the account: what changed since the last complete read, and a full "
                        "listing (deletions proved by id) weekly or on demand.")
def reservations(context: dg.AssetExecutionContext, config: ReservationsSyncConfig, warehouse: WarehouseResource,
                 hostaway_api: HostawayApiResource) -> dg.MaterializeResult:
    client = hostaway_api.client_for(_account_id(context, warehouse))
    return _run_sync(context, warehouse, reservations_sync.sync_reservations, client,
                     force_full_listing=config.full_listing,
                     full_listing_every=timedelta(days=config.full_listing_every_days),
                     overlap=timedelta(minutes=config.overlap_minutes),
                     policy=DeletePolicy(allow_mass_delete=config.allow_mass_delete))


@_asset("conversations", "Every guest conversation of the account with its change markers.")
def conversations(context: dg.AssetExecutionContext, config: ReconcileConfig, warehouse: WarehouseResource,
                  hostaway_api: HostawayApiResource) -> dg.MaterializeResult:
    client = hostaway_api.client_for(_account_id(context, warehouse))
    return _run_sync(context, warehouse, full_sync.sync_conversations, client,
                     policy=DeletePolicy(allow_mass_delete=config.allow_mass_delete))


@_asset("messages", "Messages of every conversation whose markers moved since its messages were last read.",
        deps=[conversations])
def messages(context: dg.AssetExecutionContext, config: MessagesSyncConfig, warehouse: WarehouseResource,
             hostaway_api: HostawayApiResource) -> dg.MaterializeResult:
    client = hostaway_api.client_for(_account_id(context, warehouse))
    return _run_sync(context, warehouse, messages_sync.sync_messages, client,
                     config.full_refresh, config.reverify_days,
                     policy=DeletePolicy(allow_mass_delete=config.allow_mass_delete), on_progress=context.log.info,
                     max_failed_conversations=config.max_failed_conversations,
                     reverify=messages_sync.ReverifyPolicy(config.reverify_active_days, config.reverify_other_days,
                                                           config.active_after_departure_days))


HOSTAWAY_ASSETS = [listings, reservations, conversations, messages]
