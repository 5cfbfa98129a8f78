"""Sensors: give every enabled account a partition, so accounts added by the CLI or in SQL appear.

Add only: a disabled or removed account keeps its partition (see ``partitions.py``), because Dagster
fails every backfill that targets a partition deleted under it.
"""

import dagster as dg

from hostaway_pipeline.defs.partitions import account_partitions, missing_partition_keys
from hostaway_pipeline.defs.resources import WarehouseResource


@dg.sensor(
    name="hostaway_account_partitions",
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Adds a partition for each enabled account in hostaway.accounts (CLI or SQL). Never "
                "removes one: disabled and removed accounts keep theirs, are skipped by the schedule and "
                "refused by the assets, so a backfill that targets them still runs its other accounts.",
)
def account_partitions_sensor(context: dg.SensorEvaluationContext, warehouse: WarehouseResource):
    to_add = missing_partition_keys(context.instance, warehouse.accounts.enabled_account_ids())
    if not to_add:
        return dg.SkipReason("every enabled account has a partition")
    context.log.info(f"partitions added for accounts {', '.join(to_add)}")
    return dg.SensorResult(dynamic_partitions_requests=[account_partitions.build_add_request(to_add)])
