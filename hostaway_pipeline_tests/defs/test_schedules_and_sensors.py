"""The daily reconciliation schedule and the account partition sensor, evaluated as Dagster would."""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg
import pytest

from hostaway_pipeline.definitions import defs
from hostaway_pipeline.defs.partitions import ACCOUNT_PARTITIONS_NAME
from hostaway_pipeline.defs.resources import WarehouseResource
from hostaway_pipeline.defs.schedules import build_daily_reconciliation_schedule, daily_reconciliation_schedule
from hostaway_pipeline.defs.sensors import account_partitions_sensor


@pytest.fixture
def warehouse(engine, database_url, pipeline_settings_env) -> WarehouseResource:
    return WarehouseResource(database_url=database_url)


@pytest.fixture
def instance():
    with dg.instance_for_test() as instance:
        yield instance


def evaluate_schedule(instance, warehouse, when: datetime, schedule=daily_reconciliation_schedule):
    with dg.build_schedule_context(instance=instance, scheduled_execution_time=when,
                                   resources={"warehouse": warehouse},
                                   repository_def=defs.get_repository_def()) as context:
        return schedule.evaluate_tick(context)


def test_the_schedule_yields_one_request_per_enabled_account_with_a_stable_run_key(instance, warehouse):
    for account_id in (101, 102, 103):
        warehouse.accounts.add(account_id, "secret")
    warehouse.accounts.set_enabled(102, False)
    instance.add_dynamic_partitions(ACCOUNT_PARTITIONS_NAME, ["101", "103"])

    day = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)
    requests = evaluate_schedule(instance, warehouse, day).run_requests
    assert [(r.partition_key, r.run_key) for r in requests] == [
        ("101", "reconcile-2026-11-28-101"), ("103", "reconcile-2026-11-28-103")]
    again = evaluate_schedule(instance, warehouse, day).run_requests
    assert [r.run_key for r in again] == [r.run_key for r in requests]
    next_day = evaluate_schedule(instance, warehouse, datetime(2026, 11, 29, 2, 0, tzinfo=UTC)).run_requests
    assert {r.run_key for r in next_day}.isdisjoint({r.run_key for r in requests})


def test_the_schedule_skips_when_there_are_no_enabled_accounts(instance, warehouse):
    result = evaluate_schedule(instance, warehouse, datetime(2026, 11, 28, 2, 0, tzinfo=UTC))
    assert result.run_requests == [] and "no enabled accounts" in result.skip_message


def test_the_schedule_runs_at_two_utc_by_default_and_the_cron_is_configurable():
    assert daily_reconciliation_schedule.cron_schedule == "0 2 * * *"
    assert daily_reconciliation_schedule.execution_timezone == "UTC"
    assert build_daily_reconciliation_schedule("30 4 * * *").cron_schedule == "30 4 * * *"


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


def test_the_schedule_skips_disabled_and_removed_accounts_that_keep_their_partitions(instance, warehouse):
    for account_id in (401, 402, 403):
        warehouse.accounts.add(account_id, "secret")
    instance.add_dynamic_partitions(ACCOUNT_PARTITIONS_NAME, ["401", "402", "403"])
    warehouse.accounts.set_enabled(402, False)
    warehouse.accounts.remove(403)

    requests = evaluate_schedule(instance, warehouse, datetime(2026, 11, 28, 2, 0, tzinfo=UTC)).run_requests
    assert [r.partition_key for r in requests] == ["401"]
    assert {"hostaway/account_id": "401", "hostaway/trigger": "daily_reconciliation",
            "dagster/partition": "401"}.items() <= requests[0].tags.items()
    assert sorted(instance.get_dynamic_partitions(ACCOUNT_PARTITIONS_NAME)) == ["401", "402", "403"]


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
