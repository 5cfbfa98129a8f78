"""Materializing the four assets for an account partition against the stand-in: tables equal ground truth."""

from __future__ import annotations

import math

import dagster as dg
import pytest
import sqlalchemy as sa

from hostaway_pipeline.defs.checks import (
    messages_conversation_exists,
    messages_row_count_matches_api,
    reservations_listing_exists,
)
from hostaway_pipeline.settings import ALWAYS_REDACTED_FIELDS, DEFAULT_EXTRA_REDACTED_FIELDS
from hostaway_pipeline.simulator.server import SimulatorServer
from hostaway_pipeline.storage import tables
from hostaway_pipeline.storage.entity_writer import CHANGED_IDS_KEPT, EntityWriter
from hostaway_pipeline.storage.redaction import Redactor
from hostaway_pipeline.sync import full_sync, messages_sync
from hostaway_pipeline.sync.messages_sync import DEFAULT_REVERIFY_ACTIVE_DAYS, DEFAULT_REVERIFY_OTHER_DAYS
from hostaway_pipeline_tests.pipeline_harness import TIME_SCALE, build_harness

ACCOUNT = 31001
REDACT = Redactor(ALWAYS_REDACTED_FIELDS | set(DEFAULT_EXTRA_REDACTED_FIELDS))  # the default settings
ENTITIES = ("listings", "reservations", "conversations", "messages")
# Reservations are read incrementally after the first sync; tests of the full reconciliation ask for it.
FULL_LISTING = {"ops": {"hostaway__reservations": {"config": {"full_listing": True}}}}


@pytest.fixture
def simulator():
    with SimulatorServer(accounts={ACCOUNT: 120, ACCOUNT + 1: "empty"}, seed=11, time_scale=TIME_SCALE) as sim:
        yield sim


@pytest.fixture
def harness(engine, database_url, simulator, pipeline_settings_env):
    harness = build_harness(database_url, simulator)
    harness.register(ACCOUNT)
    return harness


def stored_rows(engine, entity: str, account_id: int = ACCOUNT, live_only: bool = True) -> dict[int, sa.Row]:
    table = tables.ENTITY_TABLES[entity].table
    query = sa.select(table).where(table.c.account_id == account_id)
    if live_only:
        query = query.where(table.c.deleted_at.is_(None))
    with engine.connect() as connection:
        return {row.id: row for row in connection.execute(query)}


def assert_tables_equal_truth(engine, truth: dict) -> None:
    for entity in ENTITIES:
        expected = {int(o["id"]): o for o in truth[entity]}
        rows = stored_rows(engine, entity)
        assert set(rows) == set(expected), f"{entity}: ids differ"
        spec = tables.ENTITY_TABLES[entity]
        for object_id, source in expected.items():
            row = rows[object_id]
            assert row.raw == REDACT(source), f"{entity} {object_id}: raw differs"
            for column in spec.source_columns:
                assert getattr(row, column.name) == column.convert(source.get(column.source_key)), (
                    f"{entity} {object_id}.{column.name}"
                )
    stored_messages = stored_rows(engine, "messages")
    for message in truth["messages"]:
        assert stored_messages[message["id"]].body.encode("utf-8") == message["body"].encode("utf-8")


def test_a_full_materialization_makes_every_table_equal_to_upstream_field_by_field(harness, engine, simulator):
    result = harness.materialize(ACCOUNT)
    assert result.success
    truth = simulator.truth(ACCOUNT)
    assert len(truth["messages"]) > len(truth["conversations"]) > 100
    assert_tables_equal_truth(engine, truth)
    assert any(not m["isIncoming"] for m in truth["messages"])
    assert any(m["status"] != "sent" for m in truth["messages"])  # scheduled messages are stored too


def test_materialization_metadata_reports_calls_rows_waits_and_what_changed(harness, simulator):
    result = harness.materialize(ACCOUNT)
    reservations = harness.metadata(result, "reservations")
    truth = simulator.truth(ACCOUNT)
    assert reservations["rows_inserted"] == len(truth["reservations"]) == reservations["reported_count"]
    assert reservations["api_calls"] >= 2 and reservations["pages"] >= 2
    for key in ("rows_updated", "rows_unchanged", "rows_soft_deleted", "retries", "http_429",
                "rate_limit_wait_seconds"):
        assert key in reservations
    assert reservations["http_429"] == 0
    assert changes(reservations) == {"inserted": (len(truth["reservations"]), CHANGED_IDS_KEPT),
                                     "updated": (0, 0), "soft_deleted": (0, 0)}
    messages = harness.metadata(result, "messages")
    assert messages["conversations_read"] == len(truth["conversations"])
    assert messages["rows_inserted"] == len(truth["messages"])


def changes(metadata: dict) -> dict[str, tuple[int, int]]:
    """The changes preview: per kind of change, its row count and how many ids it lists."""
    records = metadata["changes"].records
    return {r.data["change"]: (r.data["rows"], len(r.data["ids"].split(" (")[0].split(", ")) if r.data["rows"] else 0)
            for r in records}


def changed_ids(metadata: dict) -> dict[str, set[int]]:
    """Per kind of change, the ids the preview lists (all of them when the change is small)."""
    return {r.data["change"]: {int(i) for i in r.data["ids"].split(", ") if i}
            for r in metadata["changes"].records}


def test_every_materialization_carries_the_standard_table_metadata(harness, simulator):
    result = harness.materialize(ACCOUNT)
    truth = simulator.truth(ACCOUNT)
    for entity in ENTITIES:
        metadata = harness.metadata(result, entity)
        assert metadata["dagster/table_name"] == f"hostaway.{entity}"
        assert metadata["dagster/row_count"] == metadata["dagster/partition_row_count"] == len(truth[entity])
        schema = metadata["dagster/column_schema"]
        table = tables.ENTITY_TABLES[entity].table
        assert [column.name for column in schema.columns] == [column.name for column in table.columns]
        for column in schema.columns:
            assert column.description == table.c[column.name].comment and column.description
            assert column.constraints.nullable == table.c[column.name].nullable
    schema = harness.metadata(result, "reservations")["dagster/column_schema"]
    types = {column.name: column.type for column in schema.columns}
    assert types["arrival_date"] == "date" and types["total_price"] == "numeric(14, 2)"
    assert types["raw"] == "jsonb" and types["changed_at"] == "timestamp with time zone"
    assert {c.name for c in schema.columns if "primary key" in c.constraints.other} == {"account_id", "id"}


def test_the_changes_preview_lists_the_ids_inserted_updated_and_soft_deleted(harness, simulator):
    harness.materialize(ACCOUNT)
    touched = simulator.mutate(ACCOUNT, {"cancel_reservations": 2, "new_reservations": 3, "delete_listings": 1})
    result = harness.materialize(ACCOUNT, run_config=FULL_LISTING)
    reservations, listings = harness.metadata(result, "reservations"), harness.metadata(result, "listings")
    assert changed_ids(reservations) == {"inserted": set(touched["new_reservations"]),
                                         "updated": set(touched["cancel_reservations"]), "soft_deleted": set()}
    assert changed_ids(listings) == {"inserted": set(), "updated": set(),
                                     "soft_deleted": set(touched["delete_listings"])}
    assert changes(reservations) == {"inserted": (3, 3), "updated": (2, 2), "soft_deleted": (0, 0)}


def test_a_second_run_changes_nothing_and_skips_unchanged_conversations(harness, engine):
    harness.materialize(ACCOUNT)
    before = {entity: {i: r.changed_at for i, r in stored_rows(engine, entity).items()} for entity in ENTITIES}
    result = harness.materialize(ACCOUNT)
    for entity in ("listings", "reservations", "conversations"):
        metadata = harness.metadata(result, entity)
        assert metadata["rows_inserted"] == metadata["rows_updated"] == metadata["rows_soft_deleted"] == 0
        assert metadata["rows_unchanged"] == metadata["fetched"]
    messages = harness.metadata(result, "messages")
    # No marker moved: only the re-verification slices are read, 1/14 of the active conversations and 1/365
    # of the others.
    assert messages["conversations_moved"] == 0
    active, others = messages["conversations_active"], messages["conversations_live"] - messages["conversations_active"]
    assert messages["conversations_reverified_active"] == math.ceil(active / DEFAULT_REVERIFY_ACTIVE_DAYS)
    assert messages["conversations_reverified_other"] == math.ceil(others / DEFAULT_REVERIFY_OTHER_DAYS)
    assert messages["conversations_reverified"] == (messages["conversations_reverified_active"]
                                                    + messages["conversations_reverified_other"])
    assert messages["conversations_read"] == messages["api_calls"] == messages["conversations_reverified"]
    assert messages["rows_inserted"] == messages["rows_updated"] == messages["rows_soft_deleted"] == 0
    after = {entity: {i: r.changed_at for i, r in stored_rows(engine, entity).items()} for entity in ENTITIES}
    assert after == before


def test_upstream_changes_deletes_and_cancellations_propagate(harness, engine, simulator):
    harness.materialize(ACCOUNT)
    touched = simulator.mutate(ACCOUNT, {"cancel_reservations": 3, "update_reservations": 2, "new_reservations": 2,
                                         "incoming_messages": 4, "outgoing_messages": 2, "scheduled_messages": 2,
                                         "delete_listings": 1})
    result = harness.materialize(ACCOUNT)
    assert result.success
    assert_tables_equal_truth(engine, simulator.truth(ACCOUNT))

    deleted_listing = touched["delete_listings"][0]
    all_listings = stored_rows(engine, "listings", live_only=False)
    assert all_listings[deleted_listing].deleted_at is not None
    for reservation_id in touched["cancel_reservations"]:
        assert stored_rows(engine, "reservations")[reservation_id].status == "cancelled"
    messages = harness.metadata(result, "messages")
    assert 0 < messages["conversations_read"] < messages["conversations_live"]

    simulator.mutate(ACCOUNT, {"restore_listings": 1})
    harness.materialize(ACCOUNT, ["listings"])
    assert stored_rows(engine, "listings")[deleted_listing].deleted_at is None


def test_full_refresh_rereads_every_conversation(harness, simulator):
    harness.materialize(ACCOUNT)
    result = harness.materialize(ACCOUNT, ["messages"],
                                 run_config={"ops": {"hostaway__messages": {"config": {"full_refresh": True}}}})
    messages = harness.metadata(result, "messages")
    assert messages["conversations_read"] == len(simulator.truth(ACCOUNT)["conversations"])
    assert messages["rows_unchanged"] == len(simulator.truth(ACCOUNT)["messages"])


def test_an_empty_account_materializes_to_empty_tables(harness, engine):
    harness.register(ACCOUNT + 1)
    assert harness.materialize(ACCOUNT + 1).success
    for entity in ENTITIES:
        assert stored_rows(engine, entity, ACCOUNT + 1) == {}


def test_a_failed_sync_leaves_the_previous_state(harness, engine, simulator):
    harness.materialize(ACCOUNT)
    before = stored_rows(engine, "reservations")
    simulator.mutate(ACCOUNT, {"cancel_reservations": 5})
    simulator.add_fault(kind="status", endpoint="reservations", status_code=500, count=100, after=1)
    result = harness.materialize(ACCOUNT, ["reservations"], raise_on_error=False)
    assert not result.success
    after = stored_rows(engine, "reservations")
    assert {i: r.raw for i, r in after.items()} == {i: r.raw for i, r in before.items()}


def test_checks_pass_after_a_sync(harness):
    result = harness.materialize(ACCOUNT)
    evaluations = {(e.asset_key.path[-1], e.check_name): e.passed for e in result.get_asset_check_evaluations()}
    assert evaluations == {
        ("listings", "row_count_matches_api"): True,
        ("reservations", "row_count_matches_api"): True,
        ("conversations", "row_count_matches_api"): True,
        ("messages", "row_count_matches_api"): True,
        ("reservations", "listing_exists"): True,
        ("messages", "conversation_exists"): True,
    }


def test_orphan_checks_warn_about_missing_parents(harness, engine):
    """A webhook can store a message before its conversation, or a reservation before its listing."""
    harness.warehouse.writer.write("messages", ACCOUNT, [{"id": 5, "conversationId": 424242, "body": "hi"}])
    harness.warehouse.writer.write("reservations", ACCOUNT, [{"id": 6, "listingMapId": 515151}])
    # Only the checks run (with the cheap listings asset, so the run has a partitioned asset to key on).
    result = harness.materialize(ACCOUNT, selection=dg.AssetSelection.assets(dg.AssetKey(["hostaway", "listings"]))
                                 | dg.AssetSelection.checks(messages_conversation_exists, reservations_listing_exists))
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    for name, metadata_key in (("conversation_exists", "messages_without_conversation"),
                               ("listing_exists", "reservations_without_listing")):
        assert not checks[name].passed and checks[name].severity.value == "WARN"
        assert checks[name].metadata[metadata_key].value == 1


def test_an_unregistered_or_disabled_account_fails_with_a_clear_message(harness):
    harness.warehouse.accounts.set_enabled(ACCOUNT, False)
    result = harness.materialize(ACCOUNT, ["listings"], raise_on_error=False)
    assert not result.success
    failure = result.get_step_failure_events()[0]
    assert "is disabled" in failure.step_failure_data.error.message


def test_a_failure_after_the_rows_are_written_rolls_the_whole_sync_back(harness, engine, simulator, monkeypatch):
    harness.materialize(ACCOUNT, ["reservations"])
    before = stored_rows(engine, "reservations", live_only=False)
    simulator.mutate(ACCOUNT, {"cancel_reservations": 5, "new_reservations": 2})

    def fail_after_writing(*args, **kwargs):
        raise RuntimeError("the database went away between the upsert and the soft delete")

    monkeypatch.setattr(EntityWriter, "soft_delete", fail_after_writing)
    result = harness.materialize(ACCOUNT, ["reservations"], run_config=FULL_LISTING, raise_on_error=False)
    assert not result.success
    after = stored_rows(engine, "reservations", live_only=False)
    assert {i: (r.raw, r.changed_at, r.synced_at, r.deleted_at) for i, r in after.items()} == {
        i: (r.raw, r.changed_at, r.synced_at, r.deleted_at) for i, r in before.items()}


def test_an_upstream_answering_empty_pages_fails_the_run_and_deletes_nothing(harness, engine, simulator):
    harness.materialize(ACCOUNT, ["reservations"])
    before = stored_rows(engine, "reservations")
    simulator.add_fault(kind="empty_page", endpoint="reservations", count=1000)
    result = harness.materialize(ACCOUNT, ["reservations"], run_config=FULL_LISTING, raise_on_error=False)
    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data
    reason = failure.user_failure_data.description
    assert reason == (f"account {ACCOUNT} reservations: read 0 of the {len(before)} objects the API counted, "
                      "so the read is incomplete; wrote what was read, deleted nothing")
    assert set(stored_rows(engine, "reservations")) == set(before)


def test_a_failed_conversations_read_keeps_messages_from_running(harness, engine, simulator):
    simulator.add_fault(kind="empty_page", endpoint="conversations", count=1000)
    result = harness.materialize(ACCOUNT, ["conversations", "messages"], raise_on_error=False)
    assert not result.success
    assert [e.step_key for e in result.get_step_failure_events()] == ["hostaway__conversations"]
    assert "hostaway__messages" not in {e.step_key for e in result.get_step_success_events()}
    assert stored_rows(engine, "messages") == {}


def test_a_newer_version_written_by_a_webhook_during_a_reconciliation_read_is_kept(harness, engine):
    harness.materialize(ACCOUNT, ["reservations"])
    stored = stored_rows(engine, "reservations")
    writer = harness.warehouse.writer
    target = dict(stored[min(stored)].raw)
    newer = {**target, "updatedOn": "2099-01-01 00:00:00", "status": "cancelled"}
    created = {**target, "id": 99_000_001, "updatedOn": "2099-01-01 00:00:00"}

    def read_while_a_webhook_lands(client):
        result = client.reservations()
        writer.write("reservations", ACCOUNT, [newer, created])  # the webhook apply commits mid-read
        return result

    full_sync.reconcile_resource("reservations", harness.api.client_for(ACCOUNT), writer, engine,
                                 read_while_a_webhook_lands)
    after = stored_rows(engine, "reservations")
    assert after[target["id"]].status == "cancelled"  # the read's older version did not overwrite it
    assert created["id"] in after  # nor was the row the webhook created deleted


def test_a_reconciliation_read_replaces_a_stored_row_written_before_it_began(harness, engine, simulator):
    harness.materialize(ACCOUNT, ["reservations"])
    stored = stored_rows(engine, "reservations")
    target = dict(stored[min(stored)].raw)
    # A wrong "newer" version stored earlier (a bad event, a clock gone wrong): the full read is authoritative.
    harness.warehouse.writer.write("reservations", ACCOUNT, [{**target, "updatedOn": "2099-01-01 00:00:00",
                                                              "status": "cancelled"}])
    harness.materialize(ACCOUNT, ["reservations"], run_config=FULL_LISTING)
    truth = {o["id"]: o for o in simulator.truth(ACCOUNT)["reservations"]}
    assert stored_rows(engine, "reservations")[target["id"]].raw == REDACT(dict(truth[target["id"]]))


def test_an_older_event_never_overwrites_a_newer_row_whichever_arrives_first(harness, engine):
    writer = harness.warehouse.writer
    older = {"id": 7, "listingMapId": 1, "status": "new", "updatedOn": "2026-11-01 10:00:00"}
    newer = {**older, "status": "cancelled", "updatedOn": "2026-11-02 10:00:00"}
    for order in ([older, newer], [newer, older]):
        with engine.begin() as connection:
            connection.execute(sa.delete(tables.reservations.table))
        for event in order:
            writer.write("reservations", ACCOUNT, [event])
        assert stored_rows(engine, "reservations")[7].status == "cancelled", order


def test_the_mass_delete_guard_deletes_nothing_and_fails_unless_the_run_allows_it(harness, engine, simulator):
    harness.materialize(ACCOUNT, ["reservations"])
    live = len(stored_rows(engine, "reservations"))
    simulator.add_fault(kind="page_drift", endpoint="reservations", action="delete", target="served", rows=30)
    # They vanish after being read: not yet candidates.
    harness.materialize(ACCOUNT, ["reservations"], run_config=FULL_LISTING)
    assert len(stored_rows(engine, "reservations")) == live

    refused = harness.materialize(ACCOUNT, ["reservations"], run_config=FULL_LISTING, raise_on_error=False)
    assert not refused.success
    reason = refused.get_step_failure_events()[0].step_failure_data.user_failure_data.description
    assert reason.startswith(f"account {ACCOUNT} reservations: refusing to soft-delete more than {max(5, live // 10)}")
    assert "allow_mass_delete" in reason
    assert len(stored_rows(engine, "reservations")) == live

    allowed = harness.materialize(ACCOUNT, ["reservations"], run_config={
        "ops": {"hostaway__reservations": {"config": {"allow_mass_delete": True, "full_listing": True}}}})
    assert harness.metadata(allowed, "reservations")["rows_soft_deleted"] == 30
    assert set(stored_rows(engine, "reservations")) == {o["id"] for o in simulator.truth(ACCOUNT)["reservations"]}


def test_a_few_deletions_are_proved_by_id_and_applied(harness, engine, simulator):
    harness.materialize(ACCOUNT, ["reservations"])
    simulator.add_fault(kind="page_drift", endpoint="reservations", action="delete", target="served", rows=2)
    harness.materialize(ACCOUNT, ["reservations"], run_config=FULL_LISTING)
    simulator.reset_stats()
    result = harness.materialize(ACCOUNT, ["reservations"], run_config=FULL_LISTING)
    metadata = harness.metadata(result, "reservations")
    assert metadata["rows_soft_deleted"] == 2 and metadata["delete_confirmed_gone"] == 2
    assert simulator.stats()["by_endpoint"].get("reservation") == 2  # one GET by id per candidate


def test_reverification_reads_every_conversation_within_its_cycle(harness, engine):
    harness.materialize(ACCOUNT, ["conversations"])
    client, writer = harness.api.client_for, harness.warehouse.writer
    state = tables.conversation_message_sync

    def read_times() -> dict[int, object]:
        with engine.connect() as connection:
            return dict(connection.execute(sa.select(state.c.conversation_id, state.c.messages_synced_at)
                                           .where(state.c.account_id == ACCOUNT)).all())

    live = messages_sync.sync_messages(client(ACCOUNT), writer, engine).extra["conversations_live"]
    first_read = read_times()
    for _ in range(4):
        outcome = messages_sync.sync_messages(client(ACCOUNT), writer, engine, reverify_days=4)
        assert outcome.extra["conversations_moved"] == 0
        assert outcome.extra["conversations_reverified"] == math.ceil(live / 4)
        assert outcome.counts.inserted == outcome.counts.updated == outcome.counts.soft_deleted == 0
    # Four syncs with a four-day cycle have read every conversation again.
    assert all(read_at > first_read[cid] for cid, read_at in read_times().items())
    assert messages_sync.sync_messages(client(ACCOUNT), writer, engine, reverify_days=0).extra[
        "conversations_read"] == 0


def test_the_messages_count_check_fails_when_a_message_is_missing(harness, engine):
    assert harness.materialize(ACCOUNT).success
    messages_table = tables.messages.table
    with engine.begin() as connection:
        victim = connection.execute(sa.select(sa.func.min(messages_table.c.id)).where(
            messages_table.c.account_id == ACCOUNT)).scalar_one()
        connection.execute(sa.delete(messages_table).where(messages_table.c.account_id == ACCOUNT,
                                                           messages_table.c.id == victim))
    result = harness.materialize(ACCOUNT, selection=dg.AssetSelection.assets(dg.AssetKey(["hostaway", "listings"]))
                                 | dg.AssetSelection.checks(messages_row_count_matches_api))
    evaluation = next(e for e in result.get_asset_check_evaluations() if e.asset_key.path[-1] == "messages")
    assert not evaluation.passed
    assert evaluation.metadata["api_count"].value == evaluation.metadata["live_rows"].value + 1


def test_a_404_on_one_conversations_messages_keeps_them_fails_loudly_and_the_others_go_on(harness, engine, simulator):
    assert harness.materialize(ACCOUNT).success
    state = tables.conversation_message_sync
    with engine.connect() as connection:
        markers_before = dict(connection.execute(sa.select(state.c.conversation_id, state.c.marker)).all())
    messages_before = stored_rows(engine, "messages")
    simulator.mutate(ACCOUNT, {"outgoing_messages": 4})
    harness.materialize(ACCOUNT, ["conversations"])
    simulator.add_fault(kind="status", endpoint="messages", status_code=404, count=1)
    result = harness.materialize(ACCOUNT, ["messages"], run_config={
        "ops": {"hostaway__messages": {"config": {"reverify_days": 0}}}}, raise_on_error=False)
    assert not result.success
    reason = result.get_step_failure_events()[0].step_failure_data.user_failure_data.description
    moved_upstream = harness.metadata_of_failure(result)["conversations_moved"]
    assert reason.startswith(f"account {ACCOUNT} messages: 1 of {moved_upstream} conversations could not be read "
                             "(1 answered 404")
    with engine.connect() as connection:
        markers_after = dict(connection.execute(sa.select(state.c.conversation_id, state.c.marker)).all())
    advanced = {cid for cid in markers_after if markers_after[cid] != markers_before.get(cid)}
    assert len(advanced) == moved_upstream - 1  # the 404 one keeps its old marker
    assert set(messages_before) <= set(stored_rows(engine, "messages"))  # nothing deleted
    assert harness.materialize(ACCOUNT).success  # read again next time, and complete
    assert_tables_equal_truth(engine, simulator.truth(ACCOUNT))


def test_a_message_gone_from_its_conversations_full_read_is_proved_gone_then_soft_deleted(harness, engine, simulator):
    assert harness.materialize(ACCOUNT).success
    full_refresh = {"ops": {"hostaway__messages": {"config": {"full_refresh": True}}}}
    # One message vanishes upstream right after its conversation's page was served: not missing yet.
    simulator.add_fault(kind="page_drift", endpoint="messages", action="delete", target="served", rows=1)
    harness.materialize(ACCOUNT, ["messages"], run_config=full_refresh)
    gone = set(simulator.truth(ACCOUNT)["deleted_message_ids"])
    assert len(gone) == 1 and gone <= set(stored_rows(engine, "messages"))
    simulator.reset_stats()
    result = harness.materialize(ACCOUNT, ["messages"], run_config=full_refresh)
    metadata = harness.metadata(result, "messages")
    assert metadata["delete_confirmed_gone"] == 1 and metadata["rows_soft_deleted"] == 1
    assert simulator.stats()["by_endpoint"].get("message") == 1  # one lookup by id proved it
    assert not gone & set(stored_rows(engine, "messages"))
    assert set(stored_rows(engine, "messages")) == {m["id"] for m in simulator.truth(ACCOUNT)["messages"]}
