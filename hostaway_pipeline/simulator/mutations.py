"""Changes to an account the way Hostaway makes them: bookings, edits, cancellations, messages, listings,
edits of older messages and deletions of reservations (with their conversations and messages).

Each change takes a fresh, strictly increasing stamp, bumps ``updatedOn`` / ``latestActivityOn`` (an edit
moves the latter only under the ``every_change`` reading, see ``store``) and the conversation markers,
and reports the ids it touched plus the webhook events it would fire. Choices come from the account's
seeded RNG, so the same sequence of requests on the same seed always touches the same objects.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from hostaway_pipeline.simulator.data import RESERVATION_STATUSES, JsonObject, MessageSpec
from hostaway_pipeline.simulator.simtime import format_date, format_timestamp
from hostaway_pipeline.simulator.store import AccountState

# Applied in this order whatever order the request lists them in, so results stay deterministic.
MUTATION_KINDS = (
    "new_reservations",
    "update_reservations",
    "cancel_reservations",
    "status_changes",
    "incoming_messages",
    "outgoing_messages",
    "scheduled_messages",
    "send_scheduled_messages",
    "edit_messages",
    "delete_reservations",
    "delete_listings",
    "restore_listings",
)
_STATUS_CHANGE_TARGETS = tuple(s for s in RESERVATION_STATUSES if s not in ("cancelled", "unknown"))


@dataclass(frozen=True)
class WebhookEvent:
    """An event Hostaway would deliver for a change: ``reservation.created`` etc. and the object id."""

    event: str
    object_id: int


@dataclass
class MutationResult:
    touched: dict[str, list[int]] = field(default_factory=dict)
    events: list[WebhookEvent] = field(default_factory=list)

    def add(self, kind: str, object_id: int) -> None:
        self.touched.setdefault(kind, []).append(object_id)


def validate_changes(changes: Mapping[str, object]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for kind, value in changes.items():
        if kind not in MUTATION_KINDS:
            raise ValueError(f"unknown mutation {kind!r}; known: {', '.join(MUTATION_KINDS)}")
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"mutation {kind!r} needs a non-negative integer count, got {value!r}")
        counts[kind] = value
    return counts


def apply_mutations(state: AccountState, changes: Mapping[str, object]) -> MutationResult:
    """Apply the requested number of each kind of change; caller holds the store lock."""
    counts = validate_changes(changes)
    result = MutationResult()
    for kind in MUTATION_KINDS:
        count = counts.get(kind, 0)
        if count:
            _APPLIERS[kind](state, count, result)
            result.touched.setdefault(kind, [])
    # A reservation deleted later in the same request takes its events' objects with it: no event for those.
    result.events = [e for e in result.events if e.object_id in (
        state.reservations if e.event.startswith("reservation.") else state.messages)]
    conversations = sorted(
        {
            state.messages[mid]["conversationId"]
            for kind in (
                "incoming_messages",
                "outgoing_messages",
                "scheduled_messages",
                "send_scheduled_messages",
            )
            for mid in result.touched.get(kind, [])
            if mid in state.messages
        }
    )
    if conversations:
        result.touched["touched_conversations"] = conversations
    return result


# ---- single changes, shared by the mutation kinds and the ``page_drift`` fault --------------------------
@dataclass(frozen=True)
class Booking:
    """What one new booking created: a reservation, its conversation and first message (and a listing)."""

    reservation_id: int
    conversation_id: int
    message_id: int
    new_listing_id: int | None


def create_booking(state: AccountState) -> Booking:
    """A new reservation on a live listing with its conversation and the automated first message."""
    factory = state.factory
    stamp = state.next_stamp()
    listings = state.active_listings()
    new_listing_id = None
    if not listings:
        # An empty account that starts taking bookings gets its first listing.
        listing = factory.new_listing(stamp)
        state.add_listing(listing)
        new_listing_id = listing["id"]
    else:
        listing = factory.rng.choice(listings)
    reservation = factory.new_reservation(listing, stamp, stamp, status="new")
    conversation = factory.new_conversation(reservation)
    state.add_reservation_with_conversation(reservation, conversation)
    message = _add_message(
        state,
        conversation["id"],
        incoming=False,
        status="sent",
        moment=stamp,
        inserted_on=stamp,
        automated=True,
    )
    state.refresh_conversation(conversation["id"])
    state.record_activity(reservation["id"], stamp)
    return Booking(reservation["id"], conversation["id"], message["id"], new_listing_id)


def touch_reservation(state: AccountState, reservation_id: int) -> None:
    """An edit with no visible field change: new ``updatedOn`` (and ``latestActivityOn``, per the reading)."""
    stamp = state.next_stamp()
    state.replace_reservation(reservation_id, {"updatedOn": format_timestamp(stamp)})
    state.record_edit(reservation_id, stamp)


def send_host_message(state: AccountState, conversation_id: int) -> JsonObject:
    """The host replies: a sent outgoing message, so the conversation's ``messageSentOn`` moves."""
    stamp = state.next_stamp()
    text = format_timestamp(stamp)
    # Replying means the host has read everything the guest sent.
    for message in state.messages_of(conversation_id):
        if message["isIncoming"] and not message["isSeen"]:
            state.replace_message(message["id"], {"isSeen": 1, "isSeenAt": text, "updatedOn": text})
    message = _add_message(
        state, conversation_id, incoming=False, status="sent", moment=stamp, inserted_on=stamp
    )
    state.refresh_conversation(conversation_id)
    state.record_activity(message["reservationId"], stamp)
    return message


def receive_guest_message(state: AccountState, conversation_id: int) -> JsonObject:
    """The guest writes: an incoming message (markers move, the conversation's place does not)."""
    stamp = state.next_stamp()
    message = _add_message(
        state, conversation_id, incoming=True, status="sent", moment=stamp, inserted_on=stamp
    )
    state.refresh_conversation(conversation_id)
    state.record_activity(message["reservationId"], stamp)
    return message


# ---- helpers ----------------------------------------------------------------------------------------
def _pick(state: AccountState, candidates: list[int], count: int) -> list[int]:
    """``count`` distinct ids from a sorted candidate list (all of them when there are fewer)."""
    if count >= len(candidates):
        return list(candidates)
    return sorted(state.factory.rng.sample(candidates, count))


def _money_value(amount: float) -> int | float:
    """Hostaway sends whole amounts as ints and others as floats with cents."""
    rounded = round(amount, 2)
    return int(rounded) if rounded == int(rounded) else rounded


def _listing_for(state: AccountState, reservation: JsonObject) -> JsonObject:
    return state.listings[reservation["listingMapId"]]


def _add_message(
    state: AccountState,
    conversation_id: int,
    *,
    incoming: bool,
    status: str,
    moment: datetime,
    inserted_on: datetime,
    scheduled: bool = False,
    automated: bool = False,
) -> JsonObject:
    factory = state.factory
    reservation = state.reservations[state.conversations[conversation_id]["reservationId"]]
    listing = _listing_for(state, reservation)
    spec = MessageSpec(
        conversation_id=conversation_id,
        is_incoming=incoming,
        status=status,
        date=moment,
        inserted_on=inserted_on,
        communication_type=factory.communication_type_for(reservation),
        body=factory.message_body(reservation, listing, incoming=incoming, scheduled=scheduled),
        automated=automated,
        is_seen=not incoming,
    )
    message_id = factory.ids.next("message", gap=factory.rng.randint(1, 3))
    message = factory.new_message(spec, message_id, reservation, listing["timeZoneName"])
    state.add_message(message)
    return message


def _conversation_targets(state: AccountState, count: int) -> list[int]:
    """Conversations to write to, preferring live bookings; repeats allowed (a chatty guest)."""
    live = sorted(
        cid
        for cid, c in state.conversations.items()
        if state.reservations[c["reservationId"]]["status"] != "cancelled"
    )
    pool = live or sorted(state.conversations)
    if not pool:
        return []
    return [state.factory.rng.choice(pool) for _ in range(count)]


# ---- appliers -----------------------------------------------------------------------------------------
def _new_reservations(state: AccountState, count: int, result: MutationResult) -> None:
    for _ in range(count):
        booking = create_booking(state)
        if booking.new_listing_id is not None:
            result.add("new_listings", booking.new_listing_id)
        result.add("new_reservations", booking.reservation_id)
        result.add("new_conversations", booking.conversation_id)
        result.events.append(WebhookEvent("reservation.created", booking.reservation_id))


def _modifiable_reservations(state: AccountState) -> list[int]:
    return sorted(rid for rid, r in state.reservations.items() if r["status"] != "cancelled")


def _update_reservations(state: AccountState, count: int, result: MutationResult) -> None:
    rng = state.factory.rng
    for reservation_id in _pick(state, _modifiable_reservations(state), count):
        stamp = state.next_stamp()
        reservation = state.reservations[reservation_id]
        changes: dict[str, object] = {"updatedOn": format_timestamp(stamp)}
        edit = rng.choice(("guests", "extend", "door_code", "note"))
        if edit == "guests":
            adults = (reservation["adults"] or 1) + 1
            changes.update(adults=adults, numberOfGuests=adults + (reservation["children"] or 0))
        elif edit == "extend":
            departure = date.fromisoformat(reservation["departureDate"])
            changes.update(
                previousArrivalDate=reservation["arrivalDate"],
                previousDepartureDate=reservation["departureDate"],
                departureDate=format_date(departure + timedelta(days=1)),
                nights=reservation["nights"] + 1,
                totalPrice=_money_value(float(reservation["totalPrice"]) * 1.15),
            )
        elif edit == "door_code":
            changes["doorCode"] = str(rng.randint(1000, 999999))
        else:
            changes["hostNote"] = rng.choice(
                ("Asked for late check-out ⏰", "Bringing a bike 🚲", "Anniversary trip 💍")
            )
        if reservation["status"] == "new":
            changes["status"] = "modified"
        state.replace_reservation(reservation_id, changes)
        state.record_edit(reservation_id, stamp)
        result.add("update_reservations", reservation_id)
        result.events.append(WebhookEvent("reservation.updated", reservation_id))


def _cancel_reservations(state: AccountState, count: int, result: MutationResult) -> None:
    rng = state.factory.rng
    for reservation_id in _pick(state, _modifiable_reservations(state), count):
        stamp = state.next_stamp()
        text = format_timestamp(stamp)
        state.replace_reservation(
            reservation_id,
            {
                "status": "cancelled",
                "cancellationDate": text,
                "cancelledBy": rng.choice(("guest", "host", "channel")),
                "updatedOn": text,
            },
        )
        conversation_id = state.conversation_by_reservation.get(reservation_id)
        if conversation_id is not None:
            # Hostaway drops the scheduled messages of a cancelled stay.
            for message in state.messages_of(conversation_id):
                if message["status"] == "awaiting":
                    state.replace_message(message["id"], {"status": "cancelled_by_system", "updatedOn": text})
            state.refresh_conversation(conversation_id)
        state.record_edit(reservation_id, stamp)
        result.add("cancel_reservations", reservation_id)
        result.events.append(WebhookEvent("reservation.updated", reservation_id))


def _status_changes(state: AccountState, count: int, result: MutationResult) -> None:
    rng = state.factory.rng
    for reservation_id in _pick(state, _modifiable_reservations(state), count):
        stamp = state.next_stamp()
        current = state.reservations[reservation_id]["status"]
        new_status = rng.choice([s for s in _STATUS_CHANGE_TARGETS if s != current])
        state.replace_reservation(
            reservation_id, {"status": new_status, "updatedOn": format_timestamp(stamp)}
        )
        state.record_edit(reservation_id, stamp)
        result.add("status_changes", reservation_id)
        result.events.append(WebhookEvent("reservation.updated", reservation_id))


def _incoming_messages(state: AccountState, count: int, result: MutationResult) -> None:
    for conversation_id in _conversation_targets(state, count):
        message = receive_guest_message(state, conversation_id)
        result.add("incoming_messages", message["id"])
        result.events.append(WebhookEvent("message.received", message["id"]))


def _outgoing_messages(state: AccountState, count: int, result: MutationResult) -> None:
    for conversation_id in _conversation_targets(state, count):
        result.add("outgoing_messages", send_host_message(state, conversation_id)["id"])


def _scheduled_messages(state: AccountState, count: int, result: MutationResult) -> None:
    rng = state.factory.rng
    for conversation_id in _conversation_targets(state, count):
        stamp = state.next_stamp()
        send_at = stamp + timedelta(days=rng.randint(1, 10), seconds=rng.randint(0, 86_399))
        message = _add_message(
            state,
            conversation_id,
            incoming=False,
            status="awaiting",
            moment=send_at,
            inserted_on=stamp,
            scheduled=True,
            automated=True,
        )
        state.refresh_conversation(conversation_id)
        result.add("scheduled_messages", message["id"])


def _send_scheduled_messages(state: AccountState, count: int, result: MutationResult) -> None:
    rng = state.factory.rng
    awaiting = sorted(mid for mid, m in state.messages.items() if m["status"] == "awaiting")
    for message_id in _pick(state, awaiting, count):
        stamp = state.next_stamp()
        text = format_timestamp(stamp)
        message = state.replace_message(
            message_id,
            {
                "status": "sent",
                "date": text,
                "sentToChannelDate": text,
                "sentToChannelAttemptDate": text,
                "updatedOn": text,
                "channelThreadMessageId": str(rng.randint(10**9, 10**10))
                if state.messages[message_id]["communicationType"] == "channel"
                else None,
            },
        )
        state.refresh_conversation(message["conversationId"])
        state.record_activity(message["reservationId"], stamp)
        result.add("send_scheduled_messages", message_id)


def _delete_listings(state: AccountState, count: int, result: MutationResult) -> None:
    active = [row["id"] for row in state.active_listings()]
    for listing_id in _pick(state, active, count):
        state.next_stamp()
        state.deleted_listing_ids.add(listing_id)
        result.add("delete_listings", listing_id)


def _restore_listings(state: AccountState, count: int, result: MutationResult) -> None:
    for listing_id in _pick(state, sorted(state.deleted_listing_ids), count):
        stamp = state.next_stamp()
        state.deleted_listing_ids.discard(listing_id)
        listing = state.listings[listing_id]
        state.listings[listing_id] = {**listing, "latestActivityOn": format_timestamp(stamp)}
        result.add("restore_listings", listing_id)


def _edit_messages(state: AccountState, count: int, result: MutationResult) -> None:
    """Edit older sent messages (a translation or correction): ``updatedOn`` and the body change, and no
    conversation marker moves unless the message is the preview. What only re-verification catches."""
    previews = set(state.preview_by_conversation.values())
    older = sorted(mid for mid, m in state.messages.items() if m["status"] == "sent" and mid not in previews)
    for message_id in _pick(state, older, count):
        text = format_timestamp(state.next_stamp())
        body = state.messages[message_id]["body"]
        state.replace_message(message_id, {"body": f"{body} (edited)", "updatedOn": text})
        result.add("edit_messages", message_id)


def _delete_reservations(state: AccountState, count: int, result: MutationResult) -> None:
    """Remove reservations upstream with their conversations and messages (no webhook announces it)."""
    for reservation_id in _pick(state, sorted(state.reservations), count):
        state.next_stamp()
        conversation_ids, _ = state.delete_reservation(reservation_id)
        result.add("delete_reservations", reservation_id)
        for conversation_id in conversation_ids:
            result.add("deleted_conversations", conversation_id)


_APPLIERS = {
    "new_reservations": _new_reservations,
    "update_reservations": _update_reservations,
    "cancel_reservations": _cancel_reservations,
    "status_changes": _status_changes,
    "incoming_messages": _incoming_messages,
    "outgoing_messages": _outgoing_messages,
    "scheduled_messages": _scheduled_messages,
    "send_scheduled_messages": _send_scheduled_messages,
    "edit_messages": _edit_messages,
    "delete_reservations": _delete_reservations,
    "delete_listings": _delete_listings,
    "restore_listings": _restore_listings,
}
