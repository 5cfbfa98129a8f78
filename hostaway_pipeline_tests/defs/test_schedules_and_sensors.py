"""The account partition sensor and the API pool limit, evaluated as Dagster would.

The daily schedule is gone: reconciliation is paced by a sensor (``test_reconciliation_pacing.py``).
"""

from __future__ import annotations

import dagster as dg
import pytest

from hostaway_pipeline.defs.partitions import ACCOUNT_PARTITIONS_NAME
from hostaway_pipeline.defs.resources import WarehouseResource
from hostaway_pipeline.defs.sensors import account_partitions_sensor


@pytest.fixture
def warehouse(engine, database_url, pipeline_settings_env) -> WarehouseResource:
    return WarehouseResource(database_url=database_url)


@pytest.fixture
def instance():
    with dg.instance_for_test() as instance:
        yield instance


def test_the_sensor_adds_enabled_accounts_and_never_deletes_a_partition(instance, warehouse):
    for account_id in (201, 202, 203):
        warehouse.accounts.add(account_id, "secret")
    instance.add_dynamic_partitions(ACCOUNT_PARTITIONS_NAME, ["202", "299"])  # 299 was removed from the registry
    warehouse.accounts.set_enabled(202, False)
    warehouse.accounts.set_enabled(203, False)  # disabled before it ever had a partition

    with dg.build_sensor_context(instance=instance, resources={"warehouse": warehouse}) as context:
        result = account_partitions_sensor(context)
    requests = {type(r).__name__: sorted(r.partition_keys) for r in result.dynamic_partitions_requests}
    assert requests == {"AddDynamicPartitionsRequest": ["201"]}


def test_the_sensor_applies_its_requests_through_a_tick(instance, warehouse):
    warehouse.accounts.add(301, "secret")
    with dg.build_sensor_context(instance=instance, resources={"warehouse": warehouse}) as context:
        data = account_partitions_sensor.evaluate_tick(context)
    for request in data.dynamic_partitions_requests:
        instance.add_dynamic_partitions(ACCOUNT_PARTITIONS_NAME, list(request.partition_keys))
    assert instance.get_dynamic_partitions(ACCOUNT_PARTITIONS_NAME) == ["301"]
    with dg.build_sensor_context(instance=instance, resources={"warehouse": warehouse}) as context:
        second = account_partitions_sensor.evaluate_tick(context)
    assert second.skip_message and "every enabled account has a partition" in second.skip_message


def test_the_api_pool_limit_is_set_once_and_an_explicit_one_is_kept(instance):
    from hostaway_pipeline.defs.pools import API_POOL, ensure_api_pool_limit

    assert ensure_api_pool_limit(instance, 4) == 4
    assert instance.event_log_storage.get_concurrency_info(API_POOL).slot_count == 4
    instance.event_log_storage.set_concurrency_slots(API_POOL, 2)
    assert ensure_api_pool_limit(instance, 4) == 2
