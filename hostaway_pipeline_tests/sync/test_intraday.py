"""The intraday pass and where re-verification is spent, against the stand-in over real sockets and Postgres.

An intraday pass reads the conversation list from its head down to a page reaching back before the newest
``messageSentOn`` stored (one call on a quiet account), then the messages of the conversations that moved
(one call each). Without a complete read to start from it reads the whole list and says so. The daily
messages sync re-reads active conversations (upcoming, in stay, departed recently) on a short cycle and
the others on a long one, which is what catches changes no marker shows (an older message edited).
"""

from __future__ import annotations

import math

import dagster as dg
import pytest
import sqlalchemy as sa

from hostaway_pipeline.defs.intraday import build_intraday_schedule, intraday_account_job, intraday_run_requests
from hostaway_pipeline.defs.partitions import partition_key
from hostaway_pipeline.simulator.server import SimulatorServer
from hostaway_pipeline.storage import tables
from hostaway_pipeline.sync import full_sync, intraday, messages_sync
from hostaway_pipeline.sync.failures import ReadsFailed
from hostaway_pipeline.sync.messages_sync import PROGRESS_PREFIX, ReverifyPolicy
from hostaway_pipeline_tests.pipeline_harness import PipelineHarness, registered_harness

ACCOUNT = 58001
SIZE = 250  # three pages of conversations


@pytest.fixture
def stand_in(engine, database_url, pipeline_settings_env):
    with registered_harness(database_url, {ACCOUNT: SIZE}, seed=41) as harness:
        yield harness


def daily(harness: PipelineHarness, **options):
    client, writer, engine = harness.api.client_for(ACCOUNT), harness.warehouse.writer, harness.warehouse.engine
    full_sync.sync_conversations(client, writer, engine)
    return messages_sync.sync_messages(client, writer, engine, **options)


def intraday_pass(harness: PipelineHarness):
    return intraday.sync_intraday(harness.api.client_for(ACCOUNT), harness.warehouse.writer,
                                  harness.warehouse.engine)


def calls(simulator: SimulatorServer, endpoint: str) -> int:
    return int(simulator.stats()["by_endpoint"].get(endpoint, 0))


def stored_messages(harness: PipelineHarness) -> dict[int, dict]:
    table = tables.messages.table
    with harness.warehouse.engine.connect() as connection:
        return {row.id: row.raw for row in connection.execute(sa.select(table.c.id, table.c.raw).where(
            table.c.account_id == ACCOUNT, table.c.deleted_at.is_(None)))}


def messages_equal_truth(harness: PipelineHarness, conversation_ids: set[int] | None = None) -> bool:
    truth = {int(m["id"]): m for m in harness.simulator.truth(ACCOUNT)["messages"]
             if conversation_ids is None or m["conversationId"] in conversation_ids}
    rows = {i: m for i, m in stored_messages(harness).items()
            if conversation_ids is None or m["conversationId"] in conversation_ids}
    return set(rows) == set(truth) and all(rows[i]["updatedOn"] == m["updatedOn"] and rows[i]["status"] == m["status"]
                                           and rows[i]["body"] == m["body"] for i, m in truth.items())


def test_a_quiet_intraday_pass_costs_one_conversations_call_and_reads_no_messages(stand_in):
    daily(stand_in)
    stand_in.simulator.reset_stats()
    conversations, messages = intraday_pass(stand_in)
    assert conversations.extra["read_kind"] == "head" and conversations.extra["read_pages"] == 1
    assert conversations.extra["conversations_moved"] == 0 and messages.extra["conversations_read"] == 0
    assert stand_in.simulator.stats()["total_calls"] == 1


def test_host_sent_and_scheduled_sent_messages_are_read_by_one_head_page_and_one_call_each(stand_in):
    simulator = stand_in.simulator
    simulator.mutate(ACCOUNT, {"scheduled_messages": 3})
    daily(stand_in)
    touched = simulator.mutate(ACCOUNT, {"outgoing_messages": 4, "send_scheduled_messages": 2, "new_reservations": 1})
    moved = set(touched["touched_conversations"]) | set(touched["new_conversations"])
    simulator.reset_stats()
    conversations, messages = intraday_pass(stand_in)
    assert conversations.extra["read_kind"] == "head" and calls(simulator, "conversations") == 1
    assert messages.extra["conversations_read"] == calls(simulator, "messages") >= len(moved)
    assert calls(simulator, "messages") <= len(moved) + conversations.extra["conversations_moved"]
    assert messages_equal_truth(stand_in, moved)


def test_a_head_walk_without_a_complete_read_to_start_from_reads_the_whole_list_and_says_so(stand_in):
    conversations, _ = intraday_pass(stand_in)
    assert conversations.extra["read_kind"] == "full"
    assert conversations.extra["read_notes"].startswith(
        "whole list: no complete read of this account's conversations is recorded yet")
    assert conversations.fetched == SIZE


def test_an_intraday_pass_leaves_incoming_messages_that_move_no_conversation_to_the_daily_pass(stand_in):
    simulator = stand_in.simulator
    daily(stand_in)
    touched = simulator.mutate(ACCOUNT, {"incoming_messages": 3})
    guests = set(touched["touched_conversations"])
    intraday_pass(stand_in)
    daily(stand_in, reverify_days=0)
    assert messages_equal_truth(stand_in, guests)


def test_reverification_reads_active_conversations_on_the_short_cycle_and_the_others_on_the_long_one(stand_in):
    policy = ReverifyPolicy(active_days=2, other_days=5)
    daily(stand_in, reverify=policy)
    edited = stand_in.simulator.mutate(ACCOUNT, {"edit_messages": 3})["edit_messages"]
    assert not messages_equal_truth(stand_in)
    first = daily(stand_in, reverify=policy)
    active, live = first.extra["conversations_active"], first.extra["conversations_live"]
    assert 0 < active < live
    assert first.extra["conversations_moved"] == 0  # an older message edited moves no marker
    assert first.extra["conversations_reverified_active"] == math.ceil(active / 2)
    assert first.extra["conversations_reverified_other"] == math.ceil((live - active) / 5)
    for _ in range(4):
        daily(stand_in, reverify=policy)
    assert messages_equal_truth(stand_in), f"edited messages {edited} not re-read within the long cycle"


def test_progress_lines_come_every_batch_with_done_total_calls_waits_and_time_left(stand_in):
    lines: list[str] = []
    daily(stand_in, batch_conversations=100, on_progress=lines.append)
    progress = [line for line in lines if line.startswith(PROGRESS_PREFIX)]
    assert [line.split(": ")[2].split(" ")[0] for line in progress] == ["100/250", "200/250"]
    assert all(" calls, " in line and "waited on the rate limits" in line and " s left" in line for line in progress)


def test_the_intraday_job_runs_one_pass_per_account_and_its_schedule_ships_stopped(stand_in):
    daily(stand_in)
    stand_in.simulator.mutate(ACCOUNT, {"outgoing_messages": 2})
    stand_in.simulator.reset_stats()
    result = intraday_account_job.execute_in_process(instance=stand_in.instance, partition_key=partition_key(ACCOUNT),
                                                     resources=stand_in.resources)
    assert result.success
    output = next(event for event in result.all_events if event.is_successful_output)
    metadata = {key: value.value for key, value in output.step_output_data.metadata.items()}
    assert metadata["conversations_read_kind"] == "head"
    assert metadata["api_calls"] == 1 + metadata["conversations_messages_read"] == stand_in.simulator.stats()[
        "total_calls"]
    schedule = build_intraday_schedule("*/20 * * * *")
    assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED and schedule.cron_schedule == "*/20 * * * *"
    (request,) = intraday_run_requests(stand_in.instance, [ACCOUNT, ACCOUNT + 1], "2026-11-29T10:17")
    assert request.partition_key == partition_key(ACCOUNT) and request.tags["hostaway/trigger"] == "intraday"


@pytest.mark.parametrize(("action", "target"), [("delete", "served"), ("create", None), ("update", "served"),
                                                ("update", "unserved")])
def test_a_head_walk_over_two_pages_misses_no_moved_conversation_while_rows_shift_under_it(stand_in, action,
                                                                                           target):
    """Offset paging while conversations are added, removed or move to the head mid-walk (the docs' reading):
    every conversation that moved before the pass has its messages read, or the pass reads the whole list."""
    simulator = stand_in.simulator
    daily(stand_in)
    touched = simulator.mutate(ACCOUNT, {"outgoing_messages": 130})  # more than one page of movers
    moved = set(touched["touched_conversations"])
    assert len(moved) > 100
    placement = {"target": target} if target else {}
    simulator.add_fault(kind="page_drift", endpoint="conversations", action=action, rows=3, count=1, **placement)
    alive_before = {int(c["id"]) for c in simulator.truth(ACCOUNT)["conversations"]}
    try:
        conversations, _ = intraday_pass(stand_in)
    except ReadsFailed as failed:  # conversations deleted mid-walk answer 404: loud, never a green pass
        gone = alive_before - {int(c["id"]) for c in simulator.truth(ACCOUNT)["conversations"]}
        assert action == "delete" and gone and "answered 404" in str(failed)
    else:
        assert conversations.extra["read_kind"] == "full" or conversations.extra["read_pages"] >= 2
    alive = {int(c["id"]) for c in simulator.truth(ACCOUNT)["conversations"]}
    assert messages_equal_truth(stand_in, moved & alive)  # what was readable was read, whatever failed
