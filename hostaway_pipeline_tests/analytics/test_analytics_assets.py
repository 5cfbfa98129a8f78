"""The analytics assets through Dagster: materialized after a real reconciliation (stand-in over sockets, real
Postgres), their rows read back and checked against SQL over the hostaway tables; re-materializing replaces an
account's rows only; and a core materialization alone makes the automation request that account's analytics."""

from __future__ import annotations

import dagster as dg
import pytest
import sqlalchemy as sa

from hostaway_pipeline.analysis import read_table
from hostaway_pipeline.analytics import tables as analytics_tables
from hostaway_pipeline.defs.analytics_assets import ANALYTICS_ASSETS, ANALYTICS_GROUP, AUTOMATION_SENSOR_NAME
from hostaway_pipeline.defs.assets import HOSTAWAY_ASSETS
from hostaway_pipeline.defs.partitions import ACCOUNT_PARTITIONS_NAME, account_partitions, partition_key
from hostaway_pipeline.simulator.server import SimulatorServer
from hostaway_pipeline_tests.pipeline_harness import TIME_SCALE, build_harness

ACCOUNT = 41001
OTHER_ACCOUNT = 41002
EMPTY_ACCOUNT = 41003


@pytest.fixture
def simulator():
    accounts = {ACCOUNT: 80, OTHER_ACCOUNT: 30, EMPTY_ACCOUNT: "empty"}
    with SimulatorServer(accounts=accounts, seed=5, time_scale=TIME_SCALE) as sim:
        yield sim


@pytest.fixture
def harness(engine, database_url, simulator, pipeline_settings_env):
    with engine.begin() as connection:
        for table in analytics_tables.ANALYTICS_TABLES.values():
            connection.execute(sa.delete(table))
    harness = build_harness(database_url, simulator)
    harness.register(ACCOUNT)
    harness.register(OTHER_ACCOUNT)
    harness.register(EMPTY_ACCOUNT)
    return harness


def _materialize_analytics(harness, account_id: int) -> dg.ExecuteInProcessResult:
    return dg.materialize([*HOSTAWAY_ASSETS, *ANALYTICS_ASSETS], partition_key=partition_key(account_id),
                          resources=harness.resources, instance=harness.instance,
                          selection=dg.AssetSelection.groups(ANALYTICS_GROUP))


def _metadata(result: dg.ExecuteInProcessResult, name: str) -> dict:
    for event in result.get_asset_materialization_events():
        materialization = event.step_materialization_data.materialization
        if materialization.asset_key == dg.AssetKey(["hostaway_analytics", name]):
            return {key: value.value for key, value in materialization.metadata.items()}
    raise AssertionError(f"{name} was not materialized")


def _scalar(engine, sql: str, **params) -> object:
    with engine.connect() as connection:
        return connection.execute(sa.text(sql), params).scalar_one()


def test_materialized_analytics_agree_with_sql_over_the_synced_tables(harness, engine):
    assert harness.materialize(ACCOUNT).success
    result = _materialize_analytics(harness, ACCOUNT)
    assert result.success

    expected_nights = _scalar(engine, """
        SELECT coalesce(sum(departure_date - arrival_date), 0) FROM hostaway.reservations
        WHERE account_id = :a AND deleted_at IS NULL AND status IN ('new', 'modified', 'ownerStay')
          AND departure_date > arrival_date""", a=ACCOUNT)
    nights = read_table("reservation_nights", [ACCOUNT], engine=engine)
    assert expected_nights and len(nights) == expected_nights
    metadata = _metadata(result, "reservation_nights")
    assert metadata["dagster/row_count"] == expected_nights
    assert metadata["dagster/table_name"] == "hostaway_analytics.reservation_nights"
    assert [c.name for c in metadata["dagster/column_schema"].columns] == [
        c.name for c in analytics_tables.reservation_nights.columns]

    # Every guest stay's price is in revenue_monthly exactly once, per currency.
    expected_revenue = dict(_rows(engine, """
        SELECT currency, sum(total_price) FROM hostaway.reservations
        WHERE account_id = :a AND deleted_at IS NULL AND status IN ('new', 'modified')
          AND departure_date > arrival_date GROUP BY currency""", a=ACCOUNT))
    revenue = read_table("revenue_monthly", [ACCOUNT], engine=engine)
    by_currency = revenue.groupby("currency")["revenue"].sum().round(2).to_dict()
    assert by_currency == {currency: float(total) for currency, total in expected_revenue.items()}
    expected_cancelled = _scalar(engine, """SELECT count(*) FROM hostaway.reservations
        WHERE account_id = :a AND deleted_at IS NULL AND status = 'cancelled'""", a=ACCOUNT)
    assert revenue["cancelled_reservations"].sum() == expected_cancelled

    occupancy = read_table("listing_occupancy_monthly", [ACCOUNT], engine=engine)
    guest_nights = int((nights["stay_type"] == "guest").sum())
    assert 0 < occupancy["guest_nights"].sum() <= guest_nights
    assert (occupancy["guest_nights"] + occupancy["owner_nights"] <= occupancy["days_in_month"]).all()

    incoming = _scalar(engine, """SELECT count(*) FROM hostaway.messages WHERE account_id = :a
        AND deleted_at IS NULL AND is_incoming AND sent_at IS NOT NULL""", a=ACCOUNT)
    times = read_table("guest_response_times", [ACCOUNT], engine=engine)
    assert incoming and len(times) == incoming
    answered = times[times["reply_at"].notna()]
    assert len(answered) and (answered["reply_at"] > answered["guest_message_at"]).all()
    assert str(times["guest_message_at"].dtype) == "datetime64[us, UTC]"


def _rows(engine, sql: str, **params) -> list:
    with engine.connect() as connection:
        return list(connection.execute(sa.text(sql), params))


def test_an_account_with_nothing_booked_materializes_green_with_zero_rows(harness, engine):
    assert harness.materialize(EMPTY_ACCOUNT).success
    result = _materialize_analytics(harness, EMPTY_ACCOUNT)
    assert result.success
    for name in analytics_tables.ANALYTICS_TABLES:
        assert _metadata(result, name)["dagster/row_count"] == 0
        assert read_table(name, [EMPTY_ACCOUNT], engine=engine).empty


def _rows_per_account(engine) -> dict[str, dict[int, int]]:
    return {name: read_table(name, engine=engine).groupby("account_id").size().to_dict()
            for name in analytics_tables.ANALYTICS_TABLES}


def test_rematerializing_replaces_only_that_accounts_rows(harness, engine):
    assert harness.materialize(ACCOUNT).success
    assert harness.materialize(OTHER_ACCOUNT).success
    assert _materialize_analytics(harness, ACCOUNT).success
    assert _materialize_analytics(harness, OTHER_ACCOUNT).success
    before = _rows_per_account(engine)
    assert all(set(counts) == {ACCOUNT, OTHER_ACCOUNT} for counts in before.values()), before

    # A confirmed stay becomes cancelled in hostaway.reservations: the next materialization drops its nights.
    with engine.begin() as connection:
        reservation_id = connection.execute(sa.text("""
            SELECT id FROM hostaway.reservations WHERE account_id = :a AND deleted_at IS NULL
              AND status IN ('new', 'modified') AND departure_date > arrival_date ORDER BY id LIMIT 1"""),
            {"a": ACCOUNT}).scalar_one()
        stay_nights = connection.execute(sa.text("""SELECT departure_date - arrival_date FROM hostaway.reservations
            WHERE account_id = :a AND id = :r"""), {"a": ACCOUNT, "r": reservation_id}).scalar_one()
        connection.execute(sa.text("UPDATE hostaway.reservations SET status = 'cancelled' "
                                   "WHERE account_id = :a AND id = :r"), {"a": ACCOUNT, "r": reservation_id})
    assert _materialize_analytics(harness, ACCOUNT).success
    after = _rows_per_account(engine)
    assert after["reservation_nights"][ACCOUNT] == before["reservation_nights"][ACCOUNT] - stay_nights
    assert {name: counts[OTHER_ACCOUNT] for name, counts in after.items()} == {
        name: counts[OTHER_ACCOUNT] for name, counts in before.items()}
    assert reservation_id not in set(read_table("reservation_nights", [ACCOUNT], engine=engine)["reservation_id"])


def test_a_core_materialization_alone_requests_that_accounts_analytics():
    from hostaway_pipeline.definitions import defs  # the deployed Definitions, automation sensor included

    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(ACCOUNT_PARTITIONS_NAME, [partition_key(ACCOUNT), partition_key(OTHER_ACCOUNT)])

    result = dg.evaluate_automation_conditions(defs=defs, instance=instance)
    assert result.total_requested == 0  # nothing synced yet: never computed from missing inputs

    for name in ("listings", "reservations", "conversations", "messages"):
        instance.report_runless_asset_event(dg.AssetMaterialization(
            asset_key=dg.AssetKey(["hostaway", name]), partition=partition_key(ACCOUNT)))
    result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=result.cursor)
    for name in analytics_tables.ANALYTICS_TABLES:
        assert result.get_requested_partitions(dg.AssetKey(["hostaway_analytics", name])) == {partition_key(ACCOUNT)}
    assert result.total_requested == len(analytics_tables.ANALYTICS_TABLES)  # and no core asset, no other account

    result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=result.cursor)
    assert result.total_requested == 0  # handled: not requested again until the inputs change again

    # The daemon evaluates these conditions only through a running sensor: ours starts RUNNING, so the
    # default one (STOPPED until toggled in the UI) is not needed and not created.
    sensors = {sensor.name: sensor for sensor in defs.get_repository_def().sensor_defs}
    assert sensors[AUTOMATION_SENSOR_NAME].default_status == dg.DefaultSensorStatus.RUNNING
    assert "default_automation_condition_sensor" not in sensors



def test_no_analytics_rebuild_from_the_input_a_failed_reconciliation_step_left():
    from hostaway_pipeline.definitions import defs

    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(ACCOUNT_PARTITIONS_NAME, [partition_key(ACCOUNT)])
    result = dg.evaluate_automation_conditions(defs=defs, instance=instance)
    for name in ("listings", "conversations", "messages"):
        instance.report_runless_asset_event(dg.AssetMaterialization(
            asset_key=dg.AssetKey(["hostaway", name]), partition=partition_key(ACCOUNT)))

    @dg.asset(key=["hostaway", "reservations"], partitions_def=account_partitions)
    def short_read() -> None:  # what a reconciliation whose reservations read came up short records
        raise RuntimeError("account 4242 reservations: read 700 of 787")

    assert not dg.materialize([short_read], partition_key=partition_key(ACCOUNT), instance=instance,
                              raise_on_error=False).success
    result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=result.cursor)
    # Listings and messages moved, but reservations' last try failed: nothing built on reservations is
    # requested; response times (messages and listings only) are.
    requested = {key.path[-1] for key in (dg.AssetKey(["hostaway_analytics", name])
                                         for name in analytics_tables.ANALYTICS_TABLES)
                 if result.get_requested_partitions(key)}
    assert requested == {"guest_response_times"}

    instance.report_runless_asset_event(dg.AssetMaterialization(
        asset_key=dg.AssetKey(["hostaway", "reservations"]), partition=partition_key(ACCOUNT)))
    result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=result.cursor)
    assert result.get_requested_partitions(dg.AssetKey(["hostaway_analytics", "reservation_nights"])) == {
        partition_key(ACCOUNT)}
