"""The webhook apply job and the hostaway_webhook_events sensor, run in process against real Postgres."""

from __future__ import annotations

import json

import dagster as dg
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from hostaway_pipeline.definitions import defs
from hostaway_pipeline.defs.jobs import reconcile_account_job
from hostaway_pipeline.defs.resources import WarehouseResource
from hostaway_pipeline.defs.webhook_jobs import SOURCE_TAG, apply_run_config, apply_webhook_events_job
from hostaway_pipeline.defs.webhook_sensor import SWEEP_TAG, WebhookCursor, build_webhook_events_sensor
from hostaway_pipeline.storage import tables
from hostaway_pipeline.storage.redaction import Redactor
from hostaway_pipeline.webhooks.event_store import WebhookEventStore
from hostaway_pipeline_tests.webhooks.support import register_account, stored_events

ACCOUNTS = (4242, 5151)


def body(account_id: int, object_id: int, event: str = "reservation.updated") -> bytes:
    data = {"id": object_id, "conversationId": 3, "updatedOn": "2026-03-01 10:00:00"}
    return json.dumps({"object": "reservation", "event": event, "accountId": account_id,
                       "payload": {"data": data}}).encode()


@pytest.fixture
def store(engine: Engine, pipeline_settings_env) -> WebhookEventStore:
    for account_id in ACCOUNTS:
        register_account(engine, account_id)
    return WebhookEventStore.on(engine, Redactor([]))


@pytest.fixture
def warehouse(database_url: str, pipeline_settings_env) -> WarehouseResource:
    return WarehouseResource(database_url=database_url)


def test_the_apply_job_records_one_webhook_materialization_per_asset_and_account(store, warehouse, engine):
    first = store.receive(body(ACCOUNTS[0], 1)).event_id
    store.receive(body(ACCOUNTS[0], 2))
    store.receive(body(ACCOUNTS[1], 1))
    last = store.receive(body(ACCOUNTS[1], 9, event="message.received")).event_id
    instance = dg.DagsterInstance.ephemeral()
    result = apply_webhook_events_job.execute_in_process(
        instance=instance, run_config=apply_run_config(first, last), resources={"warehouse": warehouse})
    assert result.success and {event.status for event in stored_events(engine)} == {"applied"}
    recorded = {}
    for name in ("reservations", "messages"):
        for record in instance.fetch_materializations(dg.AssetKey(["hostaway", name]), limit=10).records:
            materialization = record.asset_materialization
            assert materialization is not None and materialization.tags == {SOURCE_TAG: "webhook"}
            assert "reported_count" not in materialization.metadata
            recorded[(name, materialization.partition)] = materialization.metadata["events_applied"].value
    assert recorded == {("reservations", "4242"): 2, ("reservations", "5151"): 1, ("messages", "5151"): 1}


def tick(warehouse: WarehouseResource, cursor: str | None, instance: dg.DagsterInstance | None = None,
         **options) -> dg.SensorResult | dg.SkipReason:
    sensor = build_webhook_events_sensor(**options)
    with dg.build_sensor_context(instance=instance or dg.DagsterInstance.ephemeral(), cursor=cursor,
                                 resources={"warehouse": warehouse}) as context:
        result = sensor(context)
    assert isinstance(result, dg.SensorResult | dg.SkipReason)
    return result


def skipped(result: dg.SensorResult | dg.SkipReason) -> bool:
    if isinstance(result, dg.SkipReason):
        return True
    return not result.run_requests and result.skip_reason is not None


def requested_range(result: dg.SensorResult | dg.SkipReason) -> tuple[str | None, dict]:
    assert isinstance(result, dg.SensorResult) and result.run_requests is not None
    [request] = result.run_requests
    assert isinstance(request, dg.RunRequest)
    return request.run_key, request.run_config["ops"]["apply_webhook_events"]["config"]


def test_the_sensor_requests_one_bounded_run_per_tick_with_the_id_range_in_run_key_and_config(store, warehouse):
    ids = [store.receive(body(ACCOUNTS[0], object_id)).event_id for object_id in (1, 2, 3)]
    first_tick = tick(warehouse, None, max_events_per_run=2)
    assert requested_range(first_tick) == (f"webhook-events-{ids[0]}-{ids[1]}",
                                           {"first_event_id": ids[0], "last_event_id": ids[1]})
    assert isinstance(first_tick, dg.SensorResult)
    second_tick = tick(warehouse, first_tick.cursor, max_events_per_run=2)
    assert requested_range(second_tick) == (f"webhook-events-{ids[2]}-{ids[2]}",
                                            {"first_event_id": ids[2], "last_event_id": ids[2]})


def test_a_restart_with_the_saved_cursor_does_not_request_the_same_range_again(store, warehouse):
    store.receive(body(ACCOUNTS[0], 1))
    first_tick = tick(warehouse, None)
    assert isinstance(first_tick, dg.SensorResult)
    assert skipped(tick(warehouse, first_tick.cursor))


def received_an_hour_ago(store: WebhookEventStore, engine: Engine) -> int:
    event_id = store.receive(body(ACCOUNTS[0], 1)).event_id
    with engine.begin() as connection:  # committed a while ago, after the cursor had already moved past its id
        connection.execute(sa.update(tables.webhook_events).values(received_at=sa.text("now() - interval '1 hour'")))
    return event_id


def test_a_sweep_requests_pending_events_committed_below_the_cursor(store, warehouse, engine):
    late = received_an_hour_ago(store, engine)
    result = tick(warehouse, WebhookCursor(next_event_id=late + 1).dump())
    assert requested_range(result) == (f"webhook-sweep-1-{late}-{late}", {"first_event_id": late,
                                                                          "last_event_id": late})


def test_apply_runs_go_before_reconciliations_and_wait_for_no_api_slot():
    repository = defs.get_repository_def()
    apply_job = repository.get_job("apply_hostaway_webhook_events")
    assert int(apply_job.tags["dagster/priority"]) > max(0, int(reconcile_account_job.tags["dagster/priority"]))
    assert all(node.definition.pool is None for node in apply_job.graph.node_dict.values())
    assert repository.get_sensor_def("hostaway_webhook_events").job_name == "apply_hostaway_webhook_events"


def test_no_second_sweep_while_a_sweep_run_is_in_flight(store, warehouse, engine):
    late = received_an_hour_ago(store, engine)
    instance = dg.DagsterInstance.ephemeral()
    instance.create_run_for_job(apply_webhook_events_job, run_config=apply_run_config(late, late))
    # A forward apply run in flight does not hold the sweep back...
    assert requested_range(tick(warehouse, WebhookCursor(next_event_id=late + 1).dump(), instance))[0] == (
        f"webhook-sweep-1-{late}-{late}")
    instance.create_run_for_job(apply_webhook_events_job, run_config=apply_run_config(late, late),
                                tags={SWEEP_TAG: "true"})
    # ...a sweep in flight does: it will claim what a second sweep would ask for.
    assert skipped(tick(warehouse, WebhookCursor(next_event_id=late + 1).dump(), instance))


def test_under_steady_traffic_a_tick_requests_new_events_and_sweeps_late_ones(store, warehouse, engine):
    late = received_an_hour_ago(store, engine)
    fresh = store.receive(body(ACCOUNTS[1], 2)).event_id
    result = tick(warehouse, WebhookCursor(next_event_id=late + 1).dump())
    assert isinstance(result, dg.SensorResult) and result.run_requests is not None
    assert sorted(request.run_key for request in result.run_requests) == [
        f"webhook-events-{fresh}-{fresh}", f"webhook-sweep-1-{late}-{late}"]


def unregistered_body(account_id: int) -> bytes:
    return body(account_id, 77)


def test_events_of_an_account_registered_later_are_requested_on_the_next_tick(store, warehouse, engine):
    newcomer = 6161
    event_id = store.receive(unregistered_body(newcomer)).event_id
    assert [event.status for event in stored_events(engine)] == ["unknown_account"]
    waiting = tick(warehouse, None)
    assert skipped(waiting)
    register_account(engine, newcomer)
    assert requested_range(tick(warehouse, waiting.cursor if isinstance(waiting, dg.SensorResult) else None)) == (
        f"webhook-events-{event_id}-{event_id}", {"first_event_id": event_id, "last_event_id": event_id})
    assert [event.status for event in stored_events(engine)] == ["pending"]


def test_applied_events_past_retention_are_pruned_once_an_hour(store, warehouse, engine):
    old, recent = (store.receive(body(ACCOUNTS[0], object_id)).event_id for object_id in (1, 2))
    with engine.begin() as connection:
        connection.execute(sa.update(tables.webhook_events).values(status="applied", applied_at=sa.func.now()))
        connection.execute(sa.update(tables.webhook_events).where(tables.webhook_events.c.event_id == old)
                           .values(applied_at=sa.text("now() - interval '8 days'")))
    first = tick(warehouse, None)
    assert [event.event_id for event in stored_events(engine)] == [recent]
    assert isinstance(first, dg.SensorResult) and WebhookCursor.parse(first.cursor).pruned_at > 0
    with engine.begin() as connection:  # now older than retention too, but the last prune was moments ago
        connection.execute(sa.update(tables.webhook_events).values(applied_at=sa.text("now() - interval '9 days'")))
    tick(warehouse, first.cursor)
    assert [event.event_id for event in stored_events(engine)] == [recent]
    tick(warehouse, None)  # a cursor without a prune time prunes
    assert stored_events(engine) == []


def test_the_tick_interval_and_retention_come_from_the_settings(monkeypatch, pipeline_settings_env):
    monkeypatch.setenv("HOSTAWAY_WEBHOOK_SENSOR_INTERVAL", "5")
    assert build_webhook_events_sensor().minimum_interval_seconds == 5
    monkeypatch.delenv("HOSTAWAY_WEBHOOK_SENSOR_INTERVAL")
    assert build_webhook_events_sensor().minimum_interval_seconds == 15
