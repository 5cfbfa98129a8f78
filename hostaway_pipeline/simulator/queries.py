"""What each ``/v1`` read endpoint returns: parameter parsing, filters, ordering, paging and envelopes.

Pure functions over an ``AccountState``; the caller holds the store lock while they run. A list endpoint
answers a ``ServedPage``: the envelope plus where the page sits in the whole ordered list, which is what
a ``page_drift`` fault needs to pick the rows it changes.

``afterId`` on reservations is served under one of three readings (``AFTER_ID_READINGS``):

- ``keyset`` (the documented one): the rows that follow the cursor row in the request's sort order
  (default ``updatedOn DESC, id DESC``; ties broken by id in the sort's direction). The cursor row is
  placed by its values *now*, so a cursor row updated since it was served continues the walk from its
  new place. ``offset`` is ignored.
- ``id_order``: ``id > afterId`` in ascending id order whatever ``sortOrder`` says; ``offset`` ignored.
- ``ignored``: an old server: ``afterId`` has no effect, ``offset`` pages in the requested order.

An ``afterId`` that is 0 or matches no row of the filtered set gets what ``after_id_unknown`` says
(``AFTER_ID_UNKNOWN``: an empty page with the true count, the first page, or a 400). With a cursor,
``count`` is the filtered total or, under ``count_with_cursor="remaining"``, the rows from this page on.

``latestActivityStart``/``End`` on reservations are read under one of ``ACTIVITY_FILTER_READINGS``:
``date_time`` (a date-time or a date), ``date_only`` (a date-time answers 400) or ``date_part`` (only the
date of a date-time is read: a start bound begins at that day's 00:00:00).
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

AFTER_ID_READINGS = ("keyset", "id_order", "ignored")
ACTIVITY_FILTER_READINGS = ("date_time", "date_only", "date_part")
AFTER_ID_UNKNOWN = ("empty", "first_page", "error")
COUNT_WITH_CURSOR = ("total", "remaining")

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


def _timestamp_bound(params: Params, name: str, *, is_end: bool, reading: str = "date_time") -> str | None:
    """A ``latestActivity*`` bound under one of ``ACTIVITY_FILTER_READINGS`` (see the module docstring)."""
    raw = params.get(name)
    if not raw:
        return None
    text = raw.strip()
    if reading == "date_only" and len(text) > 10:
        raise ApiError(400, f"Parameter '{name}' must be 'YYYY-MM-DD', got '{raw}'")
    if reading == "date_part":
        text = text[:10]
    try:
        return parse_filter_bound(text, is_end=is_end)
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


def _latest_activity_filter(params: Params, rows: RowFilter, reading: str = "date_time") -> None:
    rows.between(
        "latestActivityOn",
        _timestamp_bound(params, "latestActivityStart", is_end=False, reading=reading),
        _timestamp_bound(params, "latestActivityEnd", is_end=True, reading=reading),
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


# ---- served pages ------------------------------------------------------------------------------------
@dataclass
class ServedPage:
    """A list page as served, and where it sits in the whole list in the order the walk follows.

    ``ordered_ids[start:end]`` are the ids on the page; ``conversation_id`` is set for messages pages.
    """

    envelope: JsonObject
    ordered_ids: list[int]
    start: int
    end: int
    conversation_id: int | None = None

    @property
    def page_ids(self) -> list[int]:
        return self.ordered_ids[self.start : self.end]


def _offset_page(
    ordered: list[JsonObject], limit: int, offset: int, *, paged: bool = False
) -> tuple[list[JsonObject], JsonObject, int, int]:
    """(page rows, envelope with the true count, index of the first row served, index after the last)."""
    start = min(offset, len(ordered))
    page = ordered[start : start + limit]
    envelope = (paged_envelope if paged else plain_envelope)(page, len(ordered), limit, offset)
    return page, envelope, start, start + len(page)


# ---- listings ------------------------------------------------------------------------------------------
_LISTING_SORTS = {
    "latestActivity": ("latestActivityOn", False),
    "latestActivityDesc": ("latestActivityOn", True),
}


def listings_page(state: AccountState, params: Params) -> ServedPage:
    limit, offset = paging(params)
    rows = RowFilter()
    _latest_activity_filter(params, rows)
    ordered = rows.apply(state.active_listings())  # id ascending
    sort_order = params.get("sortOrder")
    if sort_order:
        if sort_order not in _LISTING_SORTS:
            raise ApiError(400, f"Unknown sortOrder '{sort_order}' for listings")
        ordered = _sort(ordered, *_LISTING_SORTS[sort_order])
    _, envelope, start, end = _offset_page(ordered, limit, offset)
    return ServedPage(envelope, [row["id"] for row in ordered], start, end)


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


def _reservation_order(state: AccountState, rows: list[JsonObject], sort_order: str | None) -> list[JsonObject]:
    """The rows in the requested order (default ``updatedOn DESC, id DESC``); 400 for an unknown order."""
    if not sort_order:
        return _sort(rows, "updatedOn", descending=True)
    if sort_order not in _RESERVATION_SORTS:
        raise ApiError(400, f"Unknown sortOrder '{sort_order}' for reservations")
    key, descending = _RESERVATION_SORTS[sort_order]
    if key != "_lastMessageReceived":
        return _sort(rows, key, descending)
    ordered = _sort([{**row, key: _last_received(state, row["id"])} for row in rows], key, descending)
    return [state.reservations[row["id"]] for row in ordered]


def reservations_page(
    state: AccountState,
    params: Params,
    *,
    after_id_reading: str = "keyset",
    after_id_unknown: str = "empty",
    count_with_cursor: str = "total",
    activity_filter_reading: str = "date_time",
) -> ServedPage:
    limit, offset = paging(params)
    after_id = int_param(params, "afterId", None, minimum=0)
    rows = RowFilter()
    _latest_activity_filter(params, rows, activity_filter_reading)
    rows.between(
        "arrivalDate", _date_bound(params, "arrivalStartDate"), _date_bound(params, "arrivalEndDate")
    )
    rows.between(
        "departureDate", _date_bound(params, "departureStartDate"), _date_bound(params, "departureEndDate")
    )
    rows.equals("listingMapId", int_param(params, "listingId"))
    rows.equals("channelId", int_param(params, "channelId"))
    matching = rows.apply(list(state.reservations.values()))
    ordered = _reservation_order(state, matching, params.get("sortOrder"))
    if after_id is None or after_id_reading == "ignored":
        _, envelope, start, end = _offset_page(ordered, limit, offset)
        return ServedPage(envelope, [row["id"] for row in ordered], start, end)

    total = len(ordered)
    if not any(row["id"] == after_id for row in ordered):
        if after_id_unknown == "error":
            raise ApiError(400, f"Invalid afterId {after_id}: no such reservation")
        if after_id_unknown == "first_page":  # as if no afterId was sent (offset still ignored)
            _, envelope, start, end = _offset_page(ordered, limit, 0)
            return ServedPage(envelope, [row["id"] for row in ordered], start, end)
        # "empty": nothing after a cursor the server cannot place, but the true count.
        return ServedPage(plain_envelope([], total, limit, 0), [row["id"] for row in ordered], total, total)
    if after_id_reading == "id_order":
        ordered = sorted(matching, key=lambda row: row["id"])
    ordered_ids = [row["id"] for row in ordered]
    start = ordered_ids.index(after_id) + 1
    page = ordered[start : start + limit]
    count = total - start if count_with_cursor == "remaining" else total
    return ServedPage(plain_envelope(page, count, limit, 0), ordered_ids, start, start + len(page))


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
def conversations_page(state: AccountState, params: Params) -> ServedPage:
    limit, offset = paging(params)
    reservation_id = int_param(params, "reservationId")
    conversations: list[Any] = list(state.conversations.values())
    if reservation_id is not None:
        conversations = [c for c in conversations if c["reservationId"] == reservation_id]
    # Newest outgoing activity first; an incoming message does not move a conversation.
    ordered = sorted(conversations, key=lambda c: (c["messageSentOn"], c["id"]), reverse=True)
    page, envelope, start, end = _offset_page(ordered, limit, offset, paged=True)
    envelope["result"] = [state.compose_conversation(c["id"]) for c in page]
    return ServedPage(envelope, [c["id"] for c in ordered], start, end)


def _conversation_or_404(state: AccountState, conversation_id: int) -> None:
    if conversation_id not in state.conversations:
        raise ApiError(404, f"Conversation {conversation_id} not found")


def conversation_by_id(state: AccountState, conversation_id: int) -> JsonObject:
    _conversation_or_404(state, conversation_id)
    return {"status": "success", "result": state.compose_conversation(conversation_id)}


def messages_page(state: AccountState, conversation_id: int, params: Params) -> ServedPage:
    _conversation_or_404(state, conversation_id)
    limit, offset = paging(params)
    include_scheduled = bool_param(params, "includeScheduledMessages")
    messages = state.messages_of(conversation_id)
    if not include_scheduled:
        messages = [m for m in messages if m["status"] == "sent"]
    ordered = sorted(messages, key=lambda m: (m["date"], m["id"]), reverse=True)
    _, envelope, start, end = _offset_page(ordered, limit, offset, paged=True)
    return ServedPage(envelope, [m["id"] for m in ordered], start, end, conversation_id=conversation_id)


def message_by_id(state: AccountState, conversation_id: int, message_id: int) -> JsonObject:
    _conversation_or_404(state, conversation_id)
    message = state.messages.get(message_id)
    if message is None or message["conversationId"] != conversation_id:
        raise ApiError(404, f"Message {message_id} not found in conversation {conversation_id}")
    return {"status": "success", "result": message}
