"""rate limit recent slots: an IP bucket remembers its recent slots so a 429 can be blamed on the account or
the IP; and pauses stored uncapped by earlier versions (Retry-After: 86400, a date in 2999) are dropped

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

RECENT_SLOTS_COMMENT = ("IP buckets: the slots granted over the last two windows, oldest first (empty for account "
                        "buckets); a 429 counts them to tell the account's limit from the IP's")
PAUSED_UNTIL_COMMENT = ("No call on this bucket before this instant (database clock): set by a 429, at most the "
                        "maximum pause ahead; honoured by every reservation and re-checked by callers whose booked "
                        "slot came after a wait; NULL when never paused")
OLD_PAUSED_UNTIL_COMMENT = ("No call on this bucket before this instant (database clock): set by a 429, checked by "
                            "callers whose booked slot came after a wait; NULL when never paused")
# The default maximum pause (HOSTAWAY_RATE_LIMIT_MAX_PAUSE). Earlier versions pushed next_free_at to the end
# of a pause as well, so a schedule that far ahead is such a pause too: the bucket is free again now.
MAX_PAUSE = "interval '120 seconds'"


def upgrade() -> None:
    op.add_column('rate_limit_buckets', sa.Column('recent_slots', postgresql.ARRAY(sa.DateTime(timezone=True)),
                                                  server_default='{}', nullable=False,
                                                  comment=RECENT_SLOTS_COMMENT), schema='hostaway')
    op.alter_column('rate_limit_buckets', 'paused_until', existing_type=sa.DateTime(timezone=True),
                    existing_nullable=True, comment=PAUSED_UNTIL_COMMENT,
                    existing_comment=OLD_PAUSED_UNTIL_COMMENT, schema='hostaway')
    op.execute(f"UPDATE hostaway.rate_limit_buckets SET paused_until = NULL WHERE paused_until > now() + {MAX_PAUSE}")
    op.execute(f"UPDATE hostaway.rate_limit_buckets SET next_free_at = now() WHERE next_free_at > now() + {MAX_PAUSE}")


def downgrade() -> None:
    op.alter_column('rate_limit_buckets', 'paused_until', existing_type=sa.DateTime(timezone=True),
                    existing_nullable=True, comment=OLD_PAUSED_UNTIL_COMMENT,
                    existing_comment=PAUSED_UNTIL_COMMENT, schema='hostaway')
    op.drop_column('rate_limit_buckets', 'recent_slots', schema='hostaway')
