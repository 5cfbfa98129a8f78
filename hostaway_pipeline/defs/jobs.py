"""Jobs: the per-account reconciliation (all four assets and their own checks for one partition).

One process per run: a reconciliation waits on the API (about 45 calls paced by the shared limiter), so
the in-process executor runs its steps one after another in the run worker instead of starting a
process per step. Each API-calling step still takes a ``hostaway_api`` pool slot while it runs.
"""

from __future__ import annotations

import dagster as dg

from hostaway_pipeline.defs.assets import HOSTAWAY_ASSETS
from hostaway_pipeline.defs.checks import HOSTAWAY_CHECKS
from hostaway_pipeline.defs.partitions import account_partitions

reconcile_account_job = dg.define_asset_job(
    name="reconcile_hostaway_account",
    # The partition's own checks; the all-accounts freshness checks are on another asset, in their own job.
    selection=dg.AssetSelection.assets(*HOSTAWAY_ASSETS).without_checks() | dg.AssetSelection.checks(*HOSTAWAY_CHECKS),
    partitions_def=account_partitions,
    description="Full reconciliation of one Hostaway account (messages only for conversations that moved).",
    tags={"dagster/priority": "-1"},  # behind interactive runs in the queue
    executor_def=dg.in_process_executor,
)
