"""analytics schema: schema hostaway_analytics and its four analyst tables (reservation_nights,
listing_occupancy_monthly, revenue_monthly, guest_response_times), declared in analytics/tables.py

The tables hold only what the analytics assets compute from schema hostaway, so downgrade drops the
schema with them: a later upgrade and one materialization per account rebuild every row.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29 14:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

SCHEMA = 'hostaway_analytics'
ACCOUNT_COMMENT = 'Hostaway account (tenant) id'
LISTING_COMMENT = 'Listing; joins hostaway.listings.id'
MONTH_COMMENT = 'First day of the local calendar month'
CHANNEL_COMMENT = "Booking channel, e.g. airbnbOfficial; 'unknown' when Hostaway gave none"
ZONE_COMMENT = 'IANA time zone of the listing; NULL when the listing has none'


def upgrade() -> None:
    op.execute(f'CREATE SCHEMA IF NOT EXISTS {SCHEMA}')
    op.execute(f"COMMENT ON SCHEMA {SCHEMA} IS 'Analyst tables computed from schema hostaway (docs/analytics.md)'")
    op.create_table(
        'reservation_nights',
        sa.Column('account_id', sa.BigInteger(), autoincrement=False, nullable=False, comment=ACCOUNT_COMMENT),
        sa.Column('reservation_id', sa.BigInteger(), autoincrement=False, nullable=False,
                  comment='Reservation; joins hostaway.reservations.id'),
        sa.Column('night_date', sa.Date(), nullable=False,
                  comment="The night that starts on this date, in the listing's local calendar (arrival_date up to "
                          "the day before departure_date)"),
        sa.Column('listing_id', sa.BigInteger(), nullable=True, comment=LISTING_COMMENT),
        sa.Column('month', sa.Date(), nullable=False, comment="First day of the night's local month"),
        sa.Column('stay_type', sa.Text(), nullable=False,
                  comment='guest (status new or modified: a sold night) or owner (status ownerStay: blocked, unsold)'),
        sa.Column('status', sa.Text(), nullable=False, comment="The reservation's Hostaway status"),
        sa.Column('channel_id', sa.Integer(), nullable=True, comment='Booking channel id'),
        sa.Column('channel_name', sa.Text(), nullable=False, comment=CHANNEL_COMMENT),
        sa.Column('revenue', sa.Numeric(precision=14, scale=2), nullable=True,
                  comment="This night's share of the reservation's total price (split evenly over its nights, cents "
                          "given to the first nights); 0 for owner stays; NULL when the price or currency is unknown"),
        sa.Column('currency', sa.Text(), nullable=True, comment="Currency of revenue (the reservation's own)"),
        sa.Column('time_zone_name', sa.Text(), nullable=True, comment=ZONE_COMMENT),
        sa.PrimaryKeyConstraint('account_id', 'reservation_id', 'night_date', name=op.f('pk_reservation_nights')),
        schema=SCHEMA,
        comment='One row per booked night: confirmed guest stays and owner stays (cancelled, declined, expired, '
                'inquiry and pending reservations have none); rebuilt per account',
    )
    op.create_index(op.f('ix_reservation_nights_account_id_listing_id_night_date'), 'reservation_nights',
                    ['account_id', 'listing_id', 'night_date'], unique=False, schema=SCHEMA)
    op.create_table(
        'listing_occupancy_monthly',
        sa.Column('account_id', sa.BigInteger(), autoincrement=False, nullable=False, comment=ACCOUNT_COMMENT),
        sa.Column('listing_id', sa.BigInteger(), autoincrement=False, nullable=False, comment=LISTING_COMMENT),
        sa.Column('month', sa.Date(), nullable=False, comment=MONTH_COMMENT),
        sa.Column('days_in_month', sa.Integer(), nullable=False, comment='Calendar nights in the month'),
        sa.Column('guest_nights', sa.Integer(), nullable=False,
                  comment='Nights sold to guests (a night booked twice counts once)'),
        sa.Column('owner_nights', sa.Integer(), nullable=False,
                  comment='Nights blocked by owner stays and not sold to a guest'),
        sa.Column('available_nights', sa.Integer(), nullable=False,
                  comment='Nights the listing could be sold: days_in_month - owner_nights'),
        sa.Column('occupancy_rate', sa.Numeric(precision=6, scale=4), nullable=True,
                  comment='guest_nights / available_nights, 0..1; NULL when no night was available'),
        sa.Column('blocked_rate', sa.Numeric(precision=6, scale=4), nullable=False,
                  comment='(guest_nights + owner_nights) / days_in_month, 0..1: how full the calendar was'),
        sa.Column('time_zone_name', sa.Text(), nullable=True, comment=ZONE_COMMENT),
        sa.PrimaryKeyConstraint('account_id', 'listing_id', 'month', name=op.f('pk_listing_occupancy_monthly')),
        schema=SCHEMA,
        comment="Occupancy per listing and local calendar month, for every listing and every month from the "
                "account's first booked night (or the listing's creation, when later) to its last; rebuilt per account",
    )
    op.create_table(
        'revenue_monthly',
        sa.Column('account_id', sa.BigInteger(), autoincrement=False, nullable=False, comment=ACCOUNT_COMMENT),
        sa.Column('listing_id', sa.BigInteger(), autoincrement=False, nullable=False, comment=LISTING_COMMENT),
        sa.Column('channel_name', sa.Text(), nullable=False, comment=CHANNEL_COMMENT),
        sa.Column('month', sa.Date(), nullable=False, comment=MONTH_COMMENT),
        sa.Column('currency', sa.Text(), nullable=False,
                  comment='Currency of every amount in the row: amounts in different currencies are never added'),
        sa.Column('channel_id', sa.Integer(), nullable=True, comment='Booking channel id'),
        sa.Column('nights_sold', sa.Integer(), nullable=False,
                  comment='Guest nights of the month (owner stays excluded)'),
        sa.Column('reservations', sa.Integer(), nullable=False,
                  comment='Confirmed guest reservations with at least one night in the month'),
        sa.Column('revenue', sa.Numeric(precision=14, scale=2), nullable=False,
                  comment="Sum of the month's nights' shares of reservation total prices (fees and taxes included, "
                          "as Hostaway's totalPrice)"),
        sa.Column('adr', sa.Numeric(precision=14, scale=2), nullable=True,
                  comment='Average daily rate: revenue / nights_sold; NULL without nights'),
        sa.Column('cancelled_reservations', sa.Integer(), nullable=False,
                  comment='Cancelled reservations whose (original) arrival falls in the month'),
        sa.Column('cancellation_revenue', sa.Numeric(precision=14, scale=2), nullable=False,
                  comment='Cancellation payouts kept by the host (Airbnb `airbnbListingCancellationPayout`) of those '
                          'cancellations, counted in the arrival month; not in revenue, nights or adr'),
        sa.PrimaryKeyConstraint('account_id', 'listing_id', 'channel_name', 'month', 'currency',
                                name=op.f('pk_revenue_monthly')),
        schema=SCHEMA,
        comment='Revenue per listing, channel, local calendar month and currency; rebuilt per account',
    )
    op.create_table(
        'guest_response_times',
        sa.Column('account_id', sa.BigInteger(), autoincrement=False, nullable=False, comment=ACCOUNT_COMMENT),
        sa.Column('guest_message_id', sa.BigInteger(), autoincrement=False, nullable=False,
                  comment='The incoming guest message; joins hostaway.messages.id'),
        sa.Column('conversation_id', sa.BigInteger(), nullable=False,
                  comment='Conversation; joins hostaway.conversations.id'),
        sa.Column('reservation_id', sa.BigInteger(), nullable=True,
                  comment='Reservation; joins hostaway.reservations.id'),
        sa.Column('listing_id', sa.BigInteger(), nullable=True, comment=LISTING_COMMENT),
        sa.Column('guest_message_at', sa.DateTime(timezone=True), nullable=False,
                  comment="When the guest's message was sent"),
        sa.Column('guest_message_local_time', sa.DateTime(), nullable=False,
                  comment="guest_message_at on the listing's local wall clock (UTC when its zone is unknown)"),
        sa.Column('month', sa.Date(), nullable=False, comment="First day of the guest message's local month"),
        sa.Column('reply_message_id', sa.BigInteger(), nullable=True,
                  comment='The first sent host message of the conversation after the guest\'s; NULL while '
                          'unanswered'),
        sa.Column('reply_at', sa.DateTime(timezone=True), nullable=True,
                  comment='When that reply was sent; NULL while unanswered'),
        sa.Column('response_seconds', sa.Float(), nullable=True,
                  comment='reply_at - guest_message_at in elapsed (wall-clock) seconds, nights and weekends '
                          'included; NULL while unanswered'),
        sa.Column('time_zone_name', sa.Text(), nullable=True,
                  comment="IANA time zone used for the local columns (the listing's); NULL when unknown (UTC used)"),
        sa.PrimaryKeyConstraint('account_id', 'guest_message_id', name=op.f('pk_guest_response_times')),
        schema=SCHEMA,
        comment='Each incoming guest message with the first host reply after it; rebuilt per account',
    )
    op.create_index(op.f('ix_guest_response_times_account_id_month'), 'guest_response_times',
                    ['account_id', 'month'], unique=False, schema=SCHEMA)


def downgrade() -> None:
    op.drop_table('guest_response_times', schema=SCHEMA)
    op.drop_table('revenue_monthly', schema=SCHEMA)
    op.drop_table('listing_occupancy_monthly', schema=SCHEMA)
    op.drop_table('reservation_nights', schema=SCHEMA)
    op.execute(f'DROP SCHEMA IF EXISTS {SCHEMA}')
