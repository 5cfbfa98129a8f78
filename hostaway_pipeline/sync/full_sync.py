"""Full reconciliation of one account's listings, reservations and conversations, independent of Dagster.

Each function reads everything the API has for the resource (complete and deduplicated, see the
client), then in ONE transaction writes it through the bulk writer and soft-deletes rows no longer
upstream (only after a complete read, and never rows a concurrent sync wrote after this read began).
A failure anywhere leaves the previous state: never half a sync.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import Engine

from hostaway_pipeline.hostaway.client import FetchResult, HostawayClient
from hostaway_pipeline.storage.entity_writer import EntityWriter
from hostaway_pipeline.storage.tables import ENTITY_TABLES
from hostaway_pipeline.sync.outcome import SyncOutcome

PREVIEW_KEYS: dict[str, tuple[str, ...]] = {
    "listings": ("id", "name", "city", "latestActivityOn"),
    "reservations": ("id", "listingMapId", "status", "arrivalDate", "departureDate", "updatedOn"),
    "conversations": ("id", "reservationId", "messageSentOn", "messageReceivedOn"),
    "messages": ("id", "conversationId", "isIncoming", "status", "date"),
}


def preview(resource: str, objects: list[dict], limit: int = 5) -> list[dict[str, Any]]:
    return [{key: source.get(key) for key in PREVIEW_KEYS[resource]} for source in objects[:limit]]


def replace_account_rows(
    resource: str, client: HostawayClient, writer: EntityWriter, engine: Engine,
    fetch: Callable[[HostawayClient], FetchResult],
) -> SyncOutcome:
    """Fetch the whole resource, then write it and soft-delete the rest in one transaction.

    Rows are soft-deleted only when the read is complete (as many objects as the API's ``count``), and
    only rows not written since the read began (an overlapping sync of the same account may have).
    """
    read_began = writer.database_now()
    result = fetch(client)
    entity = ENTITY_TABLES[resource]
    with engine.begin() as connection:
        counts = writer.write(entity, client.account_id, result.objects, connection)
        if result.complete:
            counts.soft_deleted = writer.mark_missing_deleted(
                entity, client.account_id, (int(o["id"]) for o in result.objects), connection,
                unseen_since=read_began,
            )
    return SyncOutcome(resource, client.account_id, len(result.objects), result.reported_count, counts,
                       client.stats, preview(resource, result.objects), extra={"read_complete": result.complete})


def sync_listings(client: HostawayClient, writer: EntityWriter, engine: Engine) -> SyncOutcome:
    return replace_account_rows("listings", client, writer, engine, lambda c: c.listings())


def sync_reservations(client: HostawayClient, writer: EntityWriter, engine: Engine) -> SyncOutcome:
    return replace_account_rows("reservations", client, writer, engine, lambda c: c.reservations())


def sync_conversations(client: HostawayClient, writer: EntityWriter, engine: Engine) -> SyncOutcome:
    return replace_account_rows("conversations", client, writer, engine, lambda c: c.conversations())
