"""Row-count and freshness checks judge reconciliations only: webhook materializations are looked past."""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg

from hostaway_pipeline.defs.account_freshness import last_materialized
from hostaway_pipeline.defs.reconciliation_history import latest_reconciliation

KEY = dg.AssetKey(["hostaway", "reservations"])


@dg.op
def record(context) -> None:  # noqa: ANN001 - Dagster reads the annotation at runtime
    context.log_event(dg.AssetMaterialization(asset_key=KEY, partition="7", metadata={"reported_count": 12}))
    for _ in range(250):  # more than one page of newer webhook materializations
        context.log_event(dg.AssetMaterialization(asset_key=KEY, partition="7", metadata={"events": 1},
                                                  tags={"hostaway/source": "webhook"}))


@dg.job
def history_job() -> None:
    record()


def test_the_latest_reconciliation_is_found_behind_newer_webhook_materializations():
    instance = dg.DagsterInstance.ephemeral()
    before = datetime.now(UTC)
    assert history_job.execute_in_process(instance=instance).success
    found = latest_reconciliation(instance, KEY, "7")
    assert found is not None and found.asset_materialization.metadata["reported_count"].value == 12
    reconciled = last_materialized(instance, KEY, 7)
    assert reconciled is not None and reconciled >= before.replace(microsecond=0)
    assert latest_reconciliation(instance, KEY, "8") is None
