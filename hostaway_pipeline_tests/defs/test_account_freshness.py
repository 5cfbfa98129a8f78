"""Per-account freshness checks: one stale account fails them even when others are fresh."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest
import sqlalchemy as sa

from hostaway_pipeline.defs.account_freshness import (
    ACCOUNT_FRESHNESS_CHECKS,
    STALE_AFTER,
    account_freshness,
    account_freshness_job,
    stale_accounts,
)
from hostaway_pipeline.defs.assets import HOSTAWAY_ASSETS
from hostaway_pipeline.defs.partitions import ACCOUNT_PARTITIONS_NAME, partition_key
from hostaway_pipeline.defs.resources import HostawayApiResource, HostawayRateLimiterResource, WarehouseResource
from hostaway_pipeline.storage import tables
from hostaway_pipeline.storage.account_registry import Account

RESERVATIONS = dg.AssetKey(["hostaway", "reservations"])


def _account(account_id: int, age: timedelta, enabled: bool = True) -> Account:
    created = datetime.now(UTC) - age
    return Account(account_id, None, enabled, created, created)


def _materialize(instance: dg.DagsterInstance, asset_key: dg.AssetKey, account_id: int) -> None:
    instance.report_runless_asset_event(dg.AssetMaterialization(asset_key, partition=partition_key(account_id)))


def test_stale_means_enabled_old_enough_and_not_materialized_recently():
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(ACCOUNT_PARTITIONS_NAME, [partition_key(a) for a in (1, 2, 3, 4)])
    accounts = [_account(1, timedelta(days=3)), _account(2, timedelta(days=3)),
                _account(3, timedelta(hours=2)), _account(4, timedelta(days=3), enabled=False)]
    _materialize(instance, RESERVATIONS, 2)
    now = datetime.now(UTC)
    # 1 never synced; 2 synced just now; 3 is too new to judge; 4 is disabled.
    assert stale_accounts(instance, RESERVATIONS, accounts, now) == {1: None}
    later = stale_accounts(instance, RESERVATIONS, accounts, now + STALE_AFTER + timedelta(minutes=1))
    assert set(later) == {1, 2, 3} and later[2] is not None


@pytest.fixture
def warehouse(engine, database_url, pipeline_settings_env) -> WarehouseResource:
    return WarehouseResource(database_url=database_url)


def _resources(warehouse: WarehouseResource) -> dict:
    """The Definitions' resource keys; the API is never called by these checks (nothing listens there)."""
    limiter = HostawayRateLimiterResource(warehouse=warehouse)
    return {"warehouse": warehouse, "hostaway_rate_limiter": limiter,
            "hostaway_api": HostawayApiResource(warehouse=warehouse, rate_limiter=limiter,
                                                base_url="http://127.0.0.1:9/v1")}


def _run_checks(warehouse: WarehouseResource, instance: dg.DagsterInstance) -> dict[str, dg.AssetCheckEvaluation]:
    definitions = dg.Definitions(assets=[*HOSTAWAY_ASSETS, account_freshness], asset_checks=ACCOUNT_FRESHNESS_CHECKS,
                                 jobs=[account_freshness_job], resources=_resources(warehouse))
    result = definitions.resolve_job_def(account_freshness_job.name).execute_in_process(instance=instance)
    assert result.success
    return {e.check_name.removesuffix("_every_account_reconciled_within_a_day"): e
            for e in result.get_asset_check_evaluations()}


def test_the_freshness_job_fails_checks_naming_stale_accounts_and_passes_once_synced(warehouse, engine):
    instance = dg.DagsterInstance.ephemeral()
    for account_id in (71, 72):
        warehouse.accounts.add(account_id, f"secret-{account_id}")
        instance.add_dynamic_partitions(ACCOUNT_PARTITIONS_NAME, [partition_key(account_id)])
    with engine.begin() as connection:
        connection.execute(sa.update(tables.accounts).values(created_at=sa.func.now() - sa.text("interval '3 days'")))
    for asset in HOSTAWAY_ASSETS:
        _materialize(instance, asset.key, 71)

    evaluations = _run_checks(warehouse, instance)
    assert set(evaluations) == {"listings", "reservations", "conversations", "messages"}
    for evaluation in evaluations.values():
        assert not evaluation.passed
        assert evaluation.metadata["stale_account_ids"].value == [72]
        assert "72 (never)" in (evaluation.description or "")

    for asset in HOSTAWAY_ASSETS:
        _materialize(instance, asset.key, 72)
    assert all(e.passed for e in _run_checks(warehouse, instance).values())


def test_the_check_description_names_how_many_missed_26_hours_stalest_first_and_how_many_are_not_shown():
    from hostaway_pipeline.defs.account_freshness import describe_stale

    stale: dict[int, datetime | None] = {5: datetime(2026, 11, 27, 1, 0, tzinfo=UTC), 3: None,
                                         4: datetime(2026, 11, 26, 1, 0, tzinfo=UTC)}
    assert describe_stale(stale, 10) == ("3 of 10 enabled accounts not reconciled in the last 26 h, stalest first: "
                                         "3 (never), 4 (last 2026-11-26 01:00 UTC), 5 (last 2026-11-27 01:00 UTC)")
    assert describe_stale(stale, 10, shown=1).endswith("3 (never) and 2 more (metadata stale_account_ids)")
