"""Jobs: the per-account reconciliation (all four assets and their checks for one partition)."""

from __future__ import annotations

import dagster as dg

from hostaway_pipeline.defs.assets import HOSTAWAY_ASSETS
from hostaway_pipeline.defs.partitions import account_partitions

reconcile_account_job = dg.define_asset_job(
    name="reconcile_hostaway_account",
    selection=dg.AssetSelection.assets(*HOSTAWAY_ASSETS),
    partitions_def=account_partitions,
    description="Full reconciliation of one Hostaway account (messages only for conversations that moved).",
    tags={"dagster/priority": "-1"},  # behind interactive runs in the queue
)
