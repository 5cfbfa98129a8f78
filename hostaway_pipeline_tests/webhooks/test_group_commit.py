"""Group commit: requests waiting while a batch commits are committed together, each answered for itself."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from hostaway_pipeline.storage.redaction import Redactor
from hostaway_pipeline.webhooks.event_store import StoredEvent, WebhookEventStore
from hostaway_pipeline.webhooks.group_commit import GroupCommitter
from hostaway_pipeline.webhooks.receiver import BasicCredentials, receiver_app
from hostaway_pipeline_tests.webhooks.support import (
    LOGIN,
    PASSWORD,
    commits_failing,
    register_account,
    served,
    stored_events,
    table_locked,
    waiting_inserts,
    webhook_url,
)

ACCOUNT = 52001
WAIT_DEADLINE_SECONDS = 120.0  # a wait for the writer to reach the lock on a loaded machine, not a speed check


def delivery(object_id: int) -> bytes:
    return json.dumps({"object": "reservation", "event": "reservation.updated", "accountId": ACCOUNT,
                       "payload": {"data": {"id": object_id, "updatedOn": "2026-03-01 10:00:00"}}}).encode()


@pytest.fixture
def store(engine: Engine) -> WebhookEventStore:
    register_account(engine, ACCOUNT)
    return WebhookEventStore.on(engine, Redactor([]))


@pytest.fixture
def committer(store: WebhookEventStore) -> Iterator[GroupCommitter]:
    committer = GroupCommitter(store, writers=1)  # one writer: what waits behind its batch forms the next
    yield committer
    committer.close()


async def _until_the_writer_waits_on_the_lock(engine: Engine) -> None:
    deadline = time.monotonic() + WAIT_DEADLINE_SECONDS
    while waiting_inserts(engine) < 1:
        assert time.monotonic() < deadline, "the writer never reached the locked table"
        await asyncio.sleep(0.02)


async def _first_then_five_while_it_waits(committer: GroupCommitter, engine: Engine) -> list[Any]:
    """Commit object 1 while the table is locked, queue objects 2-6 behind it, then release the table."""
    with table_locked(engine):
        first = asyncio.ensure_future(committer.commit(delivery(1)))
        await _until_the_writer_waits_on_the_lock(engine)
        later = [asyncio.ensure_future(committer.commit(delivery(object_id))) for object_id in range(2, 7)]
        await asyncio.sleep(0)  # each task queues its body before it first waits
    return await asyncio.gather(first, *later, return_exceptions=True)


def _transaction_of_each_object(engine: Engine) -> dict[int, str]:
    with engine.connect() as connection:
        return dict(connection.execute(sa.text("SELECT object_id, xmin::text FROM hostaway.webhook_events")).all())


def test_requests_queued_while_a_batch_commits_are_committed_together_in_one_transaction(committer, engine):
    results = asyncio.run(_first_then_five_while_it_waits(committer, engine))
    assert all(isinstance(result, StoredEvent) and not result.duplicate for result in results)
    assert len({result.event_id for result in results}) == 6
    transaction = _transaction_of_each_object(engine)
    assert len({transaction[object_id] for object_id in range(2, 7)}) == 1
    assert transaction[1] != transaction[2]


def test_when_the_commit_of_a_batch_fails_every_request_in_it_gets_the_error(committer, engine):
    with commits_failing(engine):
        results = asyncio.run(_first_then_five_while_it_waits(committer, engine))
    assert all(isinstance(result, sa.exc.SQLAlchemyError) and "commit refused" in str(result) for result in results)
    assert stored_events(engine) == []


def test_the_receiver_answers_503_to_every_concurrent_request_when_commits_fail(engine, database_url):
    register_account(engine, ACCOUNT)
    statuses: dict[int, int] = {}

    def post(url: str, object_id: int) -> None:
        statuses[object_id] = requests.post(url, data=delivery(object_id), auth=(LOGIN, PASSWORD), timeout=60,
                                            headers={"Content-Type": "application/json"}).status_code

    with commits_failing(engine), \
            served(receiver_app(database_url, BasicCredentials(LOGIN, PASSWORD), Redactor([]))) as base_url:
        senders = [threading.Thread(target=post, args=(webhook_url(base_url), object_id)) for object_id in range(8)]
        for sender in senders:
            sender.start()
        for sender in senders:
            sender.join(timeout=120)
    assert statuses == dict.fromkeys(range(8), 503)
    assert stored_events(engine) == []


async def _the_same_delivery_to_two_writers_at_once(committer: GroupCommitter, engine: Engine) -> list[Any]:
    with table_locked(engine):
        first = asyncio.ensure_future(committer.commit(delivery(9)))
        await _until_the_writer_waits_on_the_lock(engine)
        again = asyncio.ensure_future(committer.commit(delivery(9)))
        deadline = time.monotonic() + WAIT_DEADLINE_SECONDS
        while waiting_inserts(engine) < 2:  # the second writer holds the redelivery in its own transaction
            assert time.monotonic() < deadline, "the second writer never reached the locked table"
            await asyncio.sleep(0.02)
    return list(await asyncio.gather(first, again))


def test_a_redelivery_committed_by_another_writer_at_the_same_time_is_stored_once(store, engine):
    committer = GroupCommitter(store, writers=2)
    try:
        results = asyncio.run(_the_same_delivery_to_two_writers_at_once(committer, engine))
    finally:
        committer.close()
    assert results[0].event_id == results[1].event_id
    assert sorted(result.duplicate for result in results) == [False, True]
    assert [event.object_id for event in stored_events(engine)] == [9]
