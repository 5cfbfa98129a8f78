"""The bulk writer against real Postgres: dedupe, change detection, ordering, redaction, soft delete, and
hostile values that cost one value (or one row), never the write."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import sqlalchemy as sa

from hostaway_pipeline.settings import ALWAYS_REDACTED_FIELDS
from hostaway_pipeline.storage import normalize, tables
from hostaway_pipeline.storage.entity_writer import CHANGED_IDS_KEPT, EntityWriter, WriteCounts, WriteRejected
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


def without_ids(counts: WriteCounts) -> WriteCounts:
    """The counts alone, for tests about counting (the ids have tests of their own)."""
    return dataclasses.replace(counts, inserted_ids=(), updated_ids=(), soft_deleted_ids=())


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
    assert without_ids(counts) == WriteCounts(inserted=2) and sorted(counts.inserted_ids) == [1, 2]
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
    assert counts == WriteCounts(updated=1, updated_ids=(1,))
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
    assert counts == WriteCounts(updated=1, updated_ids=(1,))
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
    assert deleted == WriteCounts(soft_deleted=1, soft_deleted_ids=(2,))
    rows = stored(engine)
    assert rows[2].deleted_at is not None and rows[1].deleted_at is None
    changed_when_deleted = rows[2].changed_at

    counts = writer.write("reservations", ACCOUNT, [reservation(2)])
    revived = stored(engine)[2]
    assert counts == WriteCounts(updated=1, updated_ids=(2,))
    assert revived.deleted_at is None
    assert revived.changed_at > changed_when_deleted


def test_soft_delete_is_scoped_to_the_account_and_the_given_condition(writer, engine):
    writer.write("reservations", ACCOUNT, [reservation(1), reservation(2, listingMapId=8)])
    writer.write("reservations", ACCOUNT + 1, [reservation(1)])
    table = tables.reservations.table
    with engine.begin() as connection:
        deleted = writer.mark_missing_deleted("reservations", ACCOUNT, [], connection, within=table.c.listing_id == 8)
    assert deleted == WriteCounts(soft_deleted=1, soft_deleted_ids=(2,))
    assert stored(engine)[1].deleted_at is None
    with engine.connect() as connection:
        other = connection.execute(sa.select(table.c.deleted_at).where(table.c.account_id == ACCOUNT + 1)).scalar_one()
    assert other is None


@pytest.fixture
def unchecked_columns(monkeypatch):
    """Typed values reach Postgres unchecked, so a value the column cannot hold makes the database fail."""
    monkeypatch.setattr(normalize, "fit_to_column", lambda type_, value: value)


def test_a_batch_is_one_transaction_even_when_a_later_chunk_fails_in_the_database(writer, engine,
                                                                                  unchecked_columns):
    objects = [reservation(i) for i in range(1, 1500)] + [reservation(1500, listingMapId=2**70)]  # beyond bigint
    with pytest.raises(WriteRejected):
        writer.write("reservations", ACCOUNT, objects)
    assert stored(engine) == {}


def test_a_data_error_is_restated_without_values(writer, engine, unchecked_columns):
    secret_guest = "Zoë Privatename"
    objects = [reservation(1, guestName=secret_guest), reservation(2, guestName=secret_guest, listingMapId=2**70)]
    with pytest.raises(WriteRejected) as raised:
        writer.write("reservations", ACCOUNT, objects)
    message = str(raised.value)
    assert message == (f"reservations of account {ACCOUNT}: the database refused the upsert of 2 rows: "
                       "NumericValueOutOfRange (SQLSTATE 22003); row values withheld")
    assert raised.value.__cause__ is None and raised.value.__context__ is None  # no DataError chained along
    assert stored(engine) == {}


def test_an_unreadable_field_costs_only_that_value(writer, engine):
    counts = writer.write("reservations", ACCOUNT, [reservation(1), reservation(2, arrivalDate="not a date")])
    rows = stored(engine)
    assert rows[2].arrival_date is None and rows[2].raw["arrivalDate"] == "not a date"
    assert rows[2].departure_date == date(2026, 12, 27) and rows[1].arrival_date == date(2026, 12, 24)
    assert without_ids(counts) == WriteCounts(inserted=2, values_quarantined=1,
                                 quarantined_examples=("id 2 arrivalDate: unreadable as date",))


def test_a_nul_in_a_message_body_is_stored_without_it_and_counted(writer, engine):
    message = {"id": 5, "conversationId": 9, "body": "door\x00 code\x00 is on the card", "date": "2026-11-01 10:00:00"}
    counts = writer.write("messages", ACCOUNT, [message])
    row = stored(engine, "messages")[5]
    assert row.body == "door code is on the card"
    assert row.raw["body"] == "door code is on the card"
    assert counts.inserted == 1 and counts.values_quarantined == 1
    assert counts.quarantined_examples == ("id 5 body: NUL removed",)


def test_a_zoned_timestamp_is_converted_to_utc(writer, engine):
    writer.write("reservations", ACCOUNT, [reservation(1, "2026-11-01T12:00:00+02:00"),
                                           reservation(2, "2026-11-01T10:00:00Z")])
    rows = stored(engine)
    assert rows[1].updated_on == rows[2].updated_on == datetime(2026, 11, 1, 10, 0, tzinfo=UTC)
    assert rows[1].raw["updatedOn"] == "2026-11-01T12:00:00+02:00"  # raw keeps what Hostaway said


def test_an_out_of_range_amount_is_null_in_its_column_but_kept_in_raw(writer, engine):
    counts = writer.write("reservations", ACCOUNT, [reservation(1, totalPrice=10**12),
                                                    reservation(2, totalPrice=999999999999.99)])
    rows = stored(engine)
    assert rows[1].total_price is None and rows[1].raw["totalPrice"] == 10**12
    assert rows[2].total_price == Decimal("999999999999.99")  # the largest amount numeric(14,2) holds
    assert counts.values_quarantined == 1
    assert counts.quarantined_examples == ("id 1 totalPrice: beyond numeric(14, 2)",)


def test_a_row_without_id_is_skipped_and_counted(writer, engine):
    no_id = {key: value for key, value in reservation(0).items() if key != "id"}
    counts = writer.write("reservations", ACCOUNT, [reservation(1), no_id, "not an object", reservation(1.5),
                                                    reservation(2**63), reservation("12a"), reservation(3)])
    assert set(stored(engine)) == {1, 3}
    assert counts.inserted == 2 and counts.rows_skipped == 5
    assert counts.skipped_examples == ("row #1: no id", "row #2: not an object (str)",
                                       "row #3: id is not an integer (float)", "row #4: id beyond bigint",
                                       "row #5: id is not an integer (str)")


def test_an_id_given_as_digits_is_read_as_that_id(writer, engine):
    counts = writer.write("reservations", ACCOUNT, [reservation(" 7 ")])
    assert set(stored(engine)) == {7} and counts.rows_skipped == 0


def test_large_batches_are_written_in_chunks_with_exact_counts(writer, engine):
    objects = [reservation(i) for i in range(1, 2501)]
    first = writer.write("reservations", ACCOUNT, objects)
    assert without_ids(first) == WriteCounts(inserted=2500)
    assert len(first.inserted_ids) == CHANGED_IDS_KEPT and set(first.inserted_ids) <= set(range(1, 1001))
    objects[10] = reservation(11, "2026-11-05 00:00:00", status="modified")
    assert writer.write("reservations", ACCOUNT, objects) == WriteCounts(updated=1, unchanged=2499, updated_ids=(11,))


def test_what_a_write_cost_is_logged_once_naming_ids_and_fields_never_values(writer, caplog):
    objects = [reservation(1, guestName="Ann\x00 Privatename", totalPrice="12,5"), {"guestName": "Bob Secret"}]
    with caplog.at_level("WARNING", logger="hostaway_pipeline.storage.entity_writer"):
        writer.write("reservations", ACCOUNT, objects)
    assert len(caplog.records) == 1
    message = caplog.records[0].getMessage()
    assert message == (f"reservations of account {ACCOUNT}: 2 values quarantined (NULL in their column or cleaned "
                       "in raw; e.g. id 1 guestName: NUL removed; id 1 totalPrice: unreadable as numeric(14, 2)), "
                       "1 rows skipped (e.g. row #1: no id)")


def test_write_counts_add_up_and_keep_only_a_few_examples_each_once():
    first = WriteCounts(inserted=1, values_quarantined=4, quarantined_examples=("a", "b", "c", "d"),
                        rows_skipped=1, skipped_examples=("s",))
    second = WriteCounts(updated=2, values_quarantined=3, quarantined_examples=("d", "e", "f"))
    total = first + second
    assert total == WriteCounts(inserted=1, updated=2, values_quarantined=7, rows_skipped=1,
                                quarantined_examples=("a", "b", "c", "d", "e"), skipped_examples=("s",))
    assert total.as_dict()["quarantined_examples"] == ["a", "b", "c", "d", "e"]
    assert total.as_dict()["values_quarantined"] == 7


def test_a_write_reports_which_ids_it_inserted_and_which_it_updated(writer):
    writer.write("reservations", ACCOUNT, [reservation(1), reservation(2)])
    counts = writer.write("reservations", ACCOUNT, [reservation(1, "2026-11-02 10:00:00", status="cancelled"),
                                                    reservation(2), reservation(3)])
    assert counts == WriteCounts(inserted=1, updated=1, unchanged=1, inserted_ids=(3,), updated_ids=(1,))


def test_soft_delete_reports_the_ids_it_deleted_not_those_already_deleted_or_unknown(writer, engine):
    writer.write("reservations", ACCOUNT, [reservation(1), reservation(2), reservation(3)])
    with engine.begin() as connection:
        assert writer.soft_delete("reservations", ACCOUNT, [3, 2, 99], connection) == WriteCounts(
            soft_deleted=2, soft_deleted_ids=(2, 3))
        assert writer.soft_delete("reservations", ACCOUNT, [2], connection) == WriteCounts()
        assert writer.soft_delete("reservations", ACCOUNT, [], connection) == WriteCounts()


@pytest.fixture
def statements(engine) -> Iterator[list[str]]:
    """The first word of every statement the engine sends, from now on."""
    sent: list[str] = []

    def record(connection, cursor, statement, *rest) -> None:
        sent.append(statement.split()[0])

    sa.event.listen(engine, "before_cursor_execute", record)
    yield sent
    sa.event.remove(engine, "before_cursor_execute", record)


def test_changed_ids_cost_no_round_trip_of_their_own(writer, engine, statements):
    """One upsert per chunk and one UPDATE per soft delete, each returning its ids (RETURNING)."""
    objects = [reservation(i) for i in range(1, 1501)]
    with engine.begin() as connection:
        statements.clear()
        counts = writer.write("reservations", ACCOUNT, objects, connection)
        deleted = writer.soft_delete("reservations", ACCOUNT, range(1, 1201), connection)
        missing = writer.mark_missing_deleted("reservations", ACCOUNT, range(1, 1401), connection)
    assert statements == ["INSERT", "INSERT", "UPDATE", "UPDATE"]
    assert (counts.inserted, len(counts.inserted_ids)) == (1500, CHANGED_IDS_KEPT)
    assert deleted == WriteCounts(soft_deleted=1200, soft_deleted_ids=tuple(range(1, CHANGED_IDS_KEPT + 1)))
    assert missing == WriteCounts(soft_deleted=100, soft_deleted_ids=tuple(range(1401, 1401 + CHANGED_IDS_KEPT)))


def test_added_counts_keep_the_first_ids_of_each_change_each_once():
    first = WriteCounts(inserted=40, inserted_ids=tuple(range(40)), soft_deleted=1, soft_deleted_ids=(7,))
    second = WriteCounts(inserted=30, inserted_ids=tuple(range(35, 65)), soft_deleted=1, soft_deleted_ids=(7,))
    total = first + second
    assert total.inserted == 70 and total.inserted_ids == tuple(range(CHANGED_IDS_KEPT))
    assert total.soft_deleted == 2 and total.soft_deleted_ids == (7,)
