"""The code server's definitions for the ``run_overhead`` benchmark: the pipeline as shipped, and a variant.

``in_process_defs`` is ``hostaway_pipeline.definitions.defs`` itself. ``multiprocess_defs`` is the same
assets, checks and resources with Dagster's default multiprocess executor (one process per step, as
runs executed before), so one benchmark can measure both through the same instance and run launcher.
Loaded only by the benchmark's ``dagster api grpc`` process, never by ``python -m benchmarks``.
"""

from __future__ import annotations

import dagster as dg

from hostaway_pipeline.definitions import build_resources
from hostaway_pipeline.definitions import defs as in_process_defs
from hostaway_pipeline.defs.account_freshness import ACCOUNT_FRESHNESS_CHECKS, account_freshness
from hostaway_pipeline.defs.assets import HOSTAWAY_ASSETS
from hostaway_pipeline.defs.checks import HOSTAWAY_CHECKS
from hostaway_pipeline.defs.jobs import reconcile_account_job

multiprocess_defs = dg.Definitions(
    assets=[*HOSTAWAY_ASSETS, account_freshness],
    asset_checks=[*HOSTAWAY_CHECKS, *ACCOUNT_FRESHNESS_CHECKS],
    jobs=[dg.define_asset_job(name=reconcile_account_job.name, selection=reconcile_account_job.selection,
                              partitions_def=reconcile_account_job.partitions_def, tags=reconcile_account_job.tags,
                              executor_def=dg.multiprocess_executor)],
    resources=build_resources(),
    executor=dg.multiprocess_executor,
)

__all__ = ["in_process_defs", "multiprocess_defs"]
