"""sync state per account and resource: watermark, last full and incremental reads, last counts

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29 14:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'sync_state',
        sa.Column('account_id', sa.BigInteger(), autoincrement=False, nullable=False, comment='Hostaway account id'),
        sa.Column('resource', sa.Text(), nullable=False, comment='listings, reservations or conversations'),
        sa.Column('watermark', sa.DateTime(timezone=True), nullable=True,
                  comment="Upper bound of the last read proved complete, on the API's clock (in UTC): the newest "
                          "change stamp it served, never past its newest updatedOn; the next incremental read takes "
                          "every change stamped at or after watermark minus the overlap. NULL: the next read is a "
                          "full listing (only reservations are read incrementally)"),
        sa.Column('last_full_read_at', sa.DateTime(timezone=True), nullable=True,
                  comment='When the last complete full listing began (database clock); deletions are proved only '
                          'there'),
        sa.Column('last_incremental_read_at', sa.DateTime(timezone=True), nullable=True,
                  comment='When the last complete incremental read began (database clock)'),
        sa.Column('last_read_kind', sa.Text(), nullable=True,
                  comment='full or incremental: the kind of the last complete read'),
        sa.Column('last_read_objects', sa.Integer(), nullable=True,
                  comment='Distinct objects the last complete read held'),
        sa.Column('last_api_count', sa.Integer(), nullable=True,
                  comment="The API's count of all the account's objects at that read"),
        sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False,
                  comment='When this state was last written, in the transaction of the rows it vouches for'),
        sa.CheckConstraint("last_read_kind IN ('full', 'incremental')",
                           name=op.f('ck_sync_state_last_read_kind')),
        sa.PrimaryKeyConstraint('account_id', 'resource', name=op.f('pk_sync_state')),
        schema='hostaway',
        comment='Per account and resource: what the last complete reads proved; written only with their rows, never '
                'by a partial read',
    )


def downgrade() -> None:
    op.drop_table('sync_state', schema='hostaway')
