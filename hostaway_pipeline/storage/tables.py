"""Every table of schema ``hostaway``, declared once; Alembic migrations are generated from these.

Entity tables (listings, reservations, conversations, messages) share one shape: primary key
``(account_id, id)``, typed columns analysts filter and join on (each derived from one source field,
declared here with its converter), the whole redacted source object in ``raw``, and bookkeeping columns.
Comments become ``COMMENT ON`` so analysts see meanings in their SQL client.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.schema import SchemaItem
from sqlalchemy.sql.type_api import to_instance

from hostaway_pipeline.storage import source_values as v

SCHEMA = "hostaway"
# Constraint and index names every schema of this project uses (hostaway, hostaway_analytics).
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = sa.MetaData(schema=SCHEMA, naming_convention=NAMING_CONVENTION)

TIMESTAMPTZ = sa.DateTime(timezone=True)


@dataclass(frozen=True)
class SourceColumn:
    """A typed column filled from one top-level field of the Hostaway object."""

    name: str
    source_key: str
    type_: Any
    convert: Callable[[Any], Any]
    comment: str

    def column(self) -> sa.Column:
        return sa.Column(self.name, self.type_,
                         comment=f"{self.comment} (Hostaway `{self.source_key}`; {self.cleaning})")

    @property
    def cleaning(self) -> str:
        """What the writer's normalization step (storage/normalize.py) does to this column's values."""
        type_ = to_instance(self.type_)
        if isinstance(type_, sa.String):
            return "NUL characters removed, lone surrogates replaced by U+FFFD"
        if isinstance(type_, sa.DateTime):
            return "a zoned value converted to UTC; NULL when unreadable, the value stays in raw"
        return "NULL when unreadable or out of range, the value stays in raw"


@dataclass(frozen=True)
class EntityTable:
    """An entity table plus how to fill it from Hostaway objects."""

    table: sa.Table
    source_columns: tuple[SourceColumn, ...]
    # Source-side version columns, compared in order: an incoming object older than the stored one on
    # the first of these that both sides have is never written.
    version_columns: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.table.name


def _bookkeeping_columns() -> list[sa.Column]:
    return [
        sa.Column("raw", JSONB, nullable=False,
                  comment="The whole source object as Hostaway sent it, redacted; in strings and field names NUL "
                          "characters removed and lone surrogates replaced by U+FFFD; NaN, Infinity, integers of "
                          "more than 3000 digits and nesting deeper than 32 levels replaced by null"),
        sa.Column("first_seen_at", TIMESTAMPTZ, nullable=False, server_default=sa.func.now(),
                  comment="When the pipeline first stored this object"),
        sa.Column("synced_at", TIMESTAMPTZ, nullable=False, server_default=sa.func.now(),
                  comment="When the pipeline last saw this object upstream"),
        sa.Column("changed_at", TIMESTAMPTZ, nullable=False, server_default=sa.func.now(),
                  comment="When this row's content last changed (insert, update or undelete)"),
        sa.Column("deleted_at", TIMESTAMPTZ,
                  comment="Set when the object disappeared upstream (soft delete); NULL while it exists"),
    ]


def _entity(name: str, comment: str, source_columns: list[SourceColumn], version_columns: tuple[str, ...],
            *extra: SchemaItem) -> EntityTable:
    table = sa.Table(
        name,
        metadata,
        sa.Column("account_id", sa.BigInteger, primary_key=True, comment="Hostaway account (tenant) id"),
        sa.Column("id", sa.BigInteger, primary_key=True,
                  comment=f"Hostaway {name[:-1]} id; an object without a usable integer id is not stored "
                          "(counted as rows_skipped)"),
        *[column.column() for column in source_columns],
        *_bookkeeping_columns(),
        *extra,
        comment=comment,
    )
    return EntityTable(table, tuple(source_columns), version_columns)


def _c(name: str, key: str, type_: Any, convert: Callable[[Any], Any], comment: str) -> SourceColumn:
    return SourceColumn(name, key, type_, convert, comment)


MONEY = sa.Numeric(14, 2)

listings = _entity(
    "listings",
    "Hostaway listings (properties), one row per account and listing id",
    [
        _c("name", "name", sa.Text, v.to_text, "Listing name"),
        _c("internal_listing_name", "internalListingName", sa.Text, v.to_text, "Internal name"),
        _c("city", "city", sa.Text, v.to_text, "City"),
        _c("country_code", "countryCode", sa.Text, v.to_text, "ISO country code"),
        _c("address", "address", sa.Text, v.to_text, "Full address"),
        _c("lat", "lat", sa.Float, v.to_float, "Latitude"),
        _c("lng", "lng", sa.Float, v.to_float, "Longitude"),
        _c("person_capacity", "personCapacity", sa.Integer, v.to_int, "Maximum guests"),
        _c("bedrooms_number", "bedroomsNumber", sa.Integer, v.to_int, "Bedrooms"),
        _c("bathrooms_number", "bathroomsNumber", sa.Integer, v.to_int, "Bathrooms"),
        _c("price", "price", MONEY, v.to_decimal, "Base nightly price in currency_code"),
        _c("currency_code", "currencyCode", sa.Text, v.to_text, "Currency of prices"),
        _c("time_zone_name", "timeZoneName", sa.Text, v.to_text, "IANA time zone of the property"),
        _c("inserted_on", "insertedOn", TIMESTAMPTZ, v.to_timestamp, "Created in Hostaway"),
        _c("latest_activity_on", "latestActivityOn", TIMESTAMPTZ, v.to_timestamp, "Last activity in Hostaway"),
    ],
    ("latest_activity_on",),
)

reservations = _entity(
    "reservations",
    "Hostaway reservations (bookings, inquiries, cancellations), one row per account and reservation id",
    [
        _c("listing_id", "listingMapId", sa.BigInteger, v.to_int, "Listing booked; joins listings.id"),
        _c("channel_id", "channelId", sa.Integer, v.to_int, "Booking channel id"),
        _c("channel_name", "channelName", sa.Text, v.to_text, "Booking channel, e.g. airbnbOfficial"),
        _c("reservation_code", "reservationId", sa.Text, v.to_text, "Hostaway's reservation code"),
        _c("channel_reservation_id", "channelReservationId", sa.Text, v.to_text, "The channel's own id"),
        _c("status", "status", sa.Text, v.to_text, "new, modified, cancelled, inquiry, ..."),
        _c("guest_name", "guestName", sa.Text, v.to_text, "Guest full name"),
        _c("arrival_date", "arrivalDate", sa.Date, v.to_date, "Check-in date (property local)"),
        _c("departure_date", "departureDate", sa.Date, v.to_date, "Check-out date (property local)"),
        _c("nights", "nights", sa.Integer, v.to_int, "Nights booked"),
        _c("number_of_guests", "numberOfGuests", sa.Integer, v.to_int, "Guests"),
        _c("total_price", "totalPrice", MONEY, v.to_decimal, "Total price in currency"),
        _c("currency", "currency", sa.Text, v.to_text, "Currency of total_price"),
        _c("is_paid", "isPaid", sa.Boolean, v.to_bool, "Paid in full"),
        _c("reservation_date", "reservationDate", TIMESTAMPTZ, v.to_timestamp, "When it was booked"),
        _c("cancellation_date", "cancellationDate", TIMESTAMPTZ, v.to_timestamp, "When it was cancelled"),
        _c("inserted_on", "insertedOn", TIMESTAMPTZ, v.to_timestamp, "Created in Hostaway"),
        _c("updated_on", "updatedOn", TIMESTAMPTZ, v.to_timestamp, "Last updated in Hostaway"),
        _c("latest_activity_on", "latestActivityOn", TIMESTAMPTZ, v.to_timestamp, "Last activity in Hostaway"),
    ],
    ("updated_on", "latest_activity_on"),
    sa.Index(None, "account_id", "listing_id", "arrival_date"),
    sa.Index(None, "account_id", "arrival_date"),
    sa.Index(None, "account_id", "updated_on"),
)

conversations = _entity(
    "conversations",
    "Hostaway guest conversations (one per reservation or inquiry), one row per account and conversation id",
    [
        _c("listing_id", "listingMapId", sa.BigInteger, v.to_int, "Listing; joins listings.id"),
        _c("reservation_id", "reservationId", sa.BigInteger, v.to_int, "Reservation; joins reservations.id"),
        _c("type", "type", sa.Text, v.to_text, "Conversation type"),
        _c("recipient_name", "recipientName", sa.Text, v.to_text, "Guest name"),
        _c("has_unread_messages", "hasUnreadMessages", sa.Boolean, v.to_bool, "Unread incoming messages"),
        _c("message_sent_on", "messageSentOn", TIMESTAMPTZ, v.to_timestamp, "Last message sent to the guest"),
        _c("message_received_on", "messageReceivedOn", TIMESTAMPTZ, v.to_timestamp,
           "Last message received from the guest"),
    ],
    ("message_sent_on", "message_received_on"),
    sa.Index(None, "account_id", "reservation_id"),
)

messages = _entity(
    "messages",
    "Hostaway conversation messages (guest and host, sent and scheduled), one row per account and message id",
    [
        _c("conversation_id", "conversationId", sa.BigInteger, v.to_int, "Conversation; joins conversations.id"),
        _c("reservation_id", "reservationId", sa.BigInteger, v.to_int, "Reservation; joins reservations.id"),
        _c("listing_id", "listingMapId", sa.BigInteger, v.to_int, "Listing; joins listings.id"),
        _c("is_incoming", "isIncoming", sa.Boolean, v.to_bool, "True when the guest wrote it"),
        _c("status", "status", sa.Text, v.to_text, "sent, awaiting (scheduled), failed, ..."),
        _c("communication_type", "communicationType", sa.Text, v.to_text, "channel, email, sms, whatsapp, ..."),
        _c("body", "body", sa.Text, v.to_text, "Message text, unicode as sent"),
        _c("sent_at", "date", TIMESTAMPTZ, v.to_timestamp, "Message time (scheduled time when awaiting)"),
        _c("sent_to_channel_at", "sentToChannelDate", TIMESTAMPTZ, v.to_timestamp, "Delivered to the channel"),
        _c("inserted_on", "insertedOn", TIMESTAMPTZ, v.to_timestamp, "Created in Hostaway"),
        _c("updated_on", "updatedOn", TIMESTAMPTZ, v.to_timestamp, "Last updated in Hostaway"),
    ],
    ("updated_on",),
    sa.Index(None, "account_id", "conversation_id", "sent_at"),
)

ENTITY_TABLES: dict[str, EntityTable] = {
    entity.name: entity for entity in (listings, reservations, conversations, messages)
}

accounts = sa.Table(
    "accounts",
    metadata,
    sa.Column("account_id", sa.BigInteger, primary_key=True, autoincrement=False,
              comment="Hostaway account id (the API client_id)"),
    sa.Column("name", sa.Text, comment="Human-friendly name"),
    sa.Column("client_secret_encrypted", sa.LargeBinary, nullable=False,
              comment="API client secret, Fernet-encrypted with HOSTAWAY_SECRET_KEY"),
    sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true(),
              comment="Disabled accounts are not synced or scheduled"),
    sa.Column("created_at", TIMESTAMPTZ, nullable=False, server_default=sa.func.now(), comment="Registered at"),
    sa.Column("updated_at", TIMESTAMPTZ, nullable=False, server_default=sa.func.now(),
              comment="Registration last changed at"),
    sa.Column("egress_pool", sa.Text, nullable=False, server_default="default",
              comment="Egress pool whose IP sends this account's calls: only workers with this HOSTAWAY_EGRESS_ID "
                      "call the API for it, booking that pool's IP budget; runs carry it as tag hostaway/egress"),
    sa.CheckConstraint("egress_pool ~ '^[!-~]{1,100}$'", name="egress_pool"),
    comment="Registered Hostaway accounts; one Dagster partition each",
)

access_tokens = sa.Table(
    "access_tokens",
    metadata,
    sa.Column("account_id", sa.BigInteger, primary_key=True, autoincrement=False,
              comment="Hostaway account id"),
    sa.Column("token_encrypted", sa.LargeBinary, nullable=False,
              comment="Bearer token, Fernet-encrypted with HOSTAWAY_SECRET_KEY"),
    sa.Column("issued_at", TIMESTAMPTZ, nullable=False, comment="Issued at (database clock)"),
    sa.Column("usable_after", TIMESTAMPTZ, nullable=False,
              comment="Hostaway tokens work only about 1 s after issue"),
    sa.Column("expires_at", TIMESTAMPTZ, nullable=False, comment="issued_at + expires_in"),
    comment="Cached API access tokens shared by every process; one per account",
)

rate_limit_buckets = sa.Table(
    "rate_limit_buckets",
    metadata,
    sa.Column("bucket_key", sa.Text, primary_key=True, comment="'ip:<egress id>' or 'account:<account id>'"),
    sa.Column("next_free_at", TIMESTAMPTZ, nullable=False, server_default=sa.func.now(),
              comment="GCRA theoretical arrival time: the earliest moment the next call may be sent"),
    sa.Column("interval_seconds", sa.Float, nullable=False, comment="Spacing between calls, margin included"),
    sa.Column("grants", sa.BigInteger, nullable=False, server_default="0", comment="Calls granted, all time"),
    sa.Column("wait_seconds", sa.Float, nullable=False, server_default="0",
              comment="Seconds callers were told to wait, all time"),
    sa.Column("throttled", sa.BigInteger, nullable=False, server_default="0",
              comment="429 answers reported by callers, all time"),
    sa.Column("updated_at", TIMESTAMPTZ, nullable=False, server_default=sa.func.now(), comment="Last grant"),
    sa.Column("paused_until", TIMESTAMPTZ, nullable=True,
              comment="No call on this bucket before this instant (database clock): set by a 429, at most the "
                      "maximum pause ahead; honoured by every reservation and re-checked by callers whose booked "
                      "slot came after a wait; NULL when never paused"),
    sa.Column("recent_slots", ARRAY(TIMESTAMPTZ), nullable=False, server_default="{}",
              comment="IP buckets: the slots granted over the last two windows, oldest first (empty for account "
                      "buckets); a 429 counts them to tell the account's limit from the IP's"),
    comment="Shared API rate-limit state: every thread, process and machine on this database paces through it",
)

# Why a stored event is where it is. ``pending`` waits for the apply step; every status but ``applied`` and
# ``ignored`` can be replayed (set back to ``pending``) once its cause is fixed.
WEBHOOK_EVENT_STATUSES = ("pending", "applied", "failed", "ignored", "unknown_event", "unknown_account", "unparseable")

webhook_events = sa.Table(
    "webhook_events",
    metadata,
    sa.Column("event_id", sa.BigInteger, sa.Identity(), primary_key=True, comment="Receiver-assigned id"),
    sa.Column("received_at", TIMESTAMPTZ, nullable=False, server_default=sa.func.now(),
              comment="Stored at (database clock)"),
    sa.Column("account_id", sa.BigInteger,
              comment="Hostaway account the event is about (`accountId`); NULL when the body names none"),
    sa.Column("event", sa.Text,
              comment="e.g. reservation.updated, message.received (`event`, or `eventType` in the old form); NULL "
                      "when the body names none"),
    sa.Column("object_type", sa.Text, comment="The body's `object`: reservation, conversationMessage, ..."),
    sa.Column("object_id", sa.BigInteger, comment="Id of the object in data; NULL when data has no usable id"),
    sa.Column("object_updated_on", TIMESTAMPTZ,
              comment="The object's own version (its `updatedOn`, in UTC), for ordering events of one object; NULL "
                      "when absent or unreadable"),
    sa.Column("dedupe_key", sa.Text, nullable=False, unique=True,
              comment="Account, event, object id, the object's version and a hash of the redacted data (of the "
                      "body when it cannot be parsed): a redelivery is stored once, a newer version is a new event"),
    sa.Column("payload", JSONB, nullable=False,
              comment="The body as received, redacted and cleaned as entity tables' raw is; a body that is not "
                      "JSON is kept as one JSON string (invalid UTF-8 and NUL characters replaced)"),
    sa.Column("status", sa.Text, nullable=False, server_default="pending",
              comment="pending (to apply), applied, failed (apply failed, see last_error), ignored (a test ping), "
                      "unknown_event (an event this version does not apply), unknown_account (not registered when "
                      "received), unparseable (see last_error)"),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0", comment="Apply attempts"),
    sa.Column("last_error", sa.Text,
              comment="Why the last apply attempt failed, or why the receiver did not store it as pending"),
    sa.Column("applied_at", TIMESTAMPTZ, comment="When it was applied; applied events are pruned after a while"),
    sa.CheckConstraint(
        "status IN (" + ", ".join(f"'{status}'" for status in WEBHOOK_EVENT_STATUSES) + ")", name="status"),
    sa.Index(None, "status", "received_at"),
    comment="Hostaway webhook events, each committed before the receiver answers 2xx; redeliveries stored once",
)

conversation_message_sync = sa.Table(
    "conversation_message_sync",
    metadata,
    sa.Column("account_id", sa.BigInteger, primary_key=True, comment="Hostaway account id"),
    sa.Column("conversation_id", sa.BigInteger, primary_key=True, comment="Conversation whose messages were read"),
    sa.Column("marker", sa.Text, nullable=False,
              comment="The conversation's change markers (messageSentOn, messageReceivedOn, latest-message "
                      "preview) when its messages were last read in full; unchanged markers mean nothing to fetch"),
    sa.Column("messages_synced_at", TIMESTAMPTZ, nullable=False, server_default=sa.func.now(),
              comment="When its messages were last read in full"),
    sa.Column("api_message_count", sa.Integer, nullable=True,
              comment="The API's count of the conversation's messages (scheduled included) when they were last "
                      "read; summed over live conversations it is what hostaway.messages should hold"),
    comment="Per-conversation message sync state: lets a sync skip conversations with no new messages",
)

sync_state = sa.Table(
    "sync_state",
    metadata,
    sa.Column("account_id", sa.BigInteger, primary_key=True, autoincrement=False, comment="Hostaway account id"),
    sa.Column("resource", sa.Text, primary_key=True, comment="listings, reservations or conversations"),
    sa.Column("watermark", TIMESTAMPTZ,
              comment="Upper bound of the last read proved complete, on the API's clock (in UTC): the newest "
                      "change stamp it served, never past its newest updatedOn; the next incremental read takes "
                      "every change stamped at or after watermark minus the overlap. NULL: the next read is a full "
                      "listing (only reservations are read incrementally)"),
    sa.Column("last_full_read_at", TIMESTAMPTZ,
              comment="When the last complete full listing began (database clock); deletions are proved only there"),
    sa.Column("last_incremental_read_at", TIMESTAMPTZ,
              comment="When the last complete incremental read began (database clock)"),
    sa.Column("last_read_kind", sa.Text, comment="full or incremental: the kind of the last complete read"),
    sa.Column("last_read_objects", sa.Integer, comment="Distinct objects the last complete read held"),
    sa.Column("last_api_count", sa.Integer, comment="The API's count of all the account's objects at that read"),
    sa.Column("updated_at", TIMESTAMPTZ, nullable=False, server_default=sa.func.now(),
              comment="When this state was last written, in the transaction of the rows it vouches for"),
    sa.CheckConstraint("last_read_kind IN ('full', 'incremental')", name="last_read_kind"),
    comment="Per account and resource: what the last complete reads proved; written only with their rows, never "
            "by a partial read",
)
