"""Property: whatever upstream does between passes, a daily pass leaves the tables equal to ground truth.

Hypothesis drives random sequences of upstream changes in the stand-in (new, updated and cancelled
reservations, status changes, incoming, outgoing and scheduled messages, scheduled messages sent,
reservations deleted with their conversations) interleaved with daily passes (listings, reservations read
incrementally, the whole conversation list, messages with the default re-verification) and intraday
passes (the conversation list's head, then the moved conversations' messages). After every daily pass the
four tables equal the stand-in's truth; after every intraday pass every conversation that sent a message
since the previous pass has all its messages stored at their newest version. One change no marker shows
is left out of the comparison while it lasts: a scheduled message created behind a later one (not the
preview) stays unseen until it is sent or cancelled (both move a marker) or re-verification reads
its conversation; ``test_intraday`` tests that re-verification catches such changes within its cycle.
Each example is a fresh account of the one stand-in, so examples share nothing but the server. Over real
sockets and Postgres.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hostaway_pipeline.simulator.server import SimulatorServer
from hostaway_pipeline.storage import tables
from hostaway_pipeline.sync import full_sync, intraday, messages_sync, reservations_sync
from hostaway_pipeline_tests.pipeline_harness import TIME_SCALE, PipelineHarness, build_harness

SIZE = 20
FIRST_ACCOUNT = 57001
CHANGE_KINDS = ("new_reservations", "update_reservations", "cancel_reservations", "status_changes",
                "incoming_messages", "outgoing_messages", "scheduled_messages", "send_scheduled_messages",
                "delete_reservations")
COMPARED = {"listings": ("latestActivityOn",),
            "reservations": ("updatedOn", "latestActivityOn", "status", "departureDate"),
            "conversations": ("messageSentOn", "messageReceivedOn", "hasUnreadMessages"),
            "messages": ("updatedOn", "status", "date")}

_accounts = itertools.count(FIRST_ACCOUNT)

changes = st.dictionaries(st.sampled_from(CHANGE_KINDS), st.integers(min_value=1, max_value=2), min_size=1,
                          max_size=3).map(lambda kinds: {k: (1 if k == "delete_reservations" else n)
                                                         for k, n in kinds.items()})
steps = st.lists(st.one_of(st.tuples(st.just("change"), changes), st.just(("daily", None)),
                           st.just(("intraday", None))), min_size=2, max_size=6)


@pytest.fixture(scope="module")
def simulator() -> Iterator[SimulatorServer]:
    with SimulatorServer(seed=31, time_scale=TIME_SCALE) as simulator:
        yield simulator


def stored(harness: PipelineHarness, account_id: int, resource: str) -> dict[int, dict]:
    table = tables.ENTITY_TABLES[resource].table
    with harness.warehouse.engine.connect() as connection:
        return {row.id: row.raw for row in connection.execute(sa.select(table.c.id, table.c.raw).where(
            table.c.account_id == account_id, table.c.deleted_at.is_(None)))}


def differences(harness: PipelineHarness, account_id: int, resource: str, truth: dict[str, Any],
                only_conversations: set[int] | None = None, unseen: frozenset[int] = frozenset()) -> list[str]:
    rows = stored(harness, account_id, resource)
    upstream = {int(o["id"]): o for o in truth[resource]}
    if resource == "messages":  # scheduled behind a later one and still awaiting: no marker has moved
        hidden = {i for i in unseen if upstream.get(i, {}).get("status") == "awaiting"}
        rows = {i: o for i, o in rows.items() if i not in hidden}
        upstream = {i: o for i, o in upstream.items() if i not in hidden}
    if only_conversations is not None:
        rows = {i: o for i, o in rows.items() if o.get("conversationId") in only_conversations}
        upstream = {i: o for i, o in upstream.items() if o.get("conversationId") in only_conversations}
    found = [f"{resource}: stored but not upstream {sorted(set(rows) - set(upstream))}"] if set(rows) - set(
        upstream) else []
    found += [f"{resource}: upstream but not stored {sorted(set(upstream) - set(rows))}"] if set(upstream) - set(
        rows) else []
    found += [f"{resource} {i}: {key} {rows[i].get(key)!r} != {o.get(key)!r}" for i, o in upstream.items()
              if i in rows for key in COMPARED[resource] if rows[i].get(key) != o.get(key)]
    if resource == "conversations":
        found += [f"conversation {i}: markers differ" for i, o in upstream.items()
                  if i in rows and messages_sync.conversation_marker(rows[i]) != messages_sync.conversation_marker(o)]
    return found


def daily_pass(harness: PipelineHarness, account_id: int) -> None:
    client, writer, engine = harness.api.client_for(account_id), harness.warehouse.writer, harness.warehouse.engine
    full_sync.sync_listings(client, writer, engine)
    reservations_sync.sync_reservations(client, writer, engine)
    full_sync.sync_conversations(client, writer, engine)
    messages_sync.sync_messages(client, writer, engine)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture],
          derandomize=True)
@given(sequence=steps)
def test_after_every_daily_pass_the_tables_equal_ground_truth(simulator, engine, database_url,
                                                              pipeline_settings_env, sequence):
    account_id = next(_accounts)
    simulator.add_account(account_id, SIZE)
    harness = build_harness(database_url, simulator)
    harness.register(account_id)
    daily_pass(harness, account_id)  # the first sync of an account is full
    unseen: set[int] = set()
    for kind, requested in [*sequence, ("daily", None)]:
        if kind == "change":
            touched = simulator.mutate(account_id, requested)
            previews = {int(c["id"]): [int(m["id"]) for m in c["conversationMessages"]]
                        for c in simulator.truth(account_id)["conversations"]}
            messages_now = {int(m["id"]): m for m in simulator.truth(account_id)["messages"]}
            unseen |= {mid for mid in touched.get("scheduled_messages", []) if mid in messages_now
                       and mid not in previews.get(int(messages_now[mid]["conversationId"]), [])}
        elif kind == "daily":
            daily_pass(harness, account_id)
            truth = simulator.truth(account_id)
            found = [d for resource in COMPARED
                     for d in differences(harness, account_id, resource, truth, unseen=frozenset(unseen))]
            assert not found, f"after {sequence}: {found[:10]}"
        else:
            sent_before = {i: o.get("messageSentOn") for i, o in stored(harness, account_id, "conversations").items()}
            intraday.sync_intraday(harness.api.client_for(account_id), harness.warehouse.writer,
                                   harness.warehouse.engine)
            truth = simulator.truth(account_id)
            moved = {int(o["id"]) for o in truth["conversations"]
                     if sent_before.get(int(o["id"])) != o["messageSentOn"]}
            found = differences(harness, account_id, "messages", truth, only_conversations=moved)
            assert not found, f"after {sequence}, the intraday pass missed: {found[:10]}"
