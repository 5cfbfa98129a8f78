"""Sensors: keep the account partitions equal to the enabled accounts in ``hostaway.accounts``."""

import dagster as dg

from hostaway_pipeline.defs.partitions import ACCOUNT_PARTITIONS_NAME, account_partitions, partition_key
from hostaway_pipeline.defs.resources import WarehouseResource


@dg.sensor(
    name="hostaway_account_partitions",
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Adds a partition for each enabled account and removes partitions of disabled or removed "
                "ones, so accounts added with the CLI or straight in SQL appear in the UI.",
)
def account_partitions_sensor(context: dg.SensorEvaluationContext, warehouse: WarehouseResource):
    wanted = {partition_key(account_id) for account_id in warehouse.accounts.enabled_account_ids()}
    present = set(context.instance.get_dynamic_partitions(ACCOUNT_PARTITIONS_NAME))
    to_add, to_delete = sorted(wanted - present), sorted(present - wanted)
    if not to_add and not to_delete:
        return dg.SkipReason(f"{len(present)} account partitions already match the registry")
    requests: list[dg.AddDynamicPartitionsRequest | dg.DeleteDynamicPartitionsRequest] = []
    if to_add:
        requests.append(account_partitions.build_add_request(to_add))
    if to_delete:
        requests.append(account_partitions.build_delete_request(to_delete))
    context.log.info(f"partitions added {to_add}, removed {to_delete}")
    return dg.SensorResult(dynamic_partitions_requests=requests)
