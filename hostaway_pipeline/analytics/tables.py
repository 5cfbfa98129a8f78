"""Every table of schema ``hostaway_analytics``, declared once (the Alembic migration creates them from this shape).

One account's rows of each table are rebuilt together by its Dagster asset (``defs/analytics_assets.py``);
comments become ``COMMENT ON`` so analysts see meanings in their SQL client. The rules behind each
figure (statuses, owner stays, currencies, time zones) are in ``docs/analytics.md``.
"""

from __future__ import annotations

import sqlalchemy as sa

from hostaway_pipeline.storage.tables import NAMING_CONVENTION, TIMESTAMPTZ

SCHEMA = "hostaway_analytics"
metadata = sa.MetaData(schema=SCHEMA, naming_convention=NAMING_CONVENTION)
MONEY = sa.Numeric(14, 2)
RATE = sa.Numeric(6, 4)


def _account() -> sa.Column:
    return sa.Column("account_id", sa.BigInteger, primary_key=True, autoincrement=False,
                     comment="Hostaway account (tenant) id")


reservation_nights = sa.Table(
    "reservation_nights",
    metadata,
    _account(),
    sa.Column("reservation_id", sa.BigInteger, primary_key=True, autoincrement=False,
              comment="Reservation; joins hostaway.reservations.id"),
    sa.Column("night_date", sa.Date, primary_key=True,
              comment="The night that starts on this date, in the listing's local calendar (arrival_date up to the "
                      "day before departure_date)"),
    sa.Column("listing_id", sa.BigInteger, comment="Listing; joins hostaway.listings.id"),
    sa.Column("month", sa.Date, nullable=False, comment="First day of the night's local month"),
    sa.Column("stay_type", sa.Text, nullable=False,
              comment="guest (status new or modified: a sold night) or owner (status ownerStay: blocked, unsold)"),
    sa.Column("status", sa.Text, nullable=False, comment="The reservation's Hostaway status"),
    sa.Column("channel_id", sa.Integer, comment="Booking channel id"),
    sa.Column("channel_name", sa.Text, nullable=False,
              comment="Booking channel, e.g. airbnbOfficial; 'unknown' when Hostaway gave none"),
    sa.Column("revenue", MONEY,
              comment="This night's share of the reservation's total price (split evenly over its nights, cents "
                      "given to the first nights); 0 for owner stays; NULL when the price or currency is unknown"),
    sa.Column("currency", sa.Text, comment="Currency of revenue (the reservation's own)"),
    sa.Column("time_zone_name", sa.Text, comment="IANA time zone of the listing; NULL when the listing has none"),
    sa.Index(None, "account_id", "listing_id", "night_date"),
    comment="One row per booked night: confirmed guest stays and owner stays (cancelled, declined, expired, "
            "inquiry and pending reservations have none); rebuilt per account",
)

listing_occupancy_monthly = sa.Table(
    "listing_occupancy_monthly",
    metadata,
    _account(),
    sa.Column("listing_id", sa.BigInteger, primary_key=True, autoincrement=False,
              comment="Listing; joins hostaway.listings.id"),
    sa.Column("month", sa.Date, primary_key=True, comment="First day of the local calendar month"),
    sa.Column("days_in_month", sa.Integer, nullable=False, comment="Calendar nights in the month"),
    sa.Column("guest_nights", sa.Integer, nullable=False,
              comment="Nights sold to guests (a night booked twice counts once)"),
    sa.Column("owner_nights", sa.Integer, nullable=False,
              comment="Nights blocked by owner stays and not sold to a guest"),
    sa.Column("available_nights", sa.Integer, nullable=False,
              comment="Nights the listing could be sold: days_in_month - owner_nights"),
    sa.Column("occupancy_rate", RATE,
              comment="guest_nights / available_nights, 0..1; NULL when no night was available"),
    sa.Column("blocked_rate", RATE, nullable=False,
              comment="(guest_nights + owner_nights) / days_in_month, 0..1: how full the calendar was"),
    sa.Column("time_zone_name", sa.Text, comment="IANA time zone of the listing; NULL when the listing has none"),
    comment="Occupancy per listing and local calendar month, for every listing and every month from the "
            "account's first booked night (or the listing's creation, when later) to its last; rebuilt per account",
)

revenue_monthly = sa.Table(
    "revenue_monthly",
    metadata,
    _account(),
    sa.Column("listing_id", sa.BigInteger, primary_key=True, autoincrement=False,
              comment="Listing; joins hostaway.listings.id"),
    sa.Column("channel_name", sa.Text, primary_key=True,
              comment="Booking channel, e.g. airbnbOfficial; 'unknown' when Hostaway gave none"),
    sa.Column("month", sa.Date, primary_key=True, comment="First day of the local calendar month"),
    sa.Column("currency", sa.Text, primary_key=True,
              comment="Currency of every amount in the row: amounts in different currencies are never added"),
    sa.Column("channel_id", sa.Integer, comment="Booking channel id"),
    sa.Column("nights_sold", sa.Integer, nullable=False, comment="Guest nights of the month (owner stays excluded)"),
    sa.Column("reservations", sa.Integer, nullable=False,
              comment="Confirmed guest reservations with at least one night in the month"),
    sa.Column("revenue", MONEY, nullable=False,
              comment="Sum of the month's nights' shares of reservation total prices (fees and taxes included, as "
                      "Hostaway's totalPrice)"),
    sa.Column("adr", MONEY, comment="Average daily rate: revenue / nights_sold; NULL without nights"),
    sa.Column("cancelled_reservations", sa.Integer, nullable=False,
              comment="Cancelled reservations whose (original) arrival falls in the month"),
    sa.Column("cancellation_revenue", MONEY, nullable=False,
              comment="Cancellation payouts kept by the host (Airbnb `airbnbListingCancellationPayout`) of those "
                      "cancellations, counted in the arrival month; not in revenue, nights or adr"),
    comment="Revenue per listing, channel, local calendar month and currency; rebuilt per account",
)

guest_response_times = sa.Table(
    "guest_response_times",
    metadata,
    _account(),
    sa.Column("guest_message_id", sa.BigInteger, primary_key=True, autoincrement=False,
              comment="The incoming guest message; joins hostaway.messages.id"),
    sa.Column("conversation_id", sa.BigInteger, nullable=False,
              comment="Conversation; joins hostaway.conversations.id"),
    sa.Column("reservation_id", sa.BigInteger, comment="Reservation; joins hostaway.reservations.id"),
    sa.Column("listing_id", sa.BigInteger, comment="Listing; joins hostaway.listings.id"),
    sa.Column("guest_message_at", TIMESTAMPTZ, nullable=False, comment="When the guest's message was sent"),
    sa.Column("guest_message_local_time", sa.DateTime(timezone=False), nullable=False,
              comment="guest_message_at on the listing's local wall clock (UTC when its zone is unknown)"),
    sa.Column("month", sa.Date, nullable=False, comment="First day of the guest message's local month"),
    sa.Column("reply_message_id", sa.BigInteger,
              comment="The first sent host message of the conversation after the guest's; NULL while unanswered"),
    sa.Column("reply_at", TIMESTAMPTZ, comment="When that reply was sent; NULL while unanswered"),
    sa.Column("response_seconds", sa.Float,
              comment="reply_at - guest_message_at in elapsed (wall-clock) seconds, nights and weekends included; "
                      "NULL while unanswered"),
    sa.Column("time_zone_name", sa.Text,
              comment="IANA time zone used for the local columns (the listing's); NULL when unknown (UTC used)"),
    sa.Index(None, "account_id", "month"),
    comment="Each incoming guest message with the first host reply after it; rebuilt per account",
)

ANALYTICS_TABLES: dict[str, sa.Table] = {
    table.name: table
    for table in (reservation_nights, listing_occupancy_monthly, revenue_monthly, guest_response_times)
}
