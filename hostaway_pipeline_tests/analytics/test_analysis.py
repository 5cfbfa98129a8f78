"""``analysis.read_table``: live rows of the configured database, typed, and a clear error for unknown names."""

from __future__ import annotations

import pandas as pd
import pytest
import sqlalchemy as sa

from hostaway_pipeline.analysis import UnknownTableError, read_table, resolve_table
from hostaway_pipeline.analytics import tables as analytics_tables
from hostaway_pipeline.storage import tables

ACCOUNT = 42001


@pytest.fixture
def configured_environment(monkeypatch, tmp_path, pipeline_settings_env):
    """The CLI's environment resolution, pointed at the test database; whatever it exports is undone after."""
    monkeypatch.setenv("HOSTAWAY_PIPELINE_HOME", str(tmp_path))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.delenv("HOSTAWAY_DAGSTER_DATABASE_URL", raising=False)


def test_an_unknown_table_name_says_which_tables_exist():
    with pytest.raises(UnknownTableError) as error:
        resolve_table("bookings")
    message = str(error.value)
    assert "'bookings'" in message
    assert "reservations" in message and "revenue_monthly" in message
    with pytest.raises(UnknownTableError):
        resolve_table("accounts")  # registry and token tables are not analyst tables


def test_bare_and_schema_qualified_names_resolve():
    assert resolve_table("reservations") is tables.reservations.table
    assert resolve_table("hostaway.reservations") is tables.reservations.table
    assert resolve_table("hostaway_analytics.revenue_monthly") is analytics_tables.revenue_monthly
    assert resolve_table("guest_response_times") is analytics_tables.guest_response_times


def test_read_table_gives_live_rows_of_the_configured_database_with_typed_zone_aware_columns(
        configured_environment, engine):
    table = tables.reservations.table
    row = {"account_id": ACCOUNT, "listing_id": 5, "status": "new", "arrival_date": "2026-01-30",
           "departure_date": "2026-02-02", "total_price": "100.50", "currency": "EUR", "is_paid": True,
           "updated_on": "2026-01-02 03:04:05+00", "raw": {"id": 1, "currency": "EUR"}}
    with engine.begin() as connection:
        connection.execute(sa.insert(table), [{**row, "id": 1}, {**row, "id": 2},
                                              {**row, "id": 3, "account_id": ACCOUNT + 1}])
        connection.execute(sa.update(table).where(table.c.id == 2).values(deleted_at=sa.func.now()))

    frame = read_table("reservations", account_ids=[ACCOUNT])
    assert frame["id"].tolist() == [1]  # the soft-deleted row and the other account are left out
    assert sorted(read_table("reservations")["id"]) == [1, 3]
    assert str(frame["updated_on"].dtype) == "datetime64[us, UTC]"
    assert frame["updated_on"].iloc[0] == pd.Timestamp("2026-01-02 03:04:05", tz="UTC")
    assert frame["arrival_date"].iloc[0] == pd.Timestamp("2026-01-30")
    assert str(frame["arrival_date"].dtype) == "datetime64[us]"
    assert str(frame["listing_id"].dtype) == "Int64" and str(frame["is_paid"].dtype) == "boolean"
    assert frame["total_price"].iloc[0] == 100.50 and str(frame["total_price"].dtype) == "float64"
    assert str(frame["currency"].dtype) == "string"
    assert frame["raw"].iloc[0] == {"id": 1, "currency": "EUR"}
    assert pd.isna(frame["nights"].iloc[0])
