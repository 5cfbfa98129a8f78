"""The messages sync in bounded batches: what a crash keeps, how many unread conversations a step tolerates,
and markers computed in SQL exactly as ``conversation_marker`` computes them.

Against the stand-in over real sockets and real Postgres; failures are injected into the client where the
stand-in cannot aim them (a chosen conversation, an exception that is not an API error).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from hostaway_pipeline.hostaway.client import HostawayClient
from hostaway_pipeline.hostaway.errors import HostawayUnavailableError
from hostaway_pipeline.simulator.server import SimulatorServer
from hostaway_pipeline.storage import tables
from hostaway_pipeline.sync import full_sync
from hostaway_pipeline.sync.failures import ReadsFailed
from hostaway_pipeline.sync.messages_sync import _live_markers, conversation_marker, sync_messages
from hostaway_pipeline_tests.pipeline_harness import TIME_SCALE, PipelineHarness, build_harness

ACCOUNT = 53001
BATCH = 10  # conversations per write transaction; the account has 40


class Crash(Exception):
    """Not an API error: the process dying mid-sync, as far as the database can tell."""


@pytest.fixture
def simulator() -> Iterator[SimulatorServer]:
    with SimulatorServer(accounts={ACCOUNT: 40}, seed=11, time_scale=TIME_SCALE) as simulator:
        yield simulator


@pytest.fixture
def harness(engine, database_url, simulator, pipeline_settings_env) -> PipelineHarness:
    harness = build_harness(database_url, simulator)
    harness.warehouse.accounts.add(ACCOUNT, simulator.client_secret(ACCOUNT))
    full_sync.sync_conversations(harness.api.client_for(ACCOUNT), harness.warehouse.writer, engine)
    return harness


def conversation_ids(engine) -> list[int]:
    table = tables.conversations.table
    with engine.connect() as connection:
        return sorted(connection.execute(sa.select(table.c.id).where(table.c.account_id == ACCOUNT)).scalars())


def recorded_markers(engine) -> dict[int, str]:
    state = tables.conversation_message_sync
    with engine.connect() as connection:
        return dict(connection.execute(sa.select(state.c.conversation_id, state.c.marker)
                                       .where(state.c.account_id == ACCOUNT)).all())


def current_markers(engine) -> dict[int, str]:
    table = tables.conversations.table
    with engine.connect() as connection:
        return {row.id: conversation_marker(row.raw) for row in connection.execute(
            sa.select(table.c.id, table.c.raw).where(table.c.account_id == ACCOUNT))}


def stored_messages(engine) -> dict[int, int]:
    """Live message id -> its conversation."""
    table = tables.messages.table
    with engine.connect() as connection:
        return dict(connection.execute(sa.select(table.c.id, table.c.conversation_id).where(
            table.c.account_id == ACCOUNT, table.c.deleted_at.is_(None))).all())


def upstream_messages(simulator: SimulatorServer) -> dict[int, int]:
    return {int(m["id"]): int(m["conversationId"]) for m in simulator.truth(ACCOUNT)["messages"]}


def crashing_after(client: HostawayClient, conversations_read: int) -> HostawayClient:
    """The client raises :class:`Crash` once it has handed over this many conversations' messages."""
    read_all = client.messages_for_conversations

    def messages_for_conversations(ids, *args, **kwargs):
        for done, item in enumerate(read_all(ids, *args, **kwargs)):
            if done == conversations_read:
                raise Crash
            yield item

    client.messages_for_conversations = messages_for_conversations  # type: ignore[method-assign,assignment]
    return client


def failing_for(client: HostawayClient, failing: set[int]) -> HostawayClient:
    """The client fails these conversations' reads as the transport does once its retries are spent."""
    read = client.messages

    def messages(conversation_id, include_scheduled=True):
        if conversation_id in failing:
            raise HostawayUnavailableError("503 Service Unavailable after 3 attempts",
                                           endpoint="/v1/conversations/{id}/messages", account_id=ACCOUNT,
                                           status=503)
        return read(conversation_id, include_scheduled)

    client.messages = messages  # type: ignore[method-assign]
    return client


def test_a_crash_after_the_first_batch_keeps_it_and_the_next_sync_reads_only_the_rest(harness, engine,
                                                                                        simulator):
    client, writer = harness.api.client_for, harness.warehouse.writer
    with pytest.raises(Crash):
        sync_messages(crashing_after(client(ACCOUNT), BATCH + 5), writer, engine, batch_conversations=BATCH,
                      reverify_days=0)

    ids = conversation_ids(engine)
    first_batch = set(ids[:BATCH])  # conversations are read in id order
    assert recorded_markers(engine) == {cid: current_markers(engine)[cid] for cid in first_batch}
    upstream = upstream_messages(simulator)
    # The first batch's messages are all committed; the 5 read after it were not: at most a batch is lost.
    assert stored_messages(engine) == {mid: cid for mid, cid in upstream.items() if cid in first_batch}

    outcome = sync_messages(client(ACCOUNT), writer, engine, batch_conversations=BATCH, reverify_days=0)
    assert outcome.extra["conversations_read"] == len(ids) - BATCH
    assert recorded_markers(engine) == current_markers(engine)
    assert stored_messages(engine) == upstream


@pytest.mark.parametrize(("failing", "tolerated", "green"), [
    (2, 2, True),  # up to the threshold: green, reported, read again next sync
    (2, 1, False),  # past it: the step fails
    (1, 0, False),  # 0: any failure fails the step
    (1, None, False),  # the default is 0
])
def test_conversations_that_cannot_be_read_keep_their_markers_and_fail_the_step_past_the_threshold(
        harness, engine, simulator, failing, tolerated, green):
    client, writer = harness.api.client_for, harness.warehouse.writer
    ids = conversation_ids(engine)
    unreadable = set(ids[3:3 + failing])  # inside the first batch: the others of the batch go on
    progress: list[str] = []
    options = {} if tolerated is None else {"max_failed_conversations": tolerated}
    if green:
        outcome = sync_messages(failing_for(client(ACCOUNT), unreadable), writer, engine,
                                batch_conversations=BATCH, on_progress=progress.append, **options)
    else:
        with pytest.raises(ReadsFailed) as failure:
            sync_messages(failing_for(client(ACCOUNT), unreadable), writer, engine, batch_conversations=BATCH,
                          on_progress=progress.append, **options)
        outcome = failure.value.outcome
        assert str(failure.value).startswith(f"account {ACCOUNT} messages: {failing} of {len(ids)} conversations "
                                             "could not be read")
        assert ("more than max_failed_conversations" in str(failure.value)) == bool(tolerated)

    assert outcome.extra["conversations_failed"] == failing
    assert outcome.extra["conversations_unread_ids"] == ", ".join(map(str, sorted(unreadable)))
    assert any("tolerated" in line for line in progress) == green
    # Every other conversation's messages are written and its marker advanced; the unread keep theirs (none).
    assert set(recorded_markers(engine)) == set(ids) - unreadable
    upstream = upstream_messages(simulator)
    assert stored_messages(engine) == {mid: cid for mid, cid in upstream.items() if cid not in unreadable}

    again = sync_messages(client(ACCOUNT), writer, engine, batch_conversations=BATCH, reverify_days=0)
    assert again.extra["conversations_read"] == failing
    assert stored_messages(engine) == upstream


HOSTILE_CONVERSATIONS = [
    {},
    {"messageSentOn": None, "messageReceivedOn": "2026-11-01 11:00:00"},
    {"messageSentOn": 17, "messageReceivedOn": 1.5},
    {"messageSentOn": 1.0, "messageReceivedOn": 12345678901234567890},
    {"messageSentOn": True, "messageReceivedOn": [1, "a", None]},
    {"messageSentOn": {"nested": "Zoë \u2028 \"quoted\" \\ </tag>"}, "messageReceivedOn": "日本語"},
    {"conversationMessages": []},
    {"conversationMessages": None},
    {"conversationMessages": [None]},
    {"conversationMessages": ["text"]},
    {"conversationMessages": [[{"id": 1, "status": "sent"}]]},
    {"conversationMessages": [{"id": 9, "status": "sent", "updatedOn": "2026-11-01 11:00:00", "body": "x" * 500},
                              {"id": 8, "status": "awaiting"}]},
    {"conversationMessages": [{"id": "9", "status": None, "updatedOn": 0}]},
    {"conversationMessages": [{}]},
    {"conversationMessages": [{"id": {"deep": [1, 2]}, "status": ["a"], "updatedOn": False}]},
    {"conversationMessages": "preview"},
    {"conversationMessages": ""},
    {"conversationMessages": {}},
    {"conversationMessages": {"0": {"id": 1, "status": "sent"}}},  # a dict: conversation_marker once raised here
    {"conversationMessages": 5},  # and here
    {"conversationMessages": True},
    {"Reservation": None},
    {"Reservation": []},
    {"Reservation": ["status"]},
    {"Reservation": [{"status": "new"}]},
    {"Reservation": "cancelled"},
    {"Reservation": {"status": "cancelled", "guestName": "Zoë"}},
    {"Reservation": {"status": {"code": 1}}},
    {"Reservation": {"id": 5}},
    {"messageSentOn": "2026-11-02 10:00:00", "messageReceivedOn": None,
     "conversationMessages": [{"id": 10, "status": "awaiting", "updatedOn": "2026-11-02 10:00:00"}],
     "Reservation": {"id": 5, "status": "new"}, "hasUnreadMessages": 1},
]


def test_markers_computed_in_sql_equal_conversation_marker_on_hostile_conversations(engine):
    table = tables.conversations.table
    rows = [{"account_id": ACCOUNT, "id": 1000 + i, "raw": {"id": 1000 + i, **conversation}}
            for i, conversation in enumerate(HOSTILE_CONVERSATIONS)]
    with engine.begin() as connection:
        connection.execute(sa.insert(table), rows)
    with engine.connect() as connection:
        in_sql = {cid: marker for cid, marker, *_ in _live_markers(connection, ACCOUNT)}
    in_python = current_markers(engine)  # conversation_marker over each whole stored raw
    assert set(in_sql) == set(in_python) == {row["id"] for row in rows}
    mismatched = {cid: (in_sql[cid], in_python[cid]) for cid in in_sql if in_sql[cid] != in_python[cid]}
    assert not mismatched
    assert len(set(in_python.values())) > 10  # the cases do differ from each other
