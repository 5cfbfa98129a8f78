"""Applying stored webhook events to the entity tables, against real Postgres."""

from __future__ import annotations

import json
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from hostaway_pipeline.storage import normalize, tables
from hostaway_pipeline.storage.entity_writer import EntityWriter
from hostaway_pipeline.storage.redaction import Redactor
from hostaway_pipeline.webhooks.apply import MAX_ATTEMPTS, apply_events, pending_range
from hostaway_pipeline.webhooks.event_store import WebhookEventStore
from hostaway_pipeline_tests.webhooks.support import register_account, stored_events

ACCOUNT = 4242
EVERYTHING = (1, 2**62)


def reservation(version: str, reservation_id: int = 77, **fields: Any) -> dict[str, Any]:
    return {"id": reservation_id, "listingMapId": 5, "status": "new", "updatedOn": version, **fields}


def message(message_id: int = 901, conversation_id: int = 55) -> dict[str, Any]:
    return {"id": message_id, "conversationId": conversation_id, "reservationId": 77, "body": "Hello",
            "isIncoming": 1, "updatedOn": "2026-03-01 10:00:00", "date": "2026-03-01 10:00:00"}


def body(data: Any, event: str = "reservation.updated", account_id: int = ACCOUNT) -> bytes:
    return json.dumps({"object": "reservation", "event": event, "accountId": account_id,
                       "payload": {"data": data}}).encode()


@pytest.fixture
def store(engine: Engine) -> WebhookEventStore:
    register_account(engine, ACCOUNT)
    return WebhookEventStore.on(engine, Redactor([]))


@pytest.fixture
def writer(engine: Engine) -> EntityWriter:
    return EntityWriter(engine, Redactor([]))


def rows(engine: Engine, table_name: str) -> dict[int, sa.Row]:
    table = tables.ENTITY_TABLES[table_name].table
    with engine.connect() as connection:
        return {row.id: row for row in connection.execute(sa.select(table)).all()}


def statuses(engine: Engine) -> list[str]:
    return [event.status for event in stored_events(engine)]


def test_an_older_version_delivered_after_a_newer_one_leaves_the_newer_row(store, writer, engine):
    newer = store.receive(body(reservation("2026-03-01 10:05:00", status="cancelled")))
    apply_events(engine, writer, newer.event_id, newer.event_id)
    older = store.receive(body(reservation("2026-03-01 10:00:00", status="new")))
    apply_events(engine, writer, older.event_id, older.event_id)
    assert rows(engine, "reservations")[77].status == "cancelled"
    assert statuses(engine) == ["applied", "applied"]


def test_in_one_batch_the_newest_version_wins_even_when_it_arrived_first(store, writer, engine):
    store.receive(body(reservation("2026-03-01 10:05:00", status="cancelled")))
    store.receive(body(reservation("2026-03-01 10:00:00", status="new")))
    outcome = apply_events(engine, writer, *EVERYTHING)
    assert rows(engine, "reservations")[77].status == "cancelled" and outcome.applied == 2


def test_a_message_before_its_reservation_and_conversation_is_kept(store, writer, engine):
    store.receive(body(message(), event="message.received"))
    apply_events(engine, writer, *EVERYTHING)
    assert rows(engine, "messages")[901].conversation_id == 55
    assert rows(engine, "conversations") == {} and rows(engine, "reservations") == {}


def test_events_not_pending_are_not_applied_and_keep_their_status(store, writer, engine):
    store.receive(body({"id": 9, "updatedOn": "2026-03-01 10:00:00"}, event="listing.updated"))
    store.receive(body(reservation("2026-03-01 10:00:00"), account_id=999))
    outcome = apply_events(engine, writer, *EVERYTHING)
    assert statuses(engine) == ["unknown_event", "unknown_account"]
    assert rows(engine, "listings") == {} and rows(engine, "reservations") == {} and outcome.touched == {}


def test_applying_the_same_range_twice_is_a_no_op(store, writer, engine):
    stored = store.receive(body(reservation("2026-03-01 10:00:00")))
    apply_events(engine, writer, stored.event_id, stored.event_id)
    seen_at = rows(engine, "reservations")[77].synced_at
    again = apply_events(engine, writer, stored.event_id, stored.event_id)
    assert (again.applied, again.touched) == (0, {})
    assert rows(engine, "reservations")[77].synced_at == seen_at and stored_events(engine)[0].attempts == 1


def test_only_events_inside_the_range_are_applied(store, writer, engine):
    first = store.receive(body(reservation("2026-03-01 10:00:00", reservation_id=1)))
    store.receive(body(reservation("2026-03-01 10:00:00", reservation_id=2)))
    apply_events(engine, writer, first.event_id, first.event_id)
    assert set(rows(engine, "reservations")) == {1} and statuses(engine) == ["applied", "pending"]


def test_events_of_a_disabled_account_are_ignored_with_why(store, writer, engine):
    store.receive(body(reservation("2026-03-01 10:00:00")))
    with engine.begin() as connection:
        connection.execute(sa.update(tables.accounts).values(enabled=False))
    apply_events(engine, writer, *EVERYTHING)
    [event] = stored_events(engine)
    assert event.status == "ignored" and "disabled" in event.last_error and rows(engine, "reservations") == {}


@pytest.fixture
def unchecked_columns(monkeypatch):
    """Typed values reach Postgres unchecked, so a value the column cannot hold makes the database fail."""
    monkeypatch.setattr(normalize, "fit_to_column", lambda type_, value: value)


def test_an_event_the_database_refuses_is_retried_a_bounded_number_of_times_and_spares_the_others(
        store, writer, engine, unchecked_columns):
    store.receive(body(reservation("2026-03-01 10:00:00", reservation_id=1, guestName="Zoë Private",
                                   listingMapId=2**70)))
    store.receive(body(reservation("2026-03-01 10:00:00", reservation_id=2)))
    apply_events(engine, writer, *EVERYTHING)
    bad, good = stored_events(engine)
    assert (bad.status, bad.attempts, good.status) == ("pending", 1, "applied")
    assert "SQLSTATE 22003" in bad.last_error and "Zoë" not in bad.last_error
    assert set(rows(engine, "reservations")) == {2}
    for _ in range(MAX_ATTEMPTS - 1):
        apply_events(engine, writer, *EVERYTHING)
    bad = stored_events(engine)[0]
    assert (bad.status, bad.attempts) == ("failed", MAX_ATTEMPTS)


def test_each_touched_asset_and_account_reports_its_event_counts_and_id_range(store, writer, engine):
    first = store.receive(body(reservation("2026-03-01 10:00:00", reservation_id=1)))
    last = store.receive(body(reservation("2026-03-01 10:00:00", reservation_id=2)))
    store.receive(body(message(), event="message.received"))
    outcome = apply_events(engine, writer, *EVERYTHING)
    assert set(outcome.touched) == {("reservations", ACCOUNT), ("messages", ACCOUNT)}
    metadata = outcome.touched[("reservations", ACCOUNT)].metadata()
    assert (metadata["events_applied"], metadata["first_event_id"], metadata["last_event_id"]) == (
        2, first.event_id, last.event_id)
    assert metadata["rows_inserted"] == 2 and "reported_count" not in metadata


def test_the_pending_range_is_bounded_and_starts_at_the_given_id(store, engine):
    ids = [store.receive(body(reservation("2026-03-01 10:00:00", reservation_id=i))).event_id for i in range(1, 5)]
    assert pending_range(engine, ids[1], limit=2) == (ids[1], ids[2], 2)
    assert pending_range(engine, ids[0], limit=10, received_before_seconds=3600) is None
