"""The bulk writer against real Postgres: dedupe, change detection, ordering, redaction, soft delete."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import sqlalchemy as sa

from hostaway_pipeline.settings import ALWAYS_REDACTED_FIELDS
from hostaway_pipeline.storage import tables
from hostaway_pipeline.storage.entity_writer import EntityWriter, WriteCounts
from hostaway_pipeline.storage.redaction import Redactor

ACCOUNT = 4242


def reservation(reservation_id: int, updated_on: str = "2026-11-01 10:00:00", **fields) -> dict:
    return {
        "id": reservation_id,
        "listingMapId": 7001,
        "channelName": "airbnbOfficial",
        "status": "new",
        "guestName": "Zoë 東京 🏖️",
        "arrivalDate": "2026-12-24",
        "departureDate": "2026-12-27",
        "nights": 3,
        "totalPrice": 512.5,
        "isPaid": 1,
        "currency": "EUR",
        "doorCode": "4711",
        "ccNumber": None,
        "cvc": None,
        "insertedOn": "2026-10-01 09:00:00",
        "updatedOn": updated_on,
        "latestActivityOn": updated_on,
        **fields,
    }


@pytest.fixture
def writer(engine) -> EntityWriter:
    return EntityWriter(engine, Redactor(ALWAYS_REDACTED_FIELDS | {"doorCode"}))


def stored(engine, table_name: str = "reservations") -> dict[int, sa.Row]:
    table = tables.ENTITY_TABLES[table_name].table
    with engine.connect() as connection:
        return {row.id: row for row in connection.execute(sa.select(table).where(table.c.account_id == ACCOUNT))}


def test_typed_columns_are_filled_from_the_source_object(writer, engine):
    writer.write("reservations", ACCOUNT, [reservation(1)])
    row = stored(engine)[1]
    assert row.listing_id == 7001
    assert row.arrival_date == date(2026, 12, 24)
    assert row.total_price == Decimal("512.50")
    assert row.is_paid is True
    assert row.guest_name == "Zoë 東京 🏖️"
    assert row.updated_on == datetime(2026, 11, 1, 10, 0, tzinfo=UTC)
    assert row.deleted_at is None


def test_a_batch_is_deduplicated_by_id_and_the_last_occurrence_wins(writer, engine):
    counts = writer.write("reservations", ACCOUNT, [reservation(1, status="new"), reservation(2),
                                                    reservation(1, status="modified")])
    assert counts == WriteCounts(inserted=2)
    assert stored(engine)[1].status == "modified"


def test_an_identical_rewrite_leaves_changed_at_untouched_but_marks_the_row_seen(writer, engine):
    writer.write("reservations", ACCOUNT, [reservation(1)])
    before = stored(engine)[1]
    counts = writer.write("reservations", ACCOUNT, [reservation(1)])
    after = stored(engine)[1]
    assert counts == WriteCounts(unchanged=1)
    assert after.changed_at == before.changed_at
    assert after.synced_at > before.synced_at


def test_a_changed_object_updates_content_and_changed_at(writer, engine):
    writer.write("reservations", ACCOUNT, [reservation(1)])
    before = stored(engine)[1]
    counts = writer.write("reservations", ACCOUNT, [reservation(1, "2026-11-02 10:00:00", status="cancelled")])
    after = stored(engine)[1]
    assert counts == WriteCounts(updated=1)
    assert after.status == "cancelled"
    assert after.changed_at > before.changed_at
    assert after.first_seen_at == before.first_seen_at


def test_an_older_object_never_replaces_a_newer_one(writer, engine):
    writer.write("reservations", ACCOUNT, [reservation(1, "2026-11-02 10:00:00", status="cancelled")])
    counts = writer.write("reservations", ACCOUNT, [reservation(1, "2026-11-01 10:00:00", status="new")])
    assert counts == WriteCounts(stale=1)
    assert stored(engine)[1].status == "cancelled"


def test_an_object_with_the_same_version_but_other_content_is_written(writer, engine):
    writer.write("reservations", ACCOUNT, [reservation(1, guestName="A")])
    counts = writer.write("reservations", ACCOUNT, [reservation(1, guestName="B")])
    assert counts == WriteCounts(updated=1)
    assert stored(engine)[1].guest_name == "B"


def test_card_fields_and_configured_fields_are_dropped_at_any_depth(writer, engine):
    conversation = {
        "id": 9,
        "reservationId": 1,
        "messageSentOn": "2026-11-01 10:00:00",
        "Reservation": reservation(1, ccNumber="4111111111111111", cvc="123"),
    }
    writer.write("conversations", ACCOUNT, [conversation])
    writer.write("reservations", ACCOUNT, [reservation(1, ccNumber="4111111111111111", cvc="123")])
    reservation_raw = stored(engine)[1].raw
    embedded_raw = stored(engine, "conversations")[9].raw["Reservation"]
    for raw in (reservation_raw, embedded_raw):
        assert not (set(raw) & (ALWAYS_REDACTED_FIELDS | {"doorCode"}))
        assert "4111111111111111" not in str(raw)
    assert reservation_raw["guestName"] == "Zoë 東京 🏖️"


def test_extra_redacted_fields_are_configurable(engine):
    writer = EntityWriter(engine, Redactor(ALWAYS_REDACTED_FIELDS))
    writer.write("reservations", ACCOUNT, [reservation(1)])
    assert stored(engine)[1].raw["doorCode"] == "4711"


def test_rows_missing_upstream_are_soft_deleted_and_come_back_when_they_reappear(writer, engine):
    writer.write("reservations", ACCOUNT, [reservation(1), reservation(2), reservation(3)])
    with engine.begin() as connection:
        deleted = writer.mark_missing_deleted("reservations", ACCOUNT, [1, 3], connection)
    assert deleted == 1
    rows = stored(engine)
    assert rows[2].deleted_at is not None and rows[1].deleted_at is None
    changed_when_deleted = rows[2].changed_at

    counts = writer.write("reservations", ACCOUNT, [reservation(2)])
    revived = stored(engine)[2]
    assert counts == WriteCounts(updated=1)
    assert revived.deleted_at is None
    assert revived.changed_at > changed_when_deleted


def test_soft_delete_is_scoped_to_the_account_and_the_given_condition(writer, engine):
    writer.write("reservations", ACCOUNT, [reservation(1), reservation(2, listingMapId=8)])
    writer.write("reservations", ACCOUNT + 1, [reservation(1)])
    table = tables.reservations.table
    with engine.begin() as connection:
        deleted = writer.mark_missing_deleted("reservations", ACCOUNT, [], connection, within=table.c.listing_id == 8)
    assert deleted == 1
    assert stored(engine)[1].deleted_at is None
    with engine.connect() as connection:
        other = connection.execute(sa.select(table.c.deleted_at).where(table.c.account_id == ACCOUNT + 1)).scalar_one()
    assert other is None


def test_a_batch_is_one_transaction_even_when_a_later_chunk_fails_in_the_database(writer, engine):
    objects = [reservation(i) for i in range(1, 1500)] + [reservation(2**70)]  # out of bigint range
    with pytest.raises(sa.exc.DataError):
        writer.write("reservations", ACCOUNT, objects)
    assert stored(engine) == {}


def test_an_unreadable_field_is_a_clear_error_naming_it(writer, engine):
    with pytest.raises(ValueError, match="reservations 2 of account 4242: field arrivalDate"):
        writer.write("reservations", ACCOUNT, [reservation(1), reservation(2, arrivalDate="not a date")])
    assert stored(engine) == {}


def test_an_object_without_id_is_a_clear_error(writer):
    with pytest.raises(ValueError, match="without an id"):
        writer.write("listings", ACCOUNT, [{"name": "x"}])


def test_large_batches_are_written_in_chunks_with_exact_counts(writer, engine):
    objects = [reservation(i) for i in range(1, 2501)]
    assert writer.write("reservations", ACCOUNT, objects) == WriteCounts(inserted=2500)
    objects[10] = reservation(11, "2026-11-05 00:00:00", status="modified")
    assert writer.write("reservations", ACCOUNT, objects) == WriteCounts(updated=1, unchanged=2499)
