"""Message sync for one account: fetch only the conversations whose markers moved.

Hostaway's messages endpoint has no date filter, so the naive sync costs one call per conversation (98%
of a full sync's calls). Every conversation carries markers that move when its messages change:
``messageSentOn``, ``messageReceivedOn``, a latest-message preview (which also covers the newest
scheduled message) and the embedded reservation's status (cancelling a reservation cancels its scheduled
messages, not all of which show in the preview). We remember the markers at which each conversation's
messages were last read in full (``hostaway.conversation_message_sync``) and re-read a conversation only
when they differ, or always with ``full_refresh``; plus a rolling slice of the least recently read
conversations (``reverify_days``), which bounds how long a change the markers miss can go unseen.
Conversations come from the warehouse (the ``conversations`` asset upstream). Everything is written in
one transaction; messages of a conversation read in full that are gone upstream, and messages of
conversations no longer upstream, are soft-deleted (never rows an overlapping sync wrote after this
read began). A conversation read incompletely keeps its old marker and is read again next time.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Engine

from hostaway_pipeline.hostaway.client import HostawayClient
from hostaway_pipeline.storage.entity_writer import EntityWriter
from hostaway_pipeline.storage.tables import conversation_message_sync, conversations, messages
from hostaway_pipeline.sync.full_sync import preview
from hostaway_pipeline.sync.outcome import SyncOutcome

# Markers cannot see every change (an older message edited or deleted, a status flip that is not the
# newest): each sync also re-reads the least recently read conversations, so that every conversation
# is read in full at least once per this many daily syncs; about 1/30 of the naive daily cost.
DEFAULT_REVERIFY_DAYS = 30


def conversation_marker(conversation: Mapping[str, Any]) -> str:
    """The fields that move whenever the conversation's message list changes."""
    previews = conversation.get("conversationMessages") or []
    latest = previews[0] if previews and isinstance(previews[0], dict) else {}
    embedded = conversation.get("Reservation")
    reservation = embedded if isinstance(embedded, dict) else {}
    return json.dumps(
        [
            conversation.get("messageSentOn"),
            conversation.get("messageReceivedOn"),
            latest.get("id"),
            latest.get("status"),
            latest.get("updatedOn"),
            reservation.get("status"),
        ],
        separators=(",", ":"),
    )


def reverification_slice(unmoved: Mapping[int, Any], live_conversations: int, reverify_days: int) -> set[int]:
    """The least recently read of the unmoved conversations, enough that a daily sync re-reads every
    conversation at least once per ``reverify_days`` runs (``unmoved`` maps id -> last read time)."""
    if reverify_days <= 0 or not unmoved:
        return set()
    size = math.ceil(live_conversations / reverify_days)
    return set(sorted(unmoved, key=lambda cid: (unmoved[cid], cid))[:size])


def sync_messages(client: HostawayClient, writer: EntityWriter, engine: Engine,
                  full_refresh: bool = False, reverify_days: int = DEFAULT_REVERIFY_DAYS) -> SyncOutcome:
    account_id = client.account_id
    conversation_table, state_table, message_table = conversations.table, conversation_message_sync, messages.table
    with engine.connect() as connection:
        live = connection.execute(
            sa.select(conversation_table.c.id, conversation_table.c.raw).where(
                conversation_table.c.account_id == account_id, conversation_table.c.deleted_at.is_(None)
            )
        ).all()
        state = {row.conversation_id: row for row in connection.execute(
            sa.select(state_table.c.conversation_id, state_table.c.marker, state_table.c.messages_synced_at)
            .where(state_table.c.account_id == account_id)
        )}
    markers = {row.id: conversation_marker(row.raw) for row in live}
    moved = {cid for cid, marker in markers.items() if cid not in state or state[cid].marker != marker}
    if full_refresh:
        reverified: set[int] = set(markers) - moved
    else:
        unmoved = {cid: state[cid].messages_synced_at for cid in markers if cid not in moved}
        reverified = reverification_slice(unmoved, len(markers), reverify_days)
    to_read = sorted(moved | reverified)
    read_began = writer.database_now()
    fetched = client.messages_for_conversations(to_read)
    complete = [cid for cid in to_read if fetched[cid].complete]

    all_objects = [{**o, "conversationId": o.get("conversationId") or cid}
                   for cid in to_read for o in fetched[cid].objects]
    with engine.begin() as connection:
        counts = writer.write(messages, account_id, all_objects, connection)
        # Messages gone from a conversation read in full, and messages of conversations gone upstream.
        counts.soft_deleted = writer.mark_missing_deleted(
            messages, account_id, (int(o["id"]) for o in all_objects), connection,
            within=message_table.c.conversation_id.in_(complete or [-1]), unseen_since=read_began,
        ) + writer.mark_missing_deleted(
            messages, account_id, [], connection,
            within=message_table.c.conversation_id.not_in(list(markers) or [-1]), unseen_since=read_began,
        )
        if complete:  # an incomplete read keeps its old marker, so the next sync reads it again
            statement = pg_insert(state_table).values([
                {"account_id": account_id, "conversation_id": cid, "marker": markers[cid],
                 "api_message_count": fetched[cid].reported_count if fetched[cid].reported_count is not None
                 else len(fetched[cid].objects)}
                for cid in complete
            ])
            connection.execute(statement.on_conflict_do_update(
                index_elements=[state_table.c.account_id, state_table.c.conversation_id],
                set_={"marker": statement.excluded.marker, "api_message_count": statement.excluded.api_message_count,
                      "messages_synced_at": sa.func.now()},
            ))
        connection.execute(sa.delete(state_table).where(
            state_table.c.account_id == account_id, state_table.c.conversation_id.not_in(list(markers) or [-1]),
        ))
    reported = sum(fetched[cid].reported_count or 0 for cid in to_read)
    return SyncOutcome(
        "messages", account_id, len(all_objects), reported, counts, client.stats, preview("messages", all_objects),
        extra={"conversations_live": len(markers), "conversations_read": len(to_read),
               "conversations_moved": len(moved), "conversations_reverified": len(reverified),
               "conversations_skipped_unchanged": len(markers) - len(to_read),
               "conversations_read_incomplete": len(to_read) - len(complete)},
    )
