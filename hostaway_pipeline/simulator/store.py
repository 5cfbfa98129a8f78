"""Mutable per-account state of the simulated Hostaway: the ground truth every endpoint reads.

Objects are treated as immutable values: a change replaces an object with an updated copy, so a page
being serialised in one thread never sees half of a mutation made in another. Containers are guarded
by ``SimulatorStore.lock``; hold it while selecting rows, not while encoding JSON.
"""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any

from hostaway_pipeline.simulator.data import (
    AccountFactory,
    AccountSize,
    JsonObject,
    generate_account,
    normalize_size,
)
from hostaway_pipeline.simulator.simtime import StampSequence, WorldClock, format_timestamp

# How the embedded ``Reservation`` of a conversation differs from the reservation endpoint's object.
_EMBEDDED_RESERVATION_OVERRIDES: dict[str, Any] = {
    "listingName": "",
    "guestAuthHash": None,
    "guestPortalUrl": None,
    "guestZipCode": None,
    "guestAddress": None,
    "guestWork": None,
    "guestLocale": None,
    "localeForMessaging": None,
    "latestActivityOn": None,
    "cancellationPolicyId": None,
    "hostProxyEmail": None,
    "insuranceStatus": None,
    "customFieldValues": [],
    "reservationFees": [],
    "reservationUnit": [],
    "financeField": [],
}
# Statuses that can be the conversation preview (cancelled scheduled messages never are).
_PREVIEW_STATUSES = frozenset({"sent", "awaiting"})
# Which changes move a reservation's ``latestActivityOn`` (the docs do not say): ``every_change`` (edits,
# status changes and cancellations too: the most literal reading of "latest activity") or
# ``not_on_edits`` (only bookings and sent messages; an edit moves ``updatedOn`` alone).
LATEST_ACTIVITY_READINGS = ("every_change", "not_on_edits")


class AccountState:
    """One Hostaway account: its listings, reservations, conversations, messages and webhooks."""

    def __init__(
        self, account_id: int, size: AccountSize, seed: int, clock: WorldClock, world_epoch: datetime
    ) -> None:
        self.account_id = account_id
        self.size = normalize_size(size)
        factory, generated = generate_account(account_id, seed, self.size, world_epoch)
        self.factory: AccountFactory = factory
        self.stamps = StampSequence(clock, floor=world_epoch)
        self.listings: dict[int, JsonObject] = {row["id"]: row for row in generated.listings}
        self.deleted_listing_ids: set[int] = set()
        # Reservations, conversations and messages are only ever deleted by a ``page_drift`` fault.
        self.deleted_reservation_ids: set[int] = set()
        self.deleted_conversation_ids: set[int] = set()
        self.deleted_message_ids: set[int] = set()
        self.reservations: dict[int, JsonObject] = {row["id"]: row for row in generated.reservations}
        self.conversations: dict[int, JsonObject] = {row["id"]: row for row in generated.conversations}
        self.conversation_inserted_on: dict[int, str] = dict(generated.conversation_inserted_on)
        self.conversation_by_reservation: dict[int, int] = {
            row["reservationId"]: row["id"] for row in generated.conversations
        }
        self.messages: dict[int, JsonObject] = {}
        self.message_ids_by_conversation: dict[int, list[int]] = {cid: [] for cid in self.conversations}
        self.preview_by_conversation: dict[int, int] = {}
        self.webhooks: dict[int, JsonObject] = {}
        self.latest_activity_reading = LATEST_ACTIVITY_READINGS[0]
        for message in generated.messages:
            self._index_message(message)
        for conversation_id in self.conversations:
            self.refresh_conversation(conversation_id)
        self._initial_activity()

    # ---- derived markers ---------------------------------------------------------------------------
    def _initial_activity(self) -> None:
        """latestActivityOn: the last change or sent message of a reservation; of a listing, its bookings'."""
        for conversation_id, conversation in self.conversations.items():
            reservation = self.reservations[conversation["reservationId"]]
            latest_message = max(
                (m["date"] for m in self.messages_of(conversation_id) if m["status"] == "sent"), default=""
            )
            activity = max(reservation["updatedOn"], latest_message)
            if activity != reservation["latestActivityOn"]:
                self.reservations[reservation["id"]] = {**reservation, "latestActivityOn": activity}
        for reservation in self.reservations.values():
            listing = self.listings[reservation["listingMapId"]]
            if reservation["latestActivityOn"] > listing["latestActivityOn"]:
                self.listings[listing["id"]] = {
                    **listing,
                    "latestActivityOn": reservation["latestActivityOn"],
                }

    def _index_message(self, message: JsonObject) -> None:
        self.messages[message["id"]] = message
        self.message_ids_by_conversation.setdefault(message["conversationId"], []).append(message["id"])

    def messages_of(self, conversation_id: int) -> list[JsonObject]:
        return [self.messages[mid] for mid in self.message_ids_by_conversation.get(conversation_id, [])]

    def refresh_conversation(self, conversation_id: int) -> None:
        """Recompute messageSentOn / messageReceivedOn / hasUnreadMessages / preview from the messages."""
        conversation = self.conversations[conversation_id]
        messages = self.messages_of(conversation_id)
        sent_outgoing = [m["date"] for m in messages if m["status"] == "sent" and not m["isIncoming"]]
        incoming = [m for m in messages if m["isIncoming"] and m["status"] == "sent"]
        updated = {
            **conversation,
            "hasUnreadMessages": int(any(not m["isSeen"] for m in incoming)),
            "messageSentOn": max(sent_outgoing, default=self.conversation_inserted_on[conversation_id]),
            "messageReceivedOn": max((m["date"] for m in incoming), default=None),
        }
        self.conversations[conversation_id] = updated
        candidates = [m for m in messages if m["status"] in _PREVIEW_STATUSES]
        if candidates:
            latest = max(candidates, key=lambda m: (m["date"], m["id"]))
            self.preview_by_conversation[conversation_id] = latest["id"]
        elif self.preview_by_conversation.get(conversation_id) not in self.messages:
            self.preview_by_conversation.pop(conversation_id, None)  # its message was deleted

    # ---- changes -----------------------------------------------------------------------------------
    def next_stamp(self) -> datetime:
        return self.stamps.next()

    def replace_reservation(self, reservation_id: int, changes: dict[str, Any]) -> JsonObject:
        updated = {**self.reservations[reservation_id], **changes}
        self.reservations[reservation_id] = updated
        return updated

    def replace_message(self, message_id: int, changes: dict[str, Any]) -> JsonObject:
        updated = {**self.messages[message_id], **changes}
        self.messages[message_id] = updated
        return updated

    def record_activity(self, reservation_id: int, stamp: datetime) -> None:
        """Move a reservation's and its listing's latestActivityOn forward to ``stamp``."""
        text = format_timestamp(stamp)
        reservation = self.reservations[reservation_id]
        if text > reservation["latestActivityOn"]:
            self.replace_reservation(reservation_id, {"latestActivityOn": text})
        listing = self.listings[reservation["listingMapId"]]
        if text > listing["latestActivityOn"]:
            self.listings[listing["id"]] = {**listing, "latestActivityOn": text}

    def record_edit(self, reservation_id: int, stamp: datetime) -> None:
        """An edit of the reservation itself (fields, status, cancellation): its ``latestActivityOn`` moves
        only under the ``every_change`` reading (``LATEST_ACTIVITY_READINGS``); ``updatedOn`` always does."""
        if self.latest_activity_reading == "every_change":
            self.record_activity(reservation_id, stamp)

    def add_listing(self, listing: JsonObject) -> None:
        self.listings[listing["id"]] = listing

    def add_reservation_with_conversation(self, reservation: JsonObject, conversation: JsonObject) -> None:
        self.reservations[reservation["id"]] = reservation
        self.conversations[conversation["id"]] = conversation
        self.conversation_inserted_on[conversation["id"]] = reservation["insertedOn"]
        self.conversation_by_reservation[reservation["id"]] = conversation["id"]
        self.message_ids_by_conversation[conversation["id"]] = []

    def add_message(self, message: JsonObject) -> None:
        self._index_message(message)

    def delete_message(self, message_id: int) -> None:
        """Remove a message upstream; the caller refreshes its conversation's markers."""
        message = self.messages.pop(message_id)
        self.message_ids_by_conversation[message["conversationId"]].remove(message_id)
        self.deleted_message_ids.add(message_id)

    def delete_conversation(self, conversation_id: int) -> list[int]:
        """Remove a conversation and its messages upstream; returns the deleted message ids."""
        message_ids = list(self.message_ids_by_conversation.pop(conversation_id, []))
        for message_id in message_ids:
            del self.messages[message_id]
        self.deleted_message_ids.update(message_ids)
        conversation = self.conversations.pop(conversation_id)
        self.conversation_inserted_on.pop(conversation_id, None)
        self.preview_by_conversation.pop(conversation_id, None)
        if self.conversation_by_reservation.get(conversation["reservationId"]) == conversation_id:
            del self.conversation_by_reservation[conversation["reservationId"]]
        self.deleted_conversation_ids.add(conversation_id)
        return message_ids

    def delete_reservation(self, reservation_id: int) -> tuple[list[int], list[int]]:
        """Remove a reservation with its conversation and messages: (conversation ids, message ids)."""
        del self.reservations[reservation_id]
        self.deleted_reservation_ids.add(reservation_id)
        conversation_id = self.conversation_by_reservation.get(reservation_id)
        if conversation_id is None:
            return [], []
        return [conversation_id], self.delete_conversation(conversation_id)

    # ---- views -------------------------------------------------------------------------------------
    def active_listings(self) -> list[JsonObject]:
        return [row for lid, row in sorted(self.listings.items()) if lid not in self.deleted_listing_ids]

    def embedded_reservation(self, reservation: JsonObject) -> JsonObject:
        embedded = {**reservation, **_EMBEDDED_RESERVATION_OVERRIDES}
        embedded["source"] = reservation["source"] or reservation["channelName"]
        return embedded

    def compose_conversation(self, conversation_id: int) -> JsonObject:
        """A conversation as the API serves it: own fields, a one-message preview, embedded Reservation."""
        conversation = self.conversations[conversation_id]
        preview_id = self.preview_by_conversation.get(conversation_id)
        preview = [self.messages[preview_id]] if preview_id is not None else []
        reservation = self.reservations[conversation["reservationId"]]
        return {
            **conversation,
            "conversationMessages": preview,
            "Reservation": self.embedded_reservation(reservation),
        }

    def truth(self) -> JsonObject:
        return {
            "account_id": self.account_id,
            "listings": self.active_listings(),
            "reservations": [row for _, row in sorted(self.reservations.items())],
            "conversations": [self.compose_conversation(cid) for cid in sorted(self.conversations)],
            "messages": [row for _, row in sorted(self.messages.items())],
            "deleted_listing_ids": sorted(self.deleted_listing_ids),
            "deleted_reservation_ids": sorted(self.deleted_reservation_ids),
            "deleted_conversation_ids": sorted(self.deleted_conversation_ids),
            "deleted_message_ids": sorted(self.deleted_message_ids),
        }

    def summary(self) -> JsonObject:
        return {
            "account_id": self.account_id,
            "size": self.size,
            "listings": len(self.listings) - len(self.deleted_listing_ids),
            "deleted_listings": len(self.deleted_listing_ids),
            "reservations": len(self.reservations),
            "conversations": len(self.conversations),
            "messages": len(self.messages),
            "webhooks": len(self.webhooks),
        }


class SimulatorStore:
    """All accounts of one simulator, behind one lock."""

    def __init__(self, seed: int, clock: WorldClock, world_epoch: datetime) -> None:
        self.seed = seed
        self.clock = clock
        self.world_epoch = world_epoch
        self.lock = threading.RLock()
        self.accounts: dict[int, AccountState] = {}
        self.latest_activity_reading = LATEST_ACTIVITY_READINGS[0]

    def set_latest_activity_reading(self, reading: str) -> None:
        """Which changes move ``latestActivityOn`` from now on, for every account (and those added later)."""
        if reading not in LATEST_ACTIVITY_READINGS:
            raise ValueError(f"latest_activity_reading must be one of {LATEST_ACTIVITY_READINGS}, got {reading!r}")
        with self.lock:
            self.latest_activity_reading = reading
            for state in self.accounts.values():
                state.latest_activity_reading = reading

    def add_account(self, account_id: int, size: AccountSize) -> AccountState:
        if isinstance(account_id, bool) or not isinstance(account_id, int) or account_id <= 0:
            raise ValueError(f"account id must be a positive integer, got {account_id!r}")
        with self.lock:
            if account_id in self.accounts:
                raise ValueError(f"account {account_id} already exists")
        # Generation takes a moment for big accounts: build outside the lock, then publish.
        state = AccountState(account_id, size, self.seed, self.clock, self.world_epoch)
        with self.lock:
            if account_id in self.accounts:
                raise ValueError(f"account {account_id} already exists")
            state.latest_activity_reading = self.latest_activity_reading
            self.accounts[account_id] = state
        return state

    def get(self, account_id: int) -> AccountState | None:
        with self.lock:
            return self.accounts.get(account_id)
