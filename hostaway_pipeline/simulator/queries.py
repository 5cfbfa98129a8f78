"""What each ``/v1`` read endpoint returns: parameter parsing, filters, ordering, paging and envelopes.

Pure functions over an ``AccountState``; the caller holds the store lock while they run.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hostaway_pipeline.simulator.data import JsonObject
from hostaway_pipeline.simulator.errors import ApiError
from hostaway_pipeline.simulator.simtime import parse_date, parse_filter_bound
from hostaway_pipeline.simulator.store import AccountState

DEFAULT_LIMIT = 100
MAX_LIMIT = 100

Params = Mapping[str, str]


# ---- parameters ----------------------------------------------------------------------------------------
def int_param(params: Params, name: str, default: int | None = None, minimum: int = 0) -> int | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, f"Parameter '{name}' must be an integer, got '{raw}'") from None
    if value < minimum:
        raise ApiError(400, f"Parameter '{name}' must be at least {minimum}, got {value}")
    return value


def bool_param(params: Params, name: str) -> bool:
    raw = params.get(name, "").strip().lower()
    if raw in ("", "0", "false"):
        return False
    if raw in ("1", "true"):
        return True
    raise ApiError(400, f"Parameter '{name}' must be 0 or 1, got '{raw}'")


def paging(params: Params) -> tuple[int, int]:
    limit = int_param(params, "limit", DEFAULT_LIMIT, minimum=1)
    offset = int_param(params, "offset", 0, minimum=0)
    assert limit is not None and offset is not None
    return min(limit, MAX_LIMIT), offset


def _timestamp_bound(params: Params, name: str, *, is_end: bool) -> str | None:
    raw = params.get(name)
    if not raw:
        return None
    try:
        return parse_filter_bound(raw, is_end=is_end)
    except ValueError:
        raise ApiError(
            400, f"Parameter '{name}' must be 'YYYY-MM-DD HH:MM:SS' or 'YYYY-MM-DD', got '{raw}'"
        ) from None


def _date_bound(params: Params, name: str) -> str | None:
    raw = params.get(name)
    if not raw:
        return None
    try:
        return parse_date(raw.strip()).isoformat()
    except ValueError:
        raise ApiError(400, f"Parameter '{name}' must be 'YYYY-MM-DD', got '{raw}'") from None


@dataclass
class RowFilter:
    """Conjunction of simple predicates built from query parameters."""

    predicates: list[Callable[[JsonObject], bool]] = field(default_factory=list)

    def between(self, key: str, low: str | None, high: str | None) -> None:
        if low is not None:
            self.predicates.append(lambda row: row[key] is not None and row[key] >= low)
        if high is not None:
            self.predicates.append(lambda row: row[key] is not None and row[key] <= high)

    def equals(self, key: str, value: object | None) -> None:
        if value is not None:
            self.predicates.append(lambda row: row[key] == value)

    def apply(self, rows: list[JsonObject]) -> list[JsonObject]:
        return [row for row in rows if all(predicate(row) for predicate in self.predicates)]


def _latest_activity_filter(params: Params, rows: RowFilter) -> None:
    rows.between(
        "latestActivityOn",
        _timestamp_bound(params, "latestActivityStart", is_end=False),
        _timestamp_bound(params, "latestActivityEnd", is_end=True),
    )


def _sort(rows: list[JsonObject], key: str, descending: bool) -> list[JsonObject]:
    # Nulls sort first ascending (like MySQL); ties broken by id in the same direction.
    return sorted(rows, key=lambda row: (row[key] is not None, row[key] or "", row["id"]), reverse=descending)


def plain_envelope(result: list[JsonObject], count: int, limit: int, offset: int) -> JsonObject:
    return {"status": "success", "result": result, "count": count, "limit": limit, "offset": offset}


def paged_envelope(result: list[JsonObject], count: int, limit: int, offset: int) -> JsonObject:
    return {
        "status": "success",
        "result": result,
        "limit": limit,
        "offset": offset,
        "count": count,
        "page": offset // limit + 1,
        "totalPages": math.ceil(count / limit),
    }


# ---- listings ------------------------------------------------------------------------------------------
_LISTING_SORTS = {
    "latestActivity": ("latestActivityOn", False),
    "latestActivityDesc": ("latestActivityOn", True),
}


def listings_page(state: AccountState, params: Params) -> JsonObject:
    limit, offset = paging(params)
    rows = RowFilter()
    _latest_activity_filter(params, rows)
    matching = rows.apply(state.active_listings())
    sort_order = params.get("sortOrder")
    if sort_order:
        if sort_order not in _LISTING_SORTS:
            raise ApiError(400, f"Unknown sortOrder '{sort_order}' for listings")
        matching = _sort(matching, *_LISTING_SORTS[sort_order])
    return plain_envelope(matching[offset : offset + limit], len(matching), limit, offset)


def listing_by_id(state: AccountState, listing_id: int) -> JsonObject:
    if listing_id not in state.listings or listing_id in state.deleted_listing_ids:
        raise ApiError(404, f"Listing {listing_id} not found")
    return {"status": "success", "result": state.listings[listing_id]}


# ---- reservations --------------------------------------------------------------------------------------
_RESERVATION_SORTS = {
    "updatedOn": ("updatedOn", False),
    "updatedOnDesc": ("updatedOn", True),
    "latestActivity": ("latestActivityOn", False),
    "latestActivityDesc": ("latestActivityOn", True),
    "arrivalDate": ("arrivalDate", False),
    "arrivalDateDesc": ("arrivalDate", True),
    "departureDate": ("departureDate", False),
    "departureDateDesc": ("departureDate", True),
    "lastConversationMessageReceived": ("_lastMessageReceived", False),
    "lastConversationMessageReceivedDesc": ("_lastMessageReceived", True),
}


@dataclass
class ReservationPage:
    """A served reservations page plus the rows ordered after it (what ``page_drift`` may move)."""

    envelope: JsonObject
    ids_after_page: list[int]


def reservations_page(
    state: AccountState, params: Params, *, ignore_after_id: bool = False
) -> ReservationPage:
    limit, offset = paging(params)
    after_id = None if ignore_after_id else int_param(params, "afterId", None, minimum=0)
    rows = RowFilter()
    _latest_activity_filter(params, rows)
    rows.between(
        "arrivalDate", _date_bound(params, "arrivalStartDate"), _date_bound(params, "arrivalEndDate")
    )
    rows.between(
        "departureDate", _date_bound(params, "departureStartDate"), _date_bound(params, "departureEndDate")
    )
    rows.equals("listingMapId", int_param(params, "listingId"))
    rows.equals("channelId", int_param(params, "channelId"))
    matching = rows.apply(list(state.reservations.values()))
    count = len(matching)

    if after_id is not None:
        # The drift-proof cursor: id ascending, offset ignored.
        ordered = sorted((row for row in matching if row["id"] > after_id), key=lambda row: row["id"])
        start, offset = 0, 0
    else:
        sort_order = params.get("sortOrder")
        if not sort_order:
            ordered = _sort(matching, "updatedOn", descending=True)
        elif sort_order not in _RESERVATION_SORTS:
            raise ApiError(400, f"Unknown sortOrder '{sort_order}' for reservations")
        else:
            key, descending = _RESERVATION_SORTS[sort_order]
            if key == "_lastMessageReceived":
                ordered = _sort(
                    [{**row, key: _last_received(state, row["id"])} for row in matching], key, descending
                )
                ordered = [state.reservations[row["id"]] for row in ordered]
            else:
                ordered = _sort(matching, key, descending)
        start = offset
    page = ordered[start : start + limit]
    return ReservationPage(
        envelope=plain_envelope(page, count, limit, offset),
        ids_after_page=[row["id"] for row in ordered[start + limit :]],
    )


def _last_received(state: AccountState, reservation_id: int) -> str | None:
    conversation_id = state.conversation_by_reservation.get(reservation_id)
    if conversation_id is None:
        return None
    value: str | None = state.conversations[conversation_id]["messageReceivedOn"]
    return value


def reservation_by_id(state: AccountState, reservation_id: int) -> JsonObject:
    if reservation_id not in state.reservations:
        raise ApiError(404, f"Reservation {reservation_id} not found")
    return {"status": "success", "result": state.reservations[reservation_id]}


# ---- conversations and messages -----------------------------------------------------------------------
def conversations_page(state: AccountState, params: Params) -> JsonObject:
    limit, offset = paging(params)
    reservation_id = int_param(params, "reservationId")
    conversations: list[Any] = list(state.conversations.values())
    if reservation_id is not None:
        conversations = [c for c in conversations if c["reservationId"] == reservation_id]
    # Newest outgoing activity first; an incoming message does not move a conversation.
    ordered = sorted(conversations, key=lambda c: (c["messageSentOn"], c["id"]), reverse=True)
    page = [state.compose_conversation(c["id"]) for c in ordered[offset : offset + limit]]
    return paged_envelope(page, len(ordered), limit, offset)


def _conversation_or_404(state: AccountState, conversation_id: int) -> None:
    if conversation_id not in state.conversations:
        raise ApiError(404, f"Conversation {conversation_id} not found")


def conversation_by_id(state: AccountState, conversation_id: int) -> JsonObject:
    _conversation_or_404(state, conversation_id)
    return {"status": "success", "result": state.compose_conversation(conversation_id)}


def messages_page(state: AccountState, conversation_id: int, params: Params) -> JsonObject:
    _conversation_or_404(state, conversation_id)
    limit, offset = paging(params)
    include_scheduled = bool_param(params, "includeScheduledMessages")
    messages = state.messages_of(conversation_id)
    if not include_scheduled:
        messages = [m for m in messages if m["status"] == "sent"]
    ordered = sorted(messages, key=lambda m: (m["date"], m["id"]), reverse=True)
    return paged_envelope(ordered[offset : offset + limit], len(ordered), limit, offset)


def message_by_id(state: AccountState, conversation_id: int, message_id: int) -> JsonObject:
    _conversation_or_404(state, conversation_id)
    message = state.messages.get(message_id)
    if message is None or message["conversationId"] != conversation_id:
        raise ApiError(404, f"Message {message_id} not found in conversation {conversation_id}")
    return {"status": "success", "result": message}
