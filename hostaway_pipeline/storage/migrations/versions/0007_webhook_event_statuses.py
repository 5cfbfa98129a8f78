"""webhook event statuses: the receiver stores every authenticated delivery, saying why one is not pending
(unknown_event, unknown_account, unparseable); an unparseable body may name no event; comments say how the
dedupe key is made

Downgrade maps the new statuses to 'ignored' and a missing event name to '' (the old schema had neither).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

OLD_STATUSES = "status IN ('pending', 'applied', 'ignored', 'failed')"
NEW_STATUSES = ("status IN ('pending', 'applied', 'failed', 'ignored', 'unknown_event', 'unknown_account', "
                "'unparseable')")

# (column, type, old comment, new comment)
COMMENTS = [
    ('account_id', sa.BigInteger(),
     'Hostaway account the event is about',
     'Hostaway account the event is about (`accountId`); NULL when the body names none'),
    ('object_type', sa.Text(),
     'reservation, conversationMessage, ...',
     "The body's `object`: reservation, conversationMessage, ..."),
    ('object_id', sa.BigInteger(),
     'Id of the object in data',
     'Id of the object in data; NULL when data has no usable id'),
    ('object_updated_on', sa.DateTime(timezone=True),
     "The object's own updatedOn, for ordering",
     "The object's own version (its `updatedOn`, in UTC), for ordering events of one object; NULL when absent or "
     "unreadable"),
    ('dedupe_key', sa.Text(),
     'Hash of the redacted payload: a redelivery of the same event is stored once',
     "Account, event, object id, the object's version and a hash of the redacted data (of the body when it cannot "
     "be parsed): a redelivery is stored once, a newer version is a new event"),
    ('payload', sa.dialects.postgresql.JSONB(),
     'The event as received, redacted',
     "The body as received, redacted and cleaned as entity tables' raw is; a body that is not JSON is kept as one "
     "JSON string (invalid UTF-8 and NUL characters replaced)"),
    ('status', sa.Text(),
     'pending, applied, ignored or failed',
     'pending (to apply), applied, failed (apply failed, see last_error), ignored (a test ping), unknown_event (an '
     'event this version does not apply), unknown_account (not registered when received), unparseable (see '
     'last_error)'),
    ('last_error', sa.Text(),
     'Why the last apply attempt failed',
     'Why the last apply attempt failed, or why the receiver did not store it as pending'),
    ('applied_at', sa.DateTime(timezone=True),
     'When it was applied',
     'When it was applied; applied events are pruned after a while'),
]
OLD_EVENT_COMMENT = 'e.g. reservation.updated, message.received'
NEW_EVENT_COMMENT = ('e.g. reservation.updated, message.received (`event`, or `eventType` in the old form); NULL when '
                     'the body names none')
OLD_TABLE_COMMENT = 'Hostaway webhook events, stored durably before the receiver answers 2xx'
NEW_TABLE_COMMENT = 'Hostaway webhook events, each committed before the receiver answers 2xx; redeliveries stored once'


def upgrade() -> None:
    op.drop_constraint(op.f('ck_webhook_events_status'), 'webhook_events', type_='check', schema='hostaway')
    op.create_check_constraint(op.f('ck_webhook_events_status'), 'webhook_events', sa.text(NEW_STATUSES),
                               schema='hostaway')
    op.alter_column('webhook_events', 'event', existing_type=sa.Text(), nullable=True, comment=NEW_EVENT_COMMENT,
                    existing_comment=OLD_EVENT_COMMENT, schema='hostaway')
    for column, type_, before, after in COMMENTS:
        op.alter_column("webhook_events", column, existing_type=type_,  # type: ignore[arg-type]
                        comment=after, existing_comment=before,
                        schema='hostaway')
    op.create_table_comment('webhook_events', NEW_TABLE_COMMENT, existing_comment=OLD_TABLE_COMMENT,
                            schema='hostaway')


def downgrade() -> None:
    op.create_table_comment('webhook_events', OLD_TABLE_COMMENT, existing_comment=NEW_TABLE_COMMENT,
                            schema='hostaway')
    for column, type_, before, after in COMMENTS:
        op.alter_column("webhook_events", column, existing_type=type_,  # type: ignore[arg-type]
                        comment=before, existing_comment=after,
                        schema='hostaway')
    op.execute("UPDATE hostaway.webhook_events SET event = '' WHERE event IS NULL")
    op.alter_column('webhook_events', 'event', existing_type=sa.Text(), nullable=False, comment=OLD_EVENT_COMMENT,
                    existing_comment=NEW_EVENT_COMMENT, schema='hostaway')
    op.drop_constraint(op.f('ck_webhook_events_status'), 'webhook_events', type_='check', schema='hostaway')
    op.execute("UPDATE hostaway.webhook_events SET status = 'ignored' "
               "WHERE status IN ('unknown_event', 'unknown_account', 'unparseable')")
    op.create_check_constraint(op.f('ck_webhook_events_status'), 'webhook_events', sa.text(OLD_STATUSES),
                               schema='hostaway')
