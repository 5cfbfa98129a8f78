"""Converters raise ValueError for what they cannot read; the writer turns that into one NULL, not a failure."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from hostaway_pipeline.settings import ALWAYS_REDACTED_FIELDS
from hostaway_pipeline.storage import tables
from hostaway_pipeline.storage.entity_writer import EntityWriter
from hostaway_pipeline.storage.redaction import Redactor
from hostaway_pipeline.storage.source_values import to_decimal, to_timestamp

ACCOUNT = 4343


@pytest.mark.parametrize("value", ["12,5", "twelve", "1.2.3", "", None, "NaN", "Infinity", float("inf")])
def test_to_decimal_raises_value_error_for_what_it_cannot_read(value):
    if value in ("", None):
        assert to_decimal(value) is None
        return
    with pytest.raises(ValueError, match="not a number"):
        to_decimal(value)


@pytest.mark.parametrize(("text", "utc"), [
    ("2026-03-01 12:30:00", datetime(2026, 3, 1, 12, 30, tzinfo=UTC)),  # Hostaway's form: UTC without zone
    ("2026-03-01", datetime(2026, 3, 1, tzinfo=UTC)),
    ("2026-03-01T12:30:00Z", datetime(2026, 3, 1, 12, 30, tzinfo=UTC)),
    ("2026-03-01 12:30:00+02:00", datetime(2026, 3, 1, 10, 30, tzinfo=UTC)),
    ("2026-03-01T00:30:00-05:30", datetime(2026, 3, 1, 6, 0, tzinfo=UTC)),
    ("2026-03-01 12:30:00.250", datetime(2026, 3, 1, 12, 30, 0, 250000, tzinfo=UTC)),
])
def test_a_timestamp_with_a_zone_is_converted_to_utc_and_one_without_is_utc(text, utc):
    converted = to_timestamp(text)
    assert converted == utc and converted.utcoffset().total_seconds() == 0


@pytest.mark.parametrize("text", ["0000-00-00 00:00:00", "2026-02-30 10:00:00", "yesterday", "2026-03-01 25:00:00",
                                  "0001-01-01 00:00:00+05:00"])  # the last is before year 1 once in UTC
def test_an_unreadable_timestamp_raises_value_error(text):
    with pytest.raises(ValueError):
        to_timestamp(text)


def test_a_comma_decimal_costs_that_amount_only_and_is_named_by_id_and_field(engine):
    writer = EntityWriter(engine, Redactor(ALWAYS_REDACTED_FIELDS))
    good = {"id": 1, "listingMapId": 7, "totalPrice": "12.5", "updatedOn": "2026-11-01 10:00:00"}
    bad = {**good, "id": 2, "totalPrice": "12,5"}
    counts = writer.write("reservations", ACCOUNT, [good, bad])
    assert counts.inserted == 2 and counts.values_quarantined == 1
    assert counts.quarantined_examples == ("id 2 totalPrice: unreadable as numeric(14, 2)",)  # never '12,5'
    table = tables.ENTITY_TABLES["reservations"].table
    with engine.connect() as connection:
        rows = {row.id: row for row in connection.execute(sa.select(table).where(table.c.account_id == ACCOUNT))}
    assert rows[2].total_price is None and rows[2].raw["totalPrice"] == "12,5" and rows[2].listing_id == 7
    assert str(rows[1].total_price) == "12.50"
