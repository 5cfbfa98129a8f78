"""What a ``page_drift`` fault does to an account right after a list page was served.

Rows change upstream between two page requests the way Hostaway would change them: updated (so they
move, or not, in that endpoint's order), created or deleted. Which rows is decided from the page just
served (see ``faults`` for the targets); the changes go through the same store operations as the admin
mutations, so ground truth always reflects them. Caller holds the store lock.
"""

from __future__ import annotations

from typing import Any

from hostaway_pipeline.simulator.mutations import (
    create_booking,
    receive_guest_message,
    send_host_message,
    touch_reservation,
)
from hostaway_pipeline.simulator.queries import ServedPage
from hostaway_pipeline.simulator.simtime import format_timestamp
from hostaway_pipeline.simulator.store import AccountState

DriftResult = dict[str, Any]


def pick_rows(served: ServedPage, target: str, rows: int) -> list[int]:
    """The ids a ``target`` designates, nearest to the page first."""
    ids = served.ordered_ids
    if target == "unserved":
        return ids[served.end : served.end + rows]
    if target == "served":
        return (served.page_ids + ids[: served.start][::-1])[:rows]
    if target == "cursor":
        return [ids[served.end - 1]] if served.end > served.start else []
    raise ValueError(f"unknown page_drift target {target!r}")


def apply_page_drift(
    state: AccountState, endpoint: str, served: ServedPage, action: str, target: str | None, rows: int
) -> DriftResult:
    """Apply ``action`` upstream; returns what changed: ``ids`` of ``endpoint`` rows plus ``related`` ids."""
    related: dict[str, list[int]] = {}
    if action == "create":
        ids = [_create(state, endpoint, served, related) for _ in range(rows)]
    else:
        assert target is not None, "update/delete drift needs a target"
        ids = pick_rows(served, target, rows)
        change = _update if action == "update" else _delete
        for row_id in ids:
            change(state, endpoint, row_id, related)
    return {"endpoint": endpoint, "action": action, "target": target, "ids": ids, "related": related}


def _note(related: dict[str, list[int]], kind: str, ids: list[int]) -> None:
    if ids:
        related.setdefault(kind, []).extend(ids)


def _update(state: AccountState, endpoint: str, row_id: int, related: dict[str, list[int]]) -> None:
    if endpoint == "reservations":
        touch_reservation(state, row_id)
    elif endpoint == "conversations":
        _note(related, "messages", [send_host_message(state, row_id)["id"]])
    elif endpoint == "listings":
        stamp = format_timestamp(state.next_stamp())
        state.listings[row_id] = {**state.listings[row_id], "latestActivityOn": stamp}
    elif endpoint == "messages":
        message = state.messages[row_id]
        stamp = format_timestamp(state.next_stamp())
        state.replace_message(row_id, {"body": f"{message['body'] or ''} (edited)", "updatedOn": stamp})
        state.refresh_conversation(message["conversationId"])
    else:
        raise ValueError(f"page_drift does not apply to {endpoint!r}")


def _create(state: AccountState, endpoint: str, served: ServedPage, related: dict[str, list[int]]) -> int:
    if endpoint in ("reservations", "conversations"):
        booking = create_booking(state)
        if booking.new_listing_id is not None:
            _note(related, "listings", [booking.new_listing_id])
        if endpoint == "reservations":
            _note(related, "conversations", [booking.conversation_id])
        else:
            _note(related, "reservations", [booking.reservation_id])
        _note(related, "messages", [booking.message_id])
        return booking.reservation_id if endpoint == "reservations" else booking.conversation_id
    if endpoint == "listings":
        listing = state.factory.new_listing(state.next_stamp())
        state.add_listing(listing)
        listing_id: int = listing["id"]
        return listing_id
    if endpoint == "messages":
        assert served.conversation_id is not None, "a messages page knows its conversation"
        message_id: int = receive_guest_message(state, served.conversation_id)["id"]
        return message_id
    raise ValueError(f"page_drift does not apply to {endpoint!r}")


def _delete(state: AccountState, endpoint: str, row_id: int, related: dict[str, list[int]]) -> None:
    if endpoint == "reservations":
        conversation_ids, message_ids = state.delete_reservation(row_id)
        _note(related, "conversations", conversation_ids)
        _note(related, "messages", message_ids)
    elif endpoint == "conversations":
        _note(related, "messages", state.delete_conversation(row_id))
    elif endpoint == "listings":
        state.next_stamp()
        state.deleted_listing_ids.add(row_id)
    elif endpoint == "messages":
        conversation_id = state.messages[row_id]["conversationId"]
        state.delete_message(row_id)
        state.refresh_conversation(conversation_id)
    else:
        raise ValueError(f"page_drift does not apply to {endpoint!r}")
