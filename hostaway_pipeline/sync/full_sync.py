"""Full reconciliation of one account's listings, reservations and conversations, independent of Dagster.

Each function holds the (account, resource) sync lock, reads everything the API has for the resource
(deduplicated, and judged complete or not, see the client), then:

* an incomplete read (fewer distinct objects than the API's ``count``) writes what it read, deletes
  nothing and raises :class:`IncompleteRead`, one line naming account, resource, objects read and count;
* a complete read proves each stored row it lacks gone by id (see ``deletions``), and in ONE
  transaction writes what it read plus the candidates still alive and soft-deletes the rows proved
  gone, unless that passes the mass-delete guard: then it writes, deletes nothing and raises
  :class:`MassDeleteRefused`;
* only a complete read that deleted what it proved gone records itself in ``hostaway.sync_state``
  (``last_full_read_at``, counts, and for reservations the watermark incremental reads start from), in
  that same transaction: a state row never vouches for rows that were not written.

Writes are authoritative reconciliation writes (``read_began``): they replace stored rows except those
another writer touched after this read began (see the entity writer).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine

from hostaway_pipeline.hostaway.client import FetchResult, HostawayClient
from hostaway_pipeline.storage.entity_writer import EntityWriter, WriteCounts
from hostaway_pipeline.storage.sync_locks import DEFAULT_LOCK_WAIT_SECONDS, sync_lock
from hostaway_pipeline.storage.tables import ENTITY_TABLES
from hostaway_pipeline.sync import sync_state
from hostaway_pipeline.sync.deletions import DeletePolicy, prove_deletions
from hostaway_pipeline.sync.failures import IncompleteRead, MassDeleteRefused
from hostaway_pipeline.sync.outcome import SyncOutcome

PREVIEW_KEYS: dict[str, tuple[str, ...]] = {
    "listings": ("id", "name", "city", "latestActivityOn"),
    "reservations": ("id", "listingMapId", "status", "arrivalDate", "departureDate", "updatedOn"),
    "conversations": ("id", "reservationId", "messageSentOn", "messageReceivedOn"),
    "messages": ("id", "conversationId", "isIncoming", "status", "date"),
}


def preview(resource: str, objects: list[dict], limit: int = 5) -> list[dict[str, Any]]:
    return [{key: source.get(key) for key in PREVIEW_KEYS[resource]} for source in objects[:limit]
            if isinstance(source, dict)]


def mass_delete_message(account_id: int, resource: str, allowed: int | None, proved_gone: int, candidates: int,
                        live_rows: int) -> str:
    return (f"account {account_id} {resource}: refusing to soft-delete more than {allowed} of {live_rows} "
            f"live rows ({proved_gone} proved gone so far, of {candidates} missing from the read); "
            "deleted nothing. If upstream really lost them, run again with allow_mass_delete "
            "(hostaway-pipeline sync --allow-mass-delete)")


def reconcile_resource(
    resource: str, client: HostawayClient, writer: EntityWriter, engine: Engine,
    fetch: Callable[[HostawayClient], FetchResult], policy: DeletePolicy | None = None,
    lock_wait_seconds: float = DEFAULT_LOCK_WAIT_SECONDS, on_wait: Callable[[str], None] | None = None,
    watermark_of: Callable[[Iterable[Any]], datetime | None] | None = None, locked: bool = False,
    notes: Iterable[str] = (),
) -> SyncOutcome:
    """Read the whole resource and make the account's rows equal to it (see the module docstring).

    ``watermark_of`` gives the watermark a complete read proves (resources read incrementally);
    ``locked`` says the caller already holds the (account, resource) sync lock; ``notes`` lead the read's.
    """
    def run() -> SyncOutcome:
        return _reconcile_locked(resource, client, writer, engine, fetch, policy or DeletePolicy(), watermark_of,
                                 list(notes))

    if locked:
        return run()
    with sync_lock(engine, client.account_id, resource, lock_wait_seconds, on_wait):
        return run()


def _reconcile_locked(resource: str, client: HostawayClient, writer: EntityWriter, engine: Engine,
                      fetch: Callable[[HostawayClient], FetchResult], policy: DeletePolicy,
                      watermark_of: Callable[[Iterable[Any]], datetime | None] | None,
                      notes: list[str]) -> SyncOutcome:
    account_id = client.account_id
    entity = ENTITY_TABLES[resource]
    read_began = writer.database_now()
    result = fetch(client)
    read_ids = result.ids
    extra: dict[str, Any] = {"read_complete": result.complete, "read_strategy": result.strategy,
                             "read_kind": "full", "read_notes": "; ".join([*notes, *result.notes])}

    def outcome(counts: WriteCounts) -> SyncOutcome:
        return SyncOutcome(resource, account_id, len(read_ids), result.reported_count, counts, client.stats,
                           preview(resource, result.objects), extra=extra)

    if not result.complete:
        counts = writer.write(entity, account_id, result.objects, read_began=read_began)
        raise IncompleteRead(
            f"account {account_id} {resource}: read {len(read_ids)} of the {result.reported_count} objects the "
            "API counted, so the read is incomplete; wrote what was read, deleted nothing", outcome(counts))

    with engine.connect() as connection:
        live_rows = len(writer.live_ids(entity, account_id, connection))
        candidates = writer.live_ids(entity, account_id, connection, unseen_since=read_began) - read_ids
    proof = prove_deletions(candidates, lambda object_id: client.lookup(resource, object_id), live_rows, policy)
    extra.update(proof.metadata())
    with engine.begin() as connection:
        counts = writer.write(entity, account_id, [*result.objects, *proof.alive], connection,
                              read_began=read_began)
        if not proof.refused:
            counts += writer.soft_delete(entity, account_id, proof.gone, connection, unseen_since=read_began)
            state = sync_state.record_read(connection, account_id, resource, kind="full", read_began=read_began,
                                           objects_read=len(read_ids), api_count=result.reported_count,
                                           watermark=watermark_of(result.objects) if watermark_of else None)
            extra.update(state.metadata())
    if proof.refused:
        raise MassDeleteRefused(mass_delete_message(account_id, resource, proof.allowed, len(proof.gone),
                                                   proof.candidates, live_rows), outcome(counts))
    return outcome(counts)


def sync_listings(client: HostawayClient, writer: EntityWriter, engine: Engine, **options: Any) -> SyncOutcome:
    return reconcile_resource("listings", client, writer, engine, lambda c: c.listings(), **options)


def sync_reservations(client: HostawayClient, writer: EntityWriter, engine: Engine, **options: Any) -> SyncOutcome:
    """A full listing of the reservations; it records the watermark later incremental reads start from."""
    options.setdefault("watermark_of", sync_state.watermark_of)
    return reconcile_resource("reservations", client, writer, engine, lambda c: c.reservations(), **options)


def sync_conversations(client: HostawayClient, writer: EntityWriter, engine: Engine, **options: Any) -> SyncOutcome:
    return reconcile_resource("conversations", client, writer, engine, lambda c: c.conversations(), **options)
