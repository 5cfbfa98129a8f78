"""accounts.egress_pool: the egress pool (IP budget and worker group) each account's calls go through

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Every existing account joins pool 'default', the pool of processes without HOSTAWAY_EGRESS_ID.
    op.add_column('accounts', sa.Column(
        'egress_pool', sa.Text(), server_default='default', nullable=False,
        comment="Egress pool whose IP sends this account's calls: only workers with this HOSTAWAY_EGRESS_ID call "
                "the API for it, booking that pool's IP budget; runs carry it as tag hostaway/egress",
    ), schema='hostaway')
    op.create_check_constraint(op.f('ck_accounts_egress_pool'), 'accounts', "egress_pool ~ '^[!-~]{1,100}$'",
                               schema='hostaway')


def downgrade() -> None:
    op.drop_constraint(op.f('ck_accounts_egress_pool'), 'accounts', schema='hostaway', type_='check')
    op.drop_column('accounts', 'egress_pool', schema='hostaway')
