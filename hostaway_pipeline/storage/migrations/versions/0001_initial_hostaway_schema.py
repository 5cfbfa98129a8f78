"""initial hostaway schema

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-28 17:51:25.467106
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('access_tokens',
    sa.Column('account_id', sa.BigInteger(), autoincrement=False, nullable=False, comment='Hostaway account id'),
    sa.Column('token_encrypted', sa.LargeBinary(), nullable=False, comment='Bearer token, Fernet-encrypted with HOSTAWAY_SECRET_KEY'),
    sa.Column('issued_at', sa.DateTime(timezone=True), nullable=False, comment='Issued at (database clock)'),
    sa.Column('usable_after', sa.DateTime(timezone=True), nullable=False, comment='Hostaway tokens work only about 1 s after issue'),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False, comment='issued_at + expires_in'),
    sa.PrimaryKeyConstraint('account_id', name=op.f('pk_access_tokens')),
    schema='hostaway',
    comment='Cached API access tokens shared by every process; one per account'
    )
    op.create_table('accounts',
    sa.Column('account_id', sa.BigInteger(), autoincrement=False, nullable=False, comment='Hostaway account id (the API client_id)'),
    sa.Column('name', sa.Text(), nullable=True, comment='Human-friendly name'),
    sa.Column('client_secret_encrypted', sa.LargeBinary(), nullable=False, comment='API client secret, Fernet-encrypted with HOSTAWAY_SECRET_KEY'),
    sa.Column('enabled', sa.Boolean(), server_default=sa.text('true'), nullable=False, comment='Disabled accounts are not synced or scheduled'),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False, comment='Registered at'),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False, comment='Registration last changed at'),
    sa.PrimaryKeyConstraint('account_id', name=op.f('pk_accounts')),
    schema='hostaway',
    comment='Registered Hostaway accounts; one Dagster partition each'
    )
    op.create_table('conversations',
    sa.Column('account_id', sa.BigInteger(), nullable=False, comment='Hostaway account (tenant) id'),
    sa.Column('id', sa.BigInteger(), nullable=False, comment='Hostaway conversation id'),
    sa.Column('listing_id', sa.BigInteger(), nullable=True, comment='Listing; joins listings.id (Hostaway `listingMapId`)'),
    sa.Column('reservation_id', sa.BigInteger(), nullable=True, comment='Reservation; joins reservations.id (Hostaway `reservationId`)'),
    sa.Column('type', sa.Text(), nullable=True, comment='Conversation type (Hostaway `type`)'),
    sa.Column('recipient_name', sa.Text(), nullable=True, comment='Guest name (Hostaway `recipientName`)'),
    sa.Column('has_unread_messages', sa.Boolean(), nullable=True, comment='Unread incoming messages (Hostaway `hasUnreadMessages`)'),
    sa.Column('message_sent_on', sa.DateTime(timezone=True), nullable=True, comment='Last message sent to the guest (Hostaway `messageSentOn`)'),
    sa.Column('message_received_on', sa.DateTime(timezone=True), nullable=True, comment='Last message received from the guest (Hostaway `messageReceivedOn`)'),
    sa.Column('raw', postgresql.JSONB(astext_type=sa.Text()), nullable=False, comment='The whole source object as Hostaway sent it, redacted'),
    sa.Column('first_seen_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False, comment='When the pipeline first stored this object'),
    sa.Column('synced_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False, comment='When the pipeline last saw this object upstream'),
    sa.Column('changed_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False, comment="When this row's content last changed (insert, update or undelete)"),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True, comment='Set when the object disappeared upstream (soft delete); NULL while it exists'),
    sa.PrimaryKeyConstraint('account_id', 'id', name=op.f('pk_conversations')),
    schema='hostaway',
    comment='Hostaway guest conversations (one per reservation or inquiry), one row per account and conversation id'
    )
    op.create_index(op.f('ix_conversations_account_id_reservation_id'), 'conversations', ['account_id', 'reservation_id'], unique=False, schema='hostaway')
    op.create_table('listings',
    sa.Column('account_id', sa.BigInteger(), nullable=False, comment='Hostaway account (tenant) id'),
    sa.Column('id', sa.BigInteger(), nullable=False, comment='Hostaway listing id'),
    sa.Column('name', sa.Text(), nullable=True, comment='Listing name (Hostaway `name`)'),
    sa.Column('internal_listing_name', sa.Text(), nullable=True, comment='Internal name (Hostaway `internalListingName`)'),
    sa.Column('city', sa.Text(), nullable=True, comment='City (Hostaway `city`)'),
    sa.Column('country_code', sa.Text(), nullable=True, comment='ISO country code (Hostaway `countryCode`)'),
    sa.Column('address', sa.Text(), nullable=True, comment='Full address (Hostaway `address`)'),
    sa.Column('lat', sa.Float(), nullable=True, comment='Latitude (Hostaway `lat`)'),
    sa.Column('lng', sa.Float(), nullable=True, comment='Longitude (Hostaway `lng`)'),
    sa.Column('person_capacity', sa.Integer(), nullable=True, comment='Maximum guests (Hostaway `personCapacity`)'),
    sa.Column('bedrooms_number', sa.Integer(), nullable=True, comment='Bedrooms (Hostaway `bedroomsNumber`)'),
    sa.Column('bathrooms_number', sa.Integer(), nullable=True, comment='Bathrooms (Hostaway `bathroomsNumber`)'),
    sa.Column('price', sa.Numeric(precision=14, scale=2), nullable=True, comment='Base nightly price in currency_code (Hostaway `price`)'),
    sa.Column('currency_code', sa.Text(), nullable=True, comment='Currency of prices (Hostaway `currencyCode`)'),
    sa.Column('time_zone_name', sa.Text(), nullable=True, comment='IANA time zone of the property (Hostaway `timeZoneName`)'),
    sa.Column('inserted_on', sa.DateTime(timezone=True), nullable=True, comment='Created in Hostaway (Hostaway `insertedOn`)'),
    sa.Column('latest_activity_on', sa.DateTime(timezone=True), nullable=True, comment='Last activity in Hostaway (Hostaway `latestActivityOn`)'),
    sa.Column('raw', postgresql.JSONB(astext_type=sa.Text()), nullable=False, comment='The whole source object as Hostaway sent it, redacted'),
    sa.Column('first_seen_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False, comment='When the pipeline first stored this object'),
    sa.Column('synced_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False, comment='When the pipeline last saw this object upstream'),
    sa.Column('changed_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False, comment="When this row's content last changed (insert, update or undelete)"),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True, comment='Set when the object disappeared upstream (soft delete); NULL while it exists'),
    sa.PrimaryKeyConstraint('account_id', 'id', name=op.f('pk_listings')),
    schema='hostaway',
    comment='Hostaway listings (properties), one row per account and listing id'
    )
    op.create_table('messages',
    sa.Column('account_id', sa.BigInteger(), nullable=False, comment='Hostaway account (tenant) id'),
    sa.Column('id', sa.BigInteger(), nullable=False, comment='Hostaway message id'),
    sa.Column('conversation_id', sa.BigInteger(), nullable=True, comment='Conversation; joins conversations.id (Hostaway `conversationId`)'),
    sa.Column('reservation_id', sa.BigInteger(), nullable=True, comment='Reservation; joins reservations.id (Hostaway `reservationId`)'),
    sa.Column('listing_id', sa.BigInteger(), nullable=True, comment='Listing; joins listings.id (Hostaway `listingMapId`)'),
    sa.Column('is_incoming', sa.Boolean(), nullable=True, comment='True when the guest wrote it (Hostaway `isIncoming`)'),
    sa.Column('status', sa.Text(), nullable=True, comment='sent, awaiting (scheduled), failed, ... (Hostaway `status`)'),
    sa.Column('communication_type', sa.Text(), nullable=True, comment='channel, email, sms, whatsapp, ... (Hostaway `communicationType`)'),
    sa.Column('body', sa.Text(), nullable=True, comment='Message text, unicode as sent (Hostaway `body`)'),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True, comment='Message time (scheduled time when awaiting) (Hostaway `date`)'),
    sa.Column('sent_to_channel_at', sa.DateTime(timezone=True), nullable=True, comment='Delivered to the channel (Hostaway `sentToChannelDate`)'),
    sa.Column('inserted_on', sa.DateTime(timezone=True), nullable=True, comment='Created in Hostaway (Hostaway `insertedOn`)'),
    sa.Column('updated_on', sa.DateTime(timezone=True), nullable=True, comment='Last updated in Hostaway (Hostaway `updatedOn`)'),
    sa.Column('raw', postgresql.JSONB(astext_type=sa.Text()), nullable=False, comment='The whole source object as Hostaway sent it, redacted'),
    sa.Column('first_seen_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False, comment='When the pipeline first stored this object'),
    sa.Column('synced_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False, comment='When the pipeline last saw this object upstream'),
    sa.Column('changed_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False, comment="When this row's content last changed (insert, update or undelete)"),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True, comment='Set when the object disappeared upstream (soft delete); NULL while it exists'),
    sa.PrimaryKeyConstraint('account_id', 'id', name=op.f('pk_messages')),
    schema='hostaway',
    comment='Hostaway conversation messages (guest and host, sent and scheduled), one row per account and message id'
    )
    op.create_index(op.f('ix_messages_account_id_conversation_id_sent_at'), 'messages', ['account_id', 'conversation_id', 'sent_at'], unique=False, schema='hostaway')
    op.create_table('rate_limit_buckets',
    sa.Column('bucket_key', sa.Text(), nullable=False, comment="'ip:<egress id>' or 'account:<account id>'"),
    sa.Column('next_free_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False, comment='GCRA theoretical arrival time: the earliest moment the next call may be sent'),
    sa.Column('interval_seconds', sa.Float(), nullable=False, comment='Spacing between calls, margin included'),
    sa.Column('grants', sa.BigInteger(), server_default='0', nullable=False, comment='Calls granted, all time'),
    sa.Column('wait_seconds', sa.Float(), server_default='0', nullable=False, comment='Seconds callers were told to wait, all time'),
    sa.Column('throttled', sa.BigInteger(), server_default='0', nullable=False, comment='429 answers reported by callers, all time'),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False, comment='Last grant'),
    sa.PrimaryKeyConstraint('bucket_key', name=op.f('pk_rate_limit_buckets')),
    schema='hostaway',
    comment='Shared API rate-limit state: every thread, process and machine on this database paces through it'
    )
    op.create_table('reservations',
    sa.Column('account_id', sa.BigInteger(), nullable=False, comment='Hostaway account (tenant) id'),
    sa.Column('id', sa.BigInteger(), nullable=False, comment='Hostaway reservation id'),
    sa.Column('listing_id', sa.BigInteger(), nullable=True, comment='Listing booked; joins listings.id (Hostaway `listingMapId`)'),
    sa.Column('channel_id', sa.Integer(), nullable=True, comment='Booking channel id (Hostaway `channelId`)'),
    sa.Column('channel_name', sa.Text(), nullable=True, comment='Booking channel, e.g. airbnbOfficial (Hostaway `channelName`)'),
    sa.Column('reservation_code', sa.Text(), nullable=True, comment="Hostaway's reservation code (Hostaway `reservationId`)"),
    sa.Column('channel_reservation_id', sa.Text(), nullable=True, comment="The channel's own id (Hostaway `channelReservationId`)"),
    sa.Column('status', sa.Text(), nullable=True, comment='new, modified, cancelled, inquiry, ... (Hostaway `status`)'),
    sa.Column('guest_name', sa.Text(), nullable=True, comment='Guest full name (Hostaway `guestName`)'),
    sa.Column('arrival_date', sa.Date(), nullable=True, comment='Check-in date (property local) (Hostaway `arrivalDate`)'),
    sa.Column('departure_date', sa.Date(), nullable=True, comment='Check-out date (property local) (Hostaway `departureDate`)'),
    sa.Column('nights', sa.Integer(), nullable=True, comment='Nights booked (Hostaway `nights`)'),
    sa.Column('number_of_guests', sa.Integer(), nullable=True, comment='Guests (Hostaway `numberOfGuests`)'),
    sa.Column('total_price', sa.Numeric(precision=14, scale=2), nullable=True, comment='Total price in currency (Hostaway `totalPrice`)'),
    sa.Column('currency', sa.Text(), nullable=True, comment='Currency of total_price (Hostaway `currency`)'),
    sa.Column('is_paid', sa.Boolean(), nullable=True, comment='Paid in full (Hostaway `isPaid`)'),
    sa.Column('reservation_date', sa.DateTime(timezone=True), nullable=True, comment='When it was booked (Hostaway `reservationDate`)'),
    sa.Column('cancellation_date', sa.DateTime(timezone=True), nullable=True, comment='When it was cancelled (Hostaway `cancellationDate`)'),
    sa.Column('inserted_on', sa.DateTime(timezone=True), nullable=True, comment='Created in Hostaway (Hostaway `insertedOn`)'),
    sa.Column('updated_on', sa.DateTime(timezone=True), nullable=True, comment='Last updated in Hostaway (Hostaway `updatedOn`)'),
    sa.Column('latest_activity_on', sa.DateTime(timezone=True), nullable=True, comment='Last activity in Hostaway (Hostaway `latestActivityOn`)'),
    sa.Column('raw', postgresql.JSONB(astext_type=sa.Text()), nullable=False, comment='The whole source object as Hostaway sent it, redacted'),
    sa.Column('first_seen_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False, comment='When the pipeline first stored this object'),
    sa.Column('synced_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False, comment='When the pipeline last saw this object upstream'),
    sa.Column('changed_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False, comment="When this row's content last changed (insert, update or undelete)"),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True, comment='Set when the object disappeared upstream (soft delete); NULL while it exists'),
    sa.PrimaryKeyConstraint('account_id', 'id', name=op.f('pk_reservations')),
    schema='hostaway',
    comment='Hostaway reservations (bookings, inquiries, cancellations), one row per account and reservation id'
    )
    op.create_index(op.f('ix_reservations_account_id_arrival_date'), 'reservations', ['account_id', 'arrival_date'], unique=False, schema='hostaway')
    op.create_index(op.f('ix_reservations_account_id_listing_id_arrival_date'), 'reservations', ['account_id', 'listing_id', 'arrival_date'], unique=False, schema='hostaway')
    op.create_index(op.f('ix_reservations_account_id_updated_on'), 'reservations', ['account_id', 'updated_on'], unique=False, schema='hostaway')
    op.create_table('webhook_events',
    sa.Column('event_id', sa.BigInteger(), sa.Identity(always=False), nullable=False, comment='Receiver-assigned id'),
    sa.Column('received_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False, comment='Stored at (database clock)'),
    sa.Column('account_id', sa.BigInteger(), nullable=True, comment='Hostaway account the event is about'),
    sa.Column('event', sa.Text(), nullable=False, comment='e.g. reservation.updated, message.received'),
    sa.Column('object_type', sa.Text(), nullable=True, comment='reservation, conversationMessage, ...'),
    sa.Column('object_id', sa.BigInteger(), nullable=True, comment='Id of the object in data'),
    sa.Column('object_updated_on', sa.DateTime(timezone=True), nullable=True, comment="The object's own updatedOn, for ordering"),
    sa.Column('dedupe_key', sa.Text(), nullable=False, comment='Hash of the redacted payload: a redelivery of the same event is stored once'),
    sa.Column('payload', postgresql.JSONB(astext_type=sa.Text()), nullable=False, comment='The event as received, redacted'),
    sa.Column('status', sa.Text(), server_default='pending', nullable=False, comment='pending, applied, ignored or failed'),
    sa.Column('attempts', sa.Integer(), server_default='0', nullable=False, comment='Apply attempts'),
    sa.Column('last_error', sa.Text(), nullable=True, comment='Why the last apply attempt failed'),
    sa.Column('applied_at', sa.DateTime(timezone=True), nullable=True, comment='When it was applied'),
    sa.CheckConstraint("status IN ('pending', 'applied', 'ignored', 'failed')", name=op.f('ck_webhook_events_status')),
    sa.PrimaryKeyConstraint('event_id', name=op.f('pk_webhook_events')),
    sa.UniqueConstraint('dedupe_key', name=op.f('uq_webhook_events_dedupe_key')),
    schema='hostaway',
    comment='Hostaway webhook events, stored durably before the receiver answers 2xx'
    )
    op.create_index(op.f('ix_webhook_events_status_received_at'), 'webhook_events', ['status', 'received_at'], unique=False, schema='hostaway')


def downgrade() -> None:
    op.drop_index(op.f('ix_webhook_events_status_received_at'), table_name='webhook_events', schema='hostaway')
    op.drop_table('webhook_events', schema='hostaway')
    op.drop_index(op.f('ix_reservations_account_id_updated_on'), table_name='reservations', schema='hostaway')
    op.drop_index(op.f('ix_reservations_account_id_listing_id_arrival_date'), table_name='reservations', schema='hostaway')
    op.drop_index(op.f('ix_reservations_account_id_arrival_date'), table_name='reservations', schema='hostaway')
    op.drop_table('reservations', schema='hostaway')
    op.drop_table('rate_limit_buckets', schema='hostaway')
    op.drop_index(op.f('ix_messages_account_id_conversation_id_sent_at'), table_name='messages', schema='hostaway')
    op.drop_table('messages', schema='hostaway')
    op.drop_table('listings', schema='hostaway')
    op.drop_index(op.f('ix_conversations_account_id_reservation_id'), table_name='conversations', schema='hostaway')
    op.drop_table('conversations', schema='hostaway')
    op.drop_table('accounts', schema='hostaway')
    op.drop_table('access_tokens', schema='hostaway')
