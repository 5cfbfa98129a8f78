"""The receiver on a real socket (uvicorn), the stand-in delivering to it, real Postgres behind it."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from hostaway_pipeline.simulator.server import SimulatorServer
from hostaway_pipeline.storage.redaction import Redactor
from hostaway_pipeline.webhooks.receiver import MAX_BODY_BYTES, BasicCredentials, receiver_app
from hostaway_pipeline_tests.simulator.support import NO_LIMIT
from hostaway_pipeline_tests.webhooks.support import (
    LOGIN,
    PASSWORD,
    register_account,
    served,
    stored_events,
    webhook_url,
)

ACCOUNT = 20001
UNREGISTERED_ACCOUNT = 20002
CREDENTIALS = BasicCredentials(LOGIN, PASSWORD)
REDACTOR = Redactor(["doorCode"])


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorServer]:
    with SimulatorServer(accounts={ACCOUNT: 20, UNREGISTERED_ACCOUNT: 5}, seed=3, time_scale=100.0,
                         ip_limit=NO_LIMIT, account_limit=NO_LIMIT) as server:
        yield server


@pytest.fixture(scope="module")
def receiver(database_url: str) -> Iterator[str]:
    with served(receiver_app(database_url, CREDENTIALS, REDACTOR)) as base_url:
        yield webhook_url(base_url)


@pytest.fixture
def events(engine):
    """An empty event table, account ACCOUNT registered; returns a reader of what is stored."""
    register_account(engine, ACCOUNT)
    return lambda: stored_events(engine)


def emit(sim: SimulatorServer, url: str, specs: list[dict[str, Any]], account_id: int = ACCOUNT,
         **options: Any) -> list[int | None]:
    outcomes = sim.emit_webhooks(url, specs, account_id, login=LOGIN, password=PASSWORD, **options)
    return [outcome["status_code"] for outcome in outcomes]


def reservation_ids(sim: SimulatorServer, account_id: int = ACCOUNT) -> list[int]:
    return [row["id"] for row in sim.truth(account_id)["reservations"]]


@pytest.mark.parametrize("shape", ["payload_data", "data", "eventType"])
def test_every_payload_shape_is_stored_pending_with_its_object(sim, receiver, events, shape):
    reservation_id = reservation_ids(sim)[0]
    message = next(m for m in sim.truth(ACCOUNT)["messages"] if m["isIncoming"])
    statuses = emit(sim, receiver, [{"event": "reservation.updated", "reservation_id": reservation_id},
                                    {"event": "message.received", "message_id": message["id"]}], shape=shape)
    stored = events()
    assert statuses == [200, 200]
    assert [(e.event, e.object_type, e.object_id, e.status) for e in stored] == [
        ("reservation.updated", "reservation", reservation_id, "pending"),
        ("message.received", "conversationMessage", message["id"], "pending"),
    ]
    assert all(e.object_updated_on is not None and e.account_id == ACCOUNT for e in stored)


def test_the_test_ping_is_acknowledged_and_stored_as_ignored(sim, receiver, events):
    assert emit(sim, receiver, [{"event": "test"}]) == [200]
    [ping] = events()
    assert ping.status == "ignored" and ping.payload["data"] == "test"


@pytest.mark.parametrize("auth", [None, (LOGIN, "wrong"), ("wrong", PASSWORD), (LOGIN, PASSWORD + "x")])
def test_wrong_or_missing_credentials_get_401_and_nothing_is_stored(sim, receiver, events, auth):
    body = {"object": "reservation", "event": "reservation.updated", "accountId": ACCOUNT,
            "data": sim.truth(ACCOUNT)["reservations"][0]}
    response = requests.post(receiver, json=body, auth=auth, timeout=30)
    assert response.status_code == 401 and response.headers["WWW-Authenticate"].startswith("Basic")
    assert events() == []


def test_a_body_over_one_mebibyte_gets_413_and_nothing_is_stored(receiver, events):
    too_large = json.dumps({"event": "reservation.updated", "accountId": ACCOUNT,
                            "data": {"id": 1, "note": "x" * MAX_BODY_BYTES}}).encode()
    response = requests.post(receiver, data=too_large, auth=(LOGIN, PASSWORD), timeout=30)
    assert response.status_code == 413 and events() == []


def test_a_delivery_sent_twice_is_stored_once(sim, receiver, events):
    ids = reservation_ids(sim)[:3]
    statuses = emit(sim, receiver, [{"event": "reservation.updated", "reservation_id": rid} for rid in ids],
                    duplicate=True, shuffle=True)
    assert statuses == [200] * 6
    assert sorted(e.object_id for e in events()) == sorted(ids)


def test_a_newer_version_of_the_same_object_is_stored_as_a_new_event(sim, receiver, events):
    reservation = sim.truth(ACCOUNT)["reservations"][0]
    newer = {**reservation, "status": "cancelled", "updatedOn": "2099-01-01 00:00:00"}
    for data in (reservation, newer, reservation):
        body = {"object": "reservation", "event": "reservation.updated", "accountId": ACCOUNT, "data": data}
        assert requests.post(receiver, json=body, auth=(LOGIN, PASSWORD), timeout=30).status_code == 200
    stored = events()
    assert [e.payload["data"]["updatedOn"] for e in stored] == [reservation["updatedOn"], "2099-01-01 00:00:00"]
    assert {e.object_id for e in stored} == {reservation["id"]}


def test_an_unknown_event_is_acknowledged_and_stored_as_unknown_event(sim, receiver, events):
    spec = {"event": "listing.updated", "object": "listing", "data": {"id": 5, "name": "Loft"}, "object_id": 5}
    assert emit(sim, receiver, [spec]) == [200]
    [stored] = events()
    assert (stored.status, stored.event, stored.object_id) == ("unknown_event", "listing.updated", 5)


def test_an_event_of_an_unregistered_account_is_acknowledged_and_stored_as_unknown_account(sim, receiver, events):
    reservation_id = reservation_ids(sim, UNREGISTERED_ACCOUNT)[0]
    statuses = emit(sim, receiver, [{"event": "reservation.created", "reservation_id": reservation_id}],
                    account_id=UNREGISTERED_ACCOUNT)
    [stored] = events()
    assert statuses == [200]
    assert (stored.status, stored.account_id, stored.object_id) == ("unknown_account", UNREGISTERED_ACCOUNT,
                                                                    reservation_id)


def test_an_authenticated_body_that_cannot_be_parsed_is_acknowledged_and_stored(receiver, events):
    response = requests.post(receiver, data=b"{not json", auth=(LOGIN, PASSWORD), timeout=30)
    [stored] = events()
    assert response.status_code == 200
    assert (stored.status, stored.payload) == ("unparseable", "{not json")


def test_health_is_200_while_the_database_answers(receiver, events):
    assert requests.get(receiver.replace("/webhooks/hostaway", "/healthz"), timeout=30).status_code == 200


def _refusing_database_url() -> str:
    """A Postgres URL on a local port nothing listens on: every connection is refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"postgresql+psycopg2://nobody@127.0.0.1:{port}/nothing"


def test_with_the_database_down_deliveries_get_503_and_health_fails(sim):
    with served(receiver_app(_refusing_database_url(), CREDENTIALS, REDACTOR)) as base_url:
        statuses = emit(sim, webhook_url(base_url),
                        [{"event": "reservation.updated", "reservation_id": reservation_ids(sim)[0]}])
        health = requests.get(f"{base_url}/healthz", timeout=30)
    assert statuses == [503] and health.status_code == 503
