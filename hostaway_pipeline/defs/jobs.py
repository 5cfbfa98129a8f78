"""Jobs: the per-account reconciliation (all four assets and their checks for one partition)."""

from __future__ import annotations

import dagster as dg

from hostaway_pipeline.defs.assets import HOSTAWAY_ASSETS
from hostaway_pipeline.defs.checks import HOSTAWAY_CHECKS
from hostaway_pipeline.defs.partitions import account_partitions

reconcile_account_job = dg.define_asset_job(
    name="reconcile_hostaway_account",
    # The partition's own checks; the all-accounts freshness checks run in their own job.
    selection=dg.AssetSelection.assets(*HOSTAWAY_ASSETS).without_checks() | dg.AssetSelection.checks(*HOSTAWAY_CHECKS),
    partitions_def=account_partitions,
    description="Full reconciliation of one Hostaway account (messages only for conversations that moved).",
    tags={"dagster/priority": "-1"},  # behind interactive runs in the queue
)
