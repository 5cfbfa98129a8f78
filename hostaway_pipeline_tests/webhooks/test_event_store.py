"""Parsing deliveries and committing them to hostaway.webhook_events, against real Postgres."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from hostaway_pipeline.storage import tables
from hostaway_pipeline.storage.redaction import Redactor
from hostaway_pipeline.webhooks.event_store import (
    StoredEvent,
    WebhookEventStore,
    prune_applied,
    requeue_registered_accounts,
)
from hostaway_pipeline.webhooks.events import ParsedDelivery, parse_delivery
from hostaway_pipeline_tests.webhooks.support import commits_failing, refusing_object

ACCOUNT = 4242


def reservation(version: str = "2026-03-01 10:00:00", **fields: Any) -> dict[str, Any]:
    return {"id": 77, "listingMapId": 5, "status": "new", "updatedOn": version, "doorCode": "1234", **fields}


def body(data: Any, event: str = "reservation.updated", account_id: Any = ACCOUNT, obj: str = "reservation") -> bytes:
    return json.dumps({"object": obj, "event": event, "accountId": account_id, "payload": {"data": data}}).encode()


@pytest.fixture
def store(engine: Engine) -> WebhookEventStore:
    with engine.begin() as connection:
        connection.execute(sa.insert(tables.accounts).values(account_id=ACCOUNT, client_secret_encrypted=b"x"))
    return WebhookEventStore.on(engine, Redactor(["doorCode"]))


def rows(engine: Engine) -> list[sa.Row]:
    with engine.connect() as connection:
        return list(connection.execute(sa.select(tables.webhook_events).order_by("event_id")).all())


def test_a_reservation_event_is_stored_pending_with_its_object_and_version_redacted(store, engine):
    stored = store.receive(body(reservation()))
    [row] = rows(engine)
    assert (stored.status, stored.duplicate, row.event_id) == ("pending", False, stored.event_id)
    assert (row.account_id, row.event, row.object_type, row.object_id) == (ACCOUNT, "reservation.updated",
                                                                           "reservation", 77)
    assert row.object_updated_on.isoformat() == "2026-03-01T10:00:00+00:00"
    assert "2026-03-01 10:00:00" in row.dedupe_key
    assert "doorCode" not in json.dumps(row.payload) and row.payload["payload"]["data"]["listingMapId"] == 5


def test_the_same_delivery_twice_is_stored_once_in_any_shape(store, engine):
    first = store.receive(body(reservation()))
    again = store.receive(body(reservation()))
    other_shape = store.receive(json.dumps({"object": "reservation", "eventType": "reservation.updated",
                                            "accountId": ACCOUNT, "data": reservation()}).encode())
    assert [again.duplicate, other_shape.duplicate] == [True, True]
    assert again.event_id == other_shape.event_id == first.event_id and len(rows(engine)) == 1


def test_a_newer_version_of_the_same_object_is_a_new_event(store, engine):
    store.receive(body(reservation("2026-03-01 10:00:00")))
    newer = store.receive(body(reservation("2026-03-01 10:05:00", status="cancelled")))
    assert not newer.duplicate
    assert [row.object_updated_on.minute for row in rows(engine)] == [0, 5]


def test_an_unknown_event_is_stored_as_unknown_event(store, engine):
    stored = store.receive(body({"id": 9, "updatedOn": "2026-03-01 10:00:00"}, event="listing.updated", obj="listing"))
    [row] = rows(engine)
    assert stored.status == row.status == "unknown_event" and row.object_id == 9
    assert "listing.updated" in row.last_error


def test_an_event_of_an_unregistered_account_is_stored_as_unknown_account_and_can_be_requeued(store, engine):
    stored = store.receive(body(reservation(), account_id=999))
    assert stored.status == "unknown_account" and rows(engine)[0].account_id == 999
    assert requeue_registered_accounts(engine) == 0
    with engine.begin() as connection:
        connection.execute(sa.insert(tables.accounts).values(account_id=999, client_secret_encrypted=b"x"))
    assert requeue_registered_accounts(engine) == 1 and rows(engine)[0].status == "pending"


@pytest.mark.parametrize("raw, problem", [
    (b"not json \x00\xff", "not JSON"),
    (b"[1, 2]", "not an object"),
    (json.dumps({"accountId": ACCOUNT, "data": {"id": 1}}).encode(), "no event name"),
    (json.dumps({"event": "reservation.updated", "accountId": "abc", "data": {"id": 1}}).encode(), "accountId"),
    (body({"status": "new"}), "no id"),
])
def test_a_body_that_cannot_be_read_is_stored_as_unparseable_saying_why(store, engine, raw, problem):
    stored = store.receive(raw)
    [row] = rows(engine)
    assert stored.status == row.status == "unparseable" and problem in row.last_error


def test_the_test_ping_is_stored_as_ignored(store, engine):
    stored = store.receive(json.dumps({"object": "test", "event": "test", "accountId": ACCOUNT,
                                       "data": "test"}).encode())
    assert stored.status == "ignored" and rows(engine)[0].payload["data"] == "test"


def test_prune_applied_removes_only_events_applied_before_the_retention(store, engine):
    for minute in range(3):
        store.receive(body(reservation(f"2026-03-01 10:0{minute}:00")))
    old, recent, pending = (row.event_id for row in rows(engine))
    with engine.begin() as connection:
        table = tables.webhook_events
        connection.execute(sa.update(table).where(table.c.event_id == old)
                           .values(status="applied", applied_at=sa.func.now() - sa.text("interval '8 days'")))
        connection.execute(sa.update(table).where(table.c.event_id == recent)
                           .values(status="applied", applied_at=sa.func.now() - sa.text("interval '1 day'")))
    assert prune_applied(engine, timedelta(days=7)) == 1
    assert [row.event_id for row in rows(engine)] == [recent, pending]


# --- batches (the receiver's group commit) -----------------------------------------------------------------


@pytest.fixture
def refused_object_id(engine: Engine) -> Iterator[int]:
    with refusing_object(engine, 666):
        yield 666


@pytest.fixture
def failing_commits(engine: Engine) -> Iterator[None]:
    with commits_failing(engine):
        yield


def parsed(*datas: dict[str, Any], account_id: int = ACCOUNT) -> list[ParsedDelivery]:
    return [parse_delivery(body(data, account_id=account_id), Redactor(["doorCode"])) for data in datas]


def test_a_batch_is_committed_in_one_transaction_each_delivery_answered_with_its_own_event(store, engine):
    batch = parsed(reservation("2026-03-01 10:00:00"), reservation("2026-03-01 10:01:00"),
                   reservation("2026-03-01 10:00:00", id=78), reservation("2026-03-01 10:00:00", id=79),
                   account_id=ACCOUNT) + parsed(reservation(), account_id=999)
    results = store.store_batch(batch)
    stored = rows(engine)
    assert [result.event_id for result in results] == [row.event_id for row in stored]
    assert [result.status for result in results] == ["pending"] * 4 + ["unknown_account"]
    with engine.connect() as connection:
        transactions = connection.execute(sa.text("SELECT count(DISTINCT xmin::text) FROM hostaway.webhook_events"))
        assert transactions.scalar_one() == 1


def test_a_delivery_twice_in_one_batch_and_one_already_stored_are_stored_once(store, engine):
    earlier = store.receive(body(reservation("2026-03-01 09:00:00")))
    first, again, before = store.store_batch(parsed(reservation(), reservation(), reservation("2026-03-01 09:00:00")))
    assert (first.duplicate, again.duplicate, again.event_id) == (False, True, first.event_id)
    assert (before.duplicate, before.event_id, before.status) == (True, earlier.event_id, "pending")
    assert len(rows(engine)) == 2


def test_a_batch_with_one_event_postgres_refuses_still_stores_the_others(store, engine, refused_object_id):
    batch = parsed(reservation(id=1), reservation(id=refused_object_id), reservation(id=3))
    first, refused, third = store.store_each(batch)
    assert isinstance(refused, sa.exc.SQLAlchemyError) and "object 666 refused" in str(refused)
    assert isinstance(first, StoredEvent) and isinstance(third, StoredEvent)
    assert [row.object_id for row in rows(engine)] == [1, 3]


def test_a_failed_commit_fails_every_delivery_of_the_batch_and_stores_none(store, engine, failing_commits):
    outcomes = store.store_each(parsed(reservation(id=1), reservation(id=2), reservation(id=3)))
    assert all(isinstance(outcome, sa.exc.SQLAlchemyError) and "commit refused" in str(outcome)
               for outcome in outcomes)
    assert rows(engine) == []


def test_with_the_database_unreachable_a_batch_fails_at_once_for_every_delivery():
    with socket.socket() as probe:  # a local port nothing listens on: every connection is refused
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    unreachable = sa.create_engine(f"postgresql+psycopg2://nobody@127.0.0.1:{port}/nothing")
    outcomes = WebhookEventStore.on(unreachable, Redactor([])).store_each(parsed(reservation(id=1), reservation(id=2)))
    assert len(outcomes) == 2 and outcomes[0] is outcomes[1]
    assert isinstance(outcomes[0], sa.exc.OperationalError)
