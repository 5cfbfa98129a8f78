"""conversation message sync state

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 18:01:26.400786
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('conversation_message_sync',
    sa.Column('account_id', sa.BigInteger(), nullable=False, comment='Hostaway account id'),
    sa.Column('conversation_id', sa.BigInteger(), nullable=False, comment='Conversation whose messages were read'),
    sa.Column('marker', sa.Text(), nullable=False, comment="The conversation's change markers (messageSentOn, messageReceivedOn, latest-message preview) when its messages were last read in full; unchanged markers mean nothing to fetch"),
    sa.Column('messages_synced_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False, comment='When its messages were last read in full'),
    sa.PrimaryKeyConstraint('account_id', 'conversation_id', name=op.f('pk_conversation_message_sync')),
    schema='hostaway',
    comment='Per-conversation message sync state: lets a sync skip conversations with no new messages'
    )


def downgrade() -> None:
    op.drop_table('conversation_message_sync', schema='hostaway')
