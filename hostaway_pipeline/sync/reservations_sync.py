"""Reservations sync for one account: incremental between full listings, independent of Dagster.

The first sync of an account is a full listing (``full_sync``: every reservation read, rows missing
from it proved gone by id and soft-deleted), and so is every sync once ``full_listing_every`` (a week by
default) has passed since the last complete one, or when the caller forces it. In between, a sync reads
only what changed since the watermark minus the overlap (see ``sync_state`` for both rules, and
``HostawayClient.reservations_changed_since`` for the two reads and their proof) and upserts it through
the writer with the reconciliation version rule. An incremental read deletes nothing: deletions are only
ever proved by a full listing.

Proof and fallbacks, all under the (account, resource) sync lock:

* an incremental read that ends short of a ``count`` writes what it read, records nothing (the watermark
  stays) and raises :class:`IncompleteRead`;
* a read that cannot bound what changed (more than a page of updates) becomes a full listing;
* after a complete incremental read the account must hold as many live reservations as the API counts;
  if not (a reservation deleted upstream, or one created without a stamp that moves), nothing of the
  incremental read is kept and a full listing runs instead, which proves what is gone.

Otherwise the rows and the advanced watermark commit in one transaction.

Which changes move ``latestActivityOn`` is undocumented: edits that move only ``updatedOn`` are caught by
the head of the ``updatedOn DESC`` list; a change that moves neither stamp is caught by the weekly full
listing (and by webhooks where they are on).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from hostaway_pipeline.hostaway.client import HostawayClient, TooManyChanges
from hostaway_pipeline.storage.entity_writer import EntityWriter, WriteCounts
from hostaway_pipeline.storage.sync_locks import DEFAULT_LOCK_WAIT_SECONDS, sync_lock
from hostaway_pipeline.storage.tables import reservations
from hostaway_pipeline.sync import full_sync, sync_state
from hostaway_pipeline.sync.deletions import DeletePolicy
from hostaway_pipeline.sync.failures import IncompleteRead
from hostaway_pipeline.sync.outcome import SyncOutcome
from hostaway_pipeline.sync.sync_state import DEFAULT_OVERLAP, SyncState

RESOURCE = "reservations"
DEFAULT_FULL_LISTING_EVERY = timedelta(days=7)


def full_listing_reason(state: SyncState | None, now: datetime, force: bool,
                        every: timedelta) -> str | None:
    """Why this sync must list every reservation, or None when an incremental read will do."""
    if force:
        return "a full listing was asked for"
    if state is None or state.watermark is None:
        return "no complete read of this account's reservations is recorded yet"
    if state.last_full_read_at is None:
        return "no complete full listing is recorded yet"
    age = now - state.last_full_read_at
    if age >= every:
        return f"the last full listing began {_duration(age)} ago (one is due every {_duration(every)})"
    return None


def _duration(span: timedelta) -> str:
    hours = span.total_seconds() / 3600
    return f"{hours / 24:.1f} days" if hours >= 48 else f"{hours:.1f} h"


def sync_reservations(client: HostawayClient, writer: EntityWriter, engine: Engine, *,
                      force_full_listing: bool = False,
                      full_listing_every: timedelta = DEFAULT_FULL_LISTING_EVERY,
                      overlap: timedelta = DEFAULT_OVERLAP, policy: DeletePolicy | None = None,
                      lock_wait_seconds: float = DEFAULT_LOCK_WAIT_SECONDS,
                      on_wait: Callable[[str], None] | None = None) -> SyncOutcome:
    """Sync the account's reservations, incrementally when the cadence allows (see the module docstring)."""
    account_id = client.account_id
    with sync_lock(engine, account_id, RESOURCE, lock_wait_seconds, on_wait):
        state = sync_state.load(engine, account_id, RESOURCE)
        reason = full_listing_reason(state, writer.database_now(), force_full_listing, full_listing_every)
        if reason is None:
            assert state is not None
            try:
                incremental = _sync_incrementally(client, writer, engine, state, overlap)
            except TooManyChanges as too_many:
                reason = f"{too_many}; listed in full instead"
            else:
                if isinstance(incremental, SyncOutcome):
                    return incremental
                reason = incremental
        return full_sync.reconcile_resource(
            RESOURCE, client, writer, engine, lambda c: c.reservations(), policy,
            watermark_of=sync_state.watermark_of, locked=True, notes=[f"full listing: {reason}"])


def _sync_incrementally(client: HostawayClient, writer: EntityWriter, engine: Engine, state: SyncState,
                        overlap: timedelta) -> SyncOutcome | str:
    """The incremental read and its write; a string says why a full listing must run instead."""
    account_id = client.account_id
    since = state.window_start(overlap)
    assert since is not None
    read_began = writer.database_now()
    changes = client.reservations_changed_since(since)
    read_ids = changes.ids
    extra: dict[str, Any] = {"read_complete": changes.complete, "read_strategy": changes.strategy,
                             "read_kind": "incremental", "read_window_start": since,
                             "read_window_count": changes.window_count, "read_notes": "; ".join(changes.notes),
                             **state.metadata()}

    def outcome(counts: WriteCounts) -> SyncOutcome:
        return SyncOutcome(RESOURCE, account_id, len(read_ids), changes.total_count, counts, client.stats,
                           full_sync.preview(RESOURCE, changes.objects), extra=extra)

    if not changes.complete:
        counts = writer.write(reservations, account_id, changes.objects, read_began=read_began)
        which, held, counted = changes.short_read or ("window", len(read_ids), changes.window_count)
        scope = (f"in the window of changes since {since}" if which == "window"
                 else f"on the head page, checking for changes since {since}")
        raise IncompleteRead(
            f"account {account_id} reservations: read {held} of the {counted} objects the API counted {scope}, so "
            "the incremental read is incomplete; wrote what was read, deleted nothing, the watermark stays at "
            f"{state.window_start(timedelta(0))}", outcome(counts))

    table = reservations.table
    with engine.connect() as connection:
        transaction = connection.begin()
        counts = writer.write(reservations, account_id, changes.objects, connection, read_began=read_began)
        live = connection.execute(sa.select(sa.func.count()).select_from(table).where(
            table.c.account_id == account_id, table.c.deleted_at.is_(None))).scalar_one()
        if changes.total_count is not None and live != changes.total_count:
            transaction.rollback()
            return (f"after the incremental read since {since} the account would hold {live} live reservations "
                    f"but the API counts {changes.total_count}")
        recorded = sync_state.record_read(
            connection, account_id, RESOURCE, kind="incremental", read_began=read_began, objects_read=len(read_ids),
            api_count=changes.total_count,
            watermark=sync_state.watermark_of([*changes.objects, *filter(None, [changes.newest_head])]))
        transaction.commit()
    extra.update(recorded.metadata())
    return outcome(counts)
