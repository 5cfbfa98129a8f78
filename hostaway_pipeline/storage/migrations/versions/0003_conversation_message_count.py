"""conversation message count: the API's count of each conversation's messages at its last read

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 04:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

COMMENT = ("The API's count of the conversation's messages (scheduled included) when they were last read; "
           "summed over live conversations it is what hostaway.messages should hold")


def upgrade() -> None:
    op.add_column('conversation_message_sync', sa.Column('api_message_count', sa.Integer(), nullable=True,
                                                         comment=COMMENT), schema='hostaway')


def downgrade() -> None:
    op.drop_column('conversation_message_sync', 'api_message_count', schema='hostaway')
