"""rate limit paused until: a 429 pauses a bucket until this instant, and callers check it before sending

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 05:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

COMMENT = ("No call on this bucket before this instant (database clock): set by a 429, checked by callers "
           "whose booked slot came after a wait; NULL when never paused")


def upgrade() -> None:
    op.add_column('rate_limit_buckets', sa.Column('paused_until', sa.DateTime(timezone=True), nullable=True,
                                                  comment=COMMENT), schema='hostaway')


def downgrade() -> None:
    op.drop_column('rate_limit_buckets', 'paused_until', schema='hostaway')
