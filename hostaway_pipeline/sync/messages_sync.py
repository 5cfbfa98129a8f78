"""Message sync for one account: fetch only the conversations whose markers moved.

Hostaway's messages endpoint has no date filter, so the naive sync costs one call per conversation (98%
of a full sync's calls). Every conversation carries markers that move when its messages change:
``messageSentOn``, ``messageReceivedOn``, a latest-message preview (which also covers the newest
scheduled message) and the embedded reservation's status (cancelling a reservation cancels its scheduled
messages, not all of which show in the preview). We remember the markers at which each conversation's
messages were last read in full (``hostaway.conversation_message_sync``) and re-read a conversation only
when they differ, or always with ``full_refresh``. Conversations come from the warehouse (the
``conversations`` asset upstream). Everything is written in one transaction; messages of a re-read
conversation that are gone upstream, and messages of conversations no longer upstream, are soft-deleted.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Engine

from hostaway_pipeline.hostaway.client import HostawayClient
from hostaway_pipeline.storage.entity_writer import EntityWriter, WriteCounts
from hostaway_pipeline.storage.tables import conversation_message_sync, conversations, messages
from hostaway_pipeline.sync.full_sync import preview
from hostaway_pipeline.sync.outcome import SyncOutcome


def conversation_marker(conversation: Mapping[str, Any]) -> str:
    """The fields that move whenever the conversation's message list changes."""
    previews = conversation.get("conversationMessages") or []
    latest = previews[0] if previews and isinstance(previews[0], dict) else {}
    reservation = conversation.get("Reservation") if isinstance(conversation.get("Reservation"), dict) else {}
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


def sync_messages(client: HostawayClient, writer: EntityWriter, engine: Engine,
                  full_refresh: bool = False) -> SyncOutcome:
    account_id = client.account_id
    conversation_table = conversations.table
    with engine.connect() as connection:
        live = connection.execute(
            sa.select(conversation_table.c.id, conversation_table.c.raw).where(
                conversation_table.c.account_id == account_id, conversation_table.c.deleted_at.is_(None)
            )
        ).all()
        stored_markers = dict(
            connection.execute(
                sa.select(conversation_message_sync.c.conversation_id, conversation_message_sync.c.marker).where(
                    conversation_message_sync.c.account_id == account_id
                )
            ).all()
        )
    markers = {row.id: conversation_marker(row.raw) for row in live}
    to_read = sorted(cid for cid, marker in markers.items() if full_refresh or stored_markers.get(cid) != marker)
    fetched = client.messages_for_conversations(to_read)

    counts = WriteCounts()
    all_objects: list[dict] = []
    message_table = messages.table
    with engine.begin() as connection:
        for conversation_id in to_read:
            objects = [{**o, "conversationId": o.get("conversationId") or conversation_id}
                       for o in fetched[conversation_id].objects]
            all_objects.extend(objects)
            counts += writer.write(messages, account_id, objects, connection)
            counts.soft_deleted += writer.mark_missing_deleted(
                messages, account_id, (int(o["id"]) for o in objects), connection,
                within=message_table.c.conversation_id == conversation_id,
            )
        # Messages of conversations that are gone upstream go with them.
        counts.soft_deleted += writer.mark_missing_deleted(
            messages, account_id, [], connection,
            within=message_table.c.conversation_id.not_in(list(markers) or [-1]),
        )
        if to_read:
            statement = pg_insert(conversation_message_sync).values(
                [{"account_id": account_id, "conversation_id": cid, "marker": markers[cid]} for cid in to_read]
            )
            connection.execute(statement.on_conflict_do_update(
                index_elements=[conversation_message_sync.c.account_id, conversation_message_sync.c.conversation_id],
                set_={"marker": statement.excluded.marker, "messages_synced_at": sa.func.now()},
            ))
        connection.execute(sa.delete(conversation_message_sync).where(
            conversation_message_sync.c.account_id == account_id,
            conversation_message_sync.c.conversation_id.not_in(list(markers) or [-1]),
        ))
    reported = sum(fetched[cid].reported_count or 0 for cid in to_read)
    return SyncOutcome(
        "messages", account_id, len(all_objects), reported, counts, client.stats, preview("messages", all_objects),
        extra={"conversations_live": len(markers), "conversations_read": len(to_read),
               "conversations_skipped_unchanged": len(markers) - len(to_read)},
    )
