"""Reservations read incrementally between full listings, against the stand-in over real sockets.

The first sync lists every reservation and records the watermark; later syncs read only what changed
since it (a ``latestActivityStart`` window plus the head of the ``updatedOn DESC`` list), under every
reading of ``afterId`` and of which changes move ``latestActivityOn``, with rows moving while the window
pages. A partial incremental read fails and leaves the sync state as it was; a full listing (weekly,
forced, or when the counts disagree) is what proves deletions.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from hostaway_pipeline.orchestration import account_statuses, sync_state_summary
from hostaway_pipeline.simulator.server import SimulatorServer
from hostaway_pipeline.storage import tables
from hostaway_pipeline.storage.source_values import to_timestamp
from hostaway_pipeline.sync import reservations_sync, sync_state
from hostaway_pipeline.sync.failures import IncompleteRead
from hostaway_pipeline_tests.pipeline_harness import PipelineHarness, registered_harness

ACCOUNT = 53001
SIZE = 250  # three pages of 100
COMPARED_KEYS = ("updatedOn", "latestActivityOn", "status", "departureDate", "adults", "hostNote")
ACTIVITY_READINGS = ["every_change", "not_on_edits"]
A_DAY = {"new_reservations": 2, "update_reservations": 3, "cancel_reservations": 2, "status_changes": 1,
         "incoming_messages": 3}


@pytest.fixture
def stand_in(engine, database_url, pipeline_settings_env):
    with registered_harness(database_url, {ACCOUNT: SIZE}, seed=23) as harness:
        yield harness


def sync(harness: PipelineHarness, **options):
    return reservations_sync.sync_reservations(harness.api.client_for(ACCOUNT), harness.warehouse.writer,
                                               harness.warehouse.engine, **options)


def state(harness: PipelineHarness) -> sync_state.SyncState:
    found = sync_state.load(harness.warehouse.engine, ACCOUNT, "reservations")
    assert found is not None
    return found


def assert_equal_to_truth(harness: PipelineHarness) -> None:
    truth = {int(o["id"]): o for o in harness.simulator.truth(ACCOUNT)["reservations"]}
    table = tables.reservations.table
    with harness.warehouse.engine.connect() as connection:
        live = {row.id: row.raw for row in connection.execute(
            sa.select(table.c.id, table.c.raw).where(table.c.account_id == ACCOUNT, table.c.deleted_at.is_(None)))}
    assert set(live) == set(truth)
    differing = [i for i, o in truth.items() if any(live[i].get(k) != o.get(k) for k in COMPARED_KEYS)]
    assert not differing, f"reservations not at their newest version: {differing[:10]}"


def reservations_calls(simulator: SimulatorServer) -> int:
    return int(simulator.stats()["by_endpoint"].get("reservations", 0))


def test_the_first_sync_lists_every_reservation_and_records_the_newest_change_as_watermark(stand_in):
    outcome = sync(stand_in)

    assert outcome.extra["read_kind"] == "full"
    assert_equal_to_truth(stand_in)
    recorded = state(stand_in)
    truth = stand_in.simulator.truth(ACCOUNT)["reservations"]
    assert recorded.watermark == max(to_timestamp(o["updatedOn"]) for o in truth)
    assert recorded.last_full_read_at is not None and recorded.last_incremental_read_at is None
    assert (recorded.last_read_kind, recorded.last_read_objects, recorded.last_api_count) == ("full", SIZE, SIZE)
    assert outcome.metadata()["sync_watermark"] == recorded.watermark.isoformat()


def test_a_quiet_incremental_read_costs_two_calls_and_changes_nothing(stand_in):
    sync(stand_in)
    before = state(stand_in)
    stand_in.simulator.reset_stats()

    outcome = sync(stand_in)

    assert outcome.extra["read_kind"] == "incremental"
    assert stand_in.simulator.stats()["total_calls"] == 2  # the window and the head page
    assert (outcome.counts.inserted, outcome.counts.updated, outcome.counts.soft_deleted) == (0, 0, 0)
    after = state(stand_in)
    assert after.watermark == before.watermark and after.last_full_read_at == before.last_full_read_at
    assert after.last_incremental_read_at is not None and after.last_read_kind == "incremental"
    assert outcome.reported_count == SIZE  # the account's total: what the row-count check compares with
    assert_equal_to_truth(stand_in)


@pytest.mark.parametrize("activity_reading", ACTIVITY_READINGS)
def test_new_updated_and_cancelled_reservations_are_read_incrementally(stand_in, activity_reading):
    stand_in.simulator.configure(latest_activity_reading=activity_reading)
    sync(stand_in)
    before = state(stand_in)
    touched = stand_in.simulator.mutate(ACCOUNT, A_DAY)
    stand_in.simulator.reset_stats()

    outcome = sync(stand_in)

    assert outcome.extra["read_kind"] == "incremental"
    assert reservations_calls(stand_in.simulator) == 2
    assert outcome.counts.inserted == len(touched["new_reservations"])
    changed = {*touched["update_reservations"], *touched["cancel_reservations"], *touched["status_changes"]}
    assert outcome.counts.updated >= len(changed)
    assert_equal_to_truth(stand_in)
    assert state(stand_in).watermark > before.watermark


def test_a_partial_window_read_fails_keeps_the_watermark_and_the_next_sync_catches_up(stand_in):
    sync(stand_in)
    before = state(stand_in)
    stand_in.simulator.mutate(ACCOUNT, {"update_reservations": 3, "new_reservations": 1})
    # The window answered empty with its true count every time: the cursor walk, the offset walk and the recount.
    stand_in.simulator.add_fault(kind="empty_page", endpoint="reservations", count=3)

    short = r"account 53001 reservations: read 0 of the \d+ objects the API counted in the window of changes since "
    with pytest.raises(IncompleteRead, match=short + r".*, so the incremental read is incomplete"):
        sync(stand_in)

    assert state(stand_in) == before
    sync(stand_in)
    assert_equal_to_truth(stand_in)


def test_a_short_head_page_fails_the_incremental_read_and_advances_nothing(stand_in):
    sync(stand_in)
    before = state(stand_in)
    stand_in.simulator.mutate(ACCOUNT, {"update_reservations": 2})
    stand_in.simulator.add_fault(kind="empty_page", endpoint="reservations", after=1, count=1)  # the head page

    with pytest.raises(IncompleteRead, match="read 0 of the 250 objects the API counted on the head page"):
        sync(stand_in)

    assert state(stand_in) == before


def test_an_incomplete_full_listing_records_nothing_and_the_next_sync_lists_in_full_again(stand_in):
    stand_in.simulator.add_fault(kind="empty_page", endpoint="reservations", count=1000)
    with pytest.raises(IncompleteRead, match="read 0 of the 250 objects the API counted"):
        sync(stand_in)
    assert sync_state.load(stand_in.warehouse.engine, ACCOUNT, "reservations") is None

    stand_in.simulator.clear_faults()
    sync(stand_in)
    before = state(stand_in)
    stand_in.simulator.add_fault(kind="empty_page", endpoint="reservations", count=1000)
    with pytest.raises(IncompleteRead):
        sync(stand_in, force_full_listing=True)
    assert state(stand_in) == before


def test_a_full_listing_is_due_a_week_after_the_last_one_and_proves_a_deletion(stand_in):
    sync(stand_in)
    with stand_in.simulator.store.lock:
        gone = min(stand_in.simulator.store.accounts[ACCOUNT].reservations)
        stand_in.simulator.store.accounts[ACCOUNT].delete_reservation(gone)
    week_ago = sa.update(tables.sync_state).values(last_full_read_at=tables.sync_state.c.last_full_read_at
                                                   - timedelta(days=7, seconds=1))
    with stand_in.warehouse.engine.begin() as connection:
        connection.execute(week_ago)

    outcome = sync(stand_in)

    assert outcome.extra["read_kind"] == "full"
    assert "the last full listing began 7.0 days ago" in outcome.extra["read_notes"]
    assert outcome.counts.soft_deleted == 1 and outcome.extra["delete_confirmed_gone"] == 1
    assert_equal_to_truth(stand_in)


def test_an_incremental_read_that_leaves_more_live_rows_than_the_api_counts_becomes_a_full_listing(stand_in):
    sync(stand_in)
    with stand_in.simulator.store.lock:
        gone = max(stand_in.simulator.store.accounts[ACCOUNT].reservations)
        stand_in.simulator.store.accounts[ACCOUNT].delete_reservation(gone)

    outcome = sync(stand_in)

    assert outcome.extra["read_kind"] == "full"
    assert "would hold 250 live reservations but the API counts 249" in outcome.extra["read_notes"]
    assert outcome.counts.soft_deleted == 1
    assert_equal_to_truth(stand_in)


def test_more_than_a_page_of_updates_is_listed_in_full(stand_in):
    sync(stand_in)
    stand_in.simulator.mutate(ACCOUNT, {"status_changes": 120})

    outcome = sync(stand_in)

    assert outcome.extra["read_kind"] == "full"
    assert "a whole page of reservations was updated since" in outcome.extra["read_notes"]
    assert_equal_to_truth(stand_in)


def test_forcing_a_full_listing_or_a_zero_cadence_lists_in_full(stand_in):
    sync(stand_in)
    assert sync(stand_in, force_full_listing=True).extra["read_kind"] == "full"
    assert sync(stand_in, full_listing_every=timedelta(0)).extra["read_kind"] == "full"
    assert sync(stand_in).extra["read_kind"] == "incremental"


WINDOW_DRIFTS = [None, ("update", "unserved"), ("update", "cursor"), ("create", None), ("delete", "served")]


@pytest.mark.parametrize("activity_reading", ACTIVITY_READINGS)
@pytest.mark.parametrize("after_id_reading", ["keyset", "id_order", "ignored"])
@pytest.mark.parametrize("drift", WINDOW_DRIFTS, ids=lambda d: "quiet" if d is None else "-".join(filter(None, d)))
def test_a_window_of_several_pages_is_read_whole_while_rows_move_under_every_reading(
        stand_in, after_id_reading, activity_reading, drift):
    simulator = stand_in.simulator
    simulator.configure(after_id_reading=after_id_reading, latest_activity_reading=activity_reading)
    sync(stand_in)
    simulator.mutate(ACCOUNT, {"incoming_messages": 400})  # activity moves on most reservations, updatedOn on none
    if drift is not None:
        action, target = drift
        simulator.add_fault(kind="page_drift", endpoint="reservations", action=action, rows=3, count=1,
                            **({"target": target} if target else {}))

    outcome = sync(stand_in)

    if drift is not None and drift[0] == "delete":  # a deleted row leaves the counts apart: listed in full
        assert outcome.extra["read_kind"] == "full" and outcome.counts.soft_deleted == 3
    else:
        assert outcome.extra["read_kind"] == "incremental"
        assert outcome.extra["read_window_count"] > 100
    assert_equal_to_truth(stand_in)


@pytest.mark.parametrize("filter_reading", ["date_time", "date_only", "date_part"])
def test_a_server_reading_latest_activity_start_as_a_date_loses_nothing(stand_in, filter_reading):
    stand_in.simulator.configure(activity_filter_reading=filter_reading)
    assert sync(stand_in).extra["read_kind"] == "full"  # its catch-up round filters on latestActivityStart
    assert_equal_to_truth(stand_in)
    stand_in.simulator.mutate(ACCOUNT, A_DAY)

    outcome = sync(stand_in)

    assert outcome.extra["read_kind"] == "incremental" and outcome.extra["read_complete"] is True
    assert_equal_to_truth(stand_in)
    starts = [call for call in stand_in.simulator.calls() if call["endpoint"] == "reservations"]
    refused = [call for call in starts if call["status"] == 400]
    assert len(refused) == (2 if filter_reading == "date_only" else 0)  # once per client: one a sync


@pytest.mark.parametrize("count_with_cursor", ["total", "remaining"])
def test_a_count_of_the_remaining_rows_under_a_cursor_does_not_cut_the_window_short(stand_in, count_with_cursor):
    stand_in.simulator.configure(count_with_cursor=count_with_cursor)
    sync(stand_in)
    stand_in.simulator.mutate(ACCOUNT, {"incoming_messages": 400})

    outcome = sync(stand_in)

    assert outcome.extra["read_kind"] == "incremental" and outcome.extra["read_complete"] is True
    assert_equal_to_truth(stand_in)


def test_the_state_is_shown_by_status_and_in_the_materialization_metadata(stand_in):
    first = stand_in.materialize(ACCOUNT, ["reservations"])
    metadata = stand_in.metadata(first, "reservations")
    assert metadata["read_kind"] == "full" and metadata["sync_last_read_kind"] == "full"
    assert metadata["sync_watermark"] == state(stand_in).watermark.isoformat()

    second = stand_in.materialize(ACCOUNT, ["reservations"])
    assert stand_in.metadata(second, "reservations")["read_kind"] == "incremental"
    [status] = account_statuses(stand_in.instance, stand_in.warehouse.engine, stand_in.warehouse.accounts.all())
    line = sync_state_summary(status.sync_states["reservations"])
    assert "last read (incremental) brought " in line and "held" not in line  # not a short read
    forced = stand_in.materialize(ACCOUNT, ["reservations"],
                                  run_config={"ops": {"hostaway__reservations": {"config": {"full_listing": True}}}})
    assert stand_in.metadata(forced, "reservations")["read_kind"] == "full"

    [status] = account_statuses(stand_in.instance, stand_in.warehouse.engine,
                                stand_in.warehouse.accounts.all())
    line = sync_state_summary(status.sync_states["reservations"])
    assert "last full read 20" in line and "last incremental read 20" in line and "(API clock)" in line
    assert f"last read (full) held {SIZE} of {SIZE} counted" in line
