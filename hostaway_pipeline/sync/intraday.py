"""The intraday pass for one account: the head of the conversation list, then the moved conversations' messages.

For deployments that want fresher messages than the daily reconciliation gives. With webhooks on,
reservations and incoming guest messages arrive as events; what no webhook brings is host-sent and
scheduled messages. The conversation list is ordered by ``messageSentOn`` descending, so a pass reads it
from the head down to the first page reaching back before the newest ``messageSentOn`` stored, less an
overlap (see ``HostawayClient.conversations_head``), upserts what it read and reads the messages of every
conversation whose markers moved (``messages_sync`` with re-verification off). A quiet account costs one
conversations call; each moved conversation one messages call more.

What each upstream change does to the list and the markers (measured on the stand-in, which serves the
order Hostaway was seen to serve):

==========================================  ============================  ===========================  =========
change                                      place in the list             markers that move            head walk
==========================================  ============================  ===========================  =========
incoming guest message                      stays (not re-ordered)        messageReceivedOn, preview   no
host message sent                           to the head                   messageSentOn, preview       yes
scheduled message created (``awaiting``)    stays                         preview, if it is the newest no
scheduled message sent                      to the head                   messageSentOn, preview       yes
scheduled messages cancelled (with a stay)  stays                         Reservation.status, preview  no
reservation status change / edit            stays                         Reservation.status (if any)  no
new booking (conversation + first message)  at the head                   all (new conversation)       yes
conversation deleted upstream               gone                          -                            no
==========================================  ============================  ===========================  =========

Hence the daily reconciliation keeps reading the whole list: only it sees the changes that move no
conversation (incoming messages without webhooks, new scheduled messages, cancellations and status
changes) and only a whole list proves a deletion. A head walk that cannot prove it saw every conversation
sent to since the boundary (no complete read to start from, a list out of order, more than a few pages of
recent senders) reads the whole list instead and says so in ``read_kind`` / ``read_notes``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from hostaway_pipeline.hostaway.client import HostawayClient
from hostaway_pipeline.storage.entity_writer import EntityWriter
from hostaway_pipeline.storage.source_values import format_timestamp, to_timestamp
from hostaway_pipeline.storage.sync_locks import DEFAULT_LOCK_WAIT_SECONDS, sync_lock
from hostaway_pipeline.storage.tables import conversations
from hostaway_pipeline.sync import full_sync, messages_sync, sync_state
from hostaway_pipeline.sync.deletions import DeletePolicy
from hostaway_pipeline.sync.outcome import SyncOutcome
from hostaway_pipeline.sync.sync_state import DEFAULT_OVERLAP

RESOURCE = "conversations"


def _stored(engine: Engine, account_id: int) -> tuple[dict[int, str], str | None]:
    """Live conversation id -> its marker now, and the newest ``messageSentOn`` stored (API clock)."""
    table = conversations.table
    sent_on = table.c.raw["messageSentOn"].astext
    markers: dict[int, str] = {}
    with engine.connect() as connection:
        for row in connection.execute(sa.select(table.c.id, table.c.raw).where(
                table.c.account_id == account_id, table.c.deleted_at.is_(None))):
            markers[row.id] = messages_sync.conversation_marker(row.raw)
        newest = connection.execute(sa.select(sa.func.max(sent_on)).where(
            table.c.account_id == account_id, table.c.deleted_at.is_(None))).scalar_one()
    return markers, newest


def _boundary(newest_sent: str | None, overlap: timedelta) -> str | None:
    """``newest_sent - overlap`` as the API writes timestamps; None when there is no readable stamp."""
    try:
        newest = to_timestamp(newest_sent) if newest_sent else None
        return format_timestamp(newest - overlap) if newest is not None else None
    except (ValueError, TypeError, OverflowError):
        return None


def sync_conversations_head(client: HostawayClient, writer: EntityWriter, engine: Engine, *,
                            overlap: timedelta = DEFAULT_OVERLAP, policy: DeletePolicy | None = None,
                            lock_wait_seconds: float = DEFAULT_LOCK_WAIT_SECONDS,
                            on_wait: Callable[[str], None] | None = None) -> SyncOutcome:
    """Read the head of the conversation list and upsert it (the whole list when the head cannot be proved).

    Deletes nothing unless it falls back to the whole list, which proves deletions as the daily pass does.
    """
    account_id = client.account_id
    with sync_lock(engine, account_id, RESOURCE, lock_wait_seconds, on_wait):
        state = sync_state.load(engine, account_id, RESOURCE)
        stored, newest_sent = _stored(engine, account_id)
        since = _boundary(newest_sent, overlap)
        if state is None or state.last_full_read_at is None:
            reason = "no complete read of this account's conversations is recorded yet"
        elif since is None:
            reason = "no stored conversation carries a readable messageSentOn to start the head walk from"
        else:
            read_began = writer.database_now()
            head = client.conversations_head(since)
            if head.proved:
                moved = [o for o in head.objects if isinstance(o, dict) and isinstance(o.get("id"), int)
                         and stored.get(o["id"]) != messages_sync.conversation_marker(o)]
                with engine.begin() as connection:
                    counts = writer.write(conversations, account_id, head.objects, connection, read_began=read_began)
                    recorded = sync_state.record_read(
                        connection, account_id, RESOURCE, kind="incremental", read_began=read_began,
                        objects_read=len(head.objects), api_count=head.reported_count, watermark=None)
                extra: dict[str, Any] = {
                    "read_complete": True, "read_kind": "head", "read_strategy": "offset/head",
                    "read_window_start": since, "read_pages": head.pages, "conversations_moved": len(moved),
                    "conversations_moved_ids": ", ".join(str(o["id"]) for o in moved[:20]), "read_notes": "",
                    **recorded.metadata()}
                return SyncOutcome(RESOURCE, account_id, len(head.objects), head.reported_count, counts,
                                   client.stats, full_sync.preview(RESOURCE, moved), extra=extra)
            reason = f"the head walk could not prove it saw every moved conversation: {head.reason}"
        return full_sync.reconcile_resource(RESOURCE, client, writer, engine, lambda c: c.conversations(), policy,
                                            locked=True, notes=[f"whole list: {reason}"])


def sync_intraday(client: HostawayClient, writer: EntityWriter, engine: Engine, *,
                  overlap: timedelta = DEFAULT_OVERLAP, policy: DeletePolicy | None = None,
                  lock_wait_seconds: float = DEFAULT_LOCK_WAIT_SECONDS,
                  on_wait: Callable[[str], None] | None = None,
                  on_progress: Callable[[str], None] | None = None,
                  max_failed_conversations: int = messages_sync.DEFAULT_MAX_FAILED_CONVERSATIONS,
                  ) -> tuple[SyncOutcome, SyncOutcome]:
    """One intraday pass: the conversations head, then the messages of the conversations that moved.

    Raises what the syncs raise (a failed read of a moved conversation's messages fails the pass, after
    writing what was read); a conversations read that fails stops the pass before any message is read.
    """
    conversations_outcome = sync_conversations_head(client, writer, engine, overlap=overlap, policy=policy,
                                                    lock_wait_seconds=lock_wait_seconds, on_wait=on_wait)
    messages_outcome = messages_sync.sync_messages(
        client, writer, engine, reverify=messages_sync.ReverifyPolicy.off(), policy=policy,
        lock_wait_seconds=lock_wait_seconds, on_wait=on_wait, on_progress=on_progress,
        max_failed_conversations=max_failed_conversations)
    return conversations_outcome, messages_outcome
