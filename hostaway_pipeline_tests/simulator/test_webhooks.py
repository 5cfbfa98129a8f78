"""Unified webhooks: CRUD on /v1 and event delivery (shapes, Basic auth, duplicates, shuffle)."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from hostaway_pipeline.simulator.server import SimulatorServer
from hostaway_pipeline_tests.simulator.support import Api


class Receiver:
    """A tiny webhook receiver recording every delivery (answers 200, or 401 on bad credentials)."""

    def __init__(self, login: str = "hook", password: str = "s3cret") -> None:
        self.deliveries: list[dict[str, Any]] = []
        expected = "Basic " + base64.b64encode(f"{login}:{password}".encode()).decode()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                authorized = self.headers.get("Authorization") == expected
                receiver.deliveries.append({"body": body, "authorized": authorized})
                self.send_response(200 if authorized else 401)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hostaway"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


def test_unified_webhooks_crud(small_sim: SimulatorServer) -> None:
    api = Api(small_sim, 20001)
    base = f"{small_sim.base_url}/webhooks/unifiedWebhooks"
    created = api.session.post(
        base,
        json={
            "isEnabled": 1,
            "url": "https://example.org/hook",
            "login": "a",
            "password": "b",
            "alertingEmailAddress": "ops@example.org",
        },
    ).json()
    webhook_id = created["result"]["id"]
    updated = api.session.put(f"{base}/{webhook_id}", json={"url": "https://example.org/v2"}).json()
    listed = api.json("/webhooks/unifiedWebhooks")["result"]
    fetched = api.json(f"/webhooks/unifiedWebhooks/{webhook_id}")["result"]
    deleted = api.session.delete(f"{base}/{webhook_id}")
    assert created["status"] == "success" and created["result"]["accountId"] == 20001
    assert updated["result"]["url"] == "https://example.org/v2" and updated["result"]["login"] == "a"
    assert listed == [fetched] == [updated["result"]]
    assert deleted.status_code == 200 and api.json("/webhooks/unifiedWebhooks")["result"] == []
    assert api.get(f"/webhooks/unifiedWebhooks/{webhook_id}").status_code == 404
    assert small_sim.stats()["by_endpoint"]["webhooks"] == 7


def test_emit_delivers_full_objects_with_basic_auth_duplicated_and_shuffled(
    small_sim: SimulatorServer, receiver: Receiver
) -> None:
    truth = small_sim.truth(20001)
    reservation_ids = [r["id"] for r in truth["reservations"][:6]]
    message = next(m for m in truth["messages"] if m["isIncoming"])
    events = [{"event": "reservation.updated", "reservation_id": rid} for rid in reservation_ids]
    events.append({"event": "message.received", "message_id": message["id"]})
    result = requests.post(
        f"{small_sim.admin_url}/webhooks/emit",
        timeout=30,
        json={
            "url": receiver.url,
            "login": "hook",
            "password": "s3cret",
            "account_id": 20001,
            "events": events,
            "duplicate": True,
            "shuffle": True,
        },
    ).json()
    bodies = [d["body"] for d in receiver.deliveries]
    delivered_ids = [b["payload"]["data"]["id"] for b in bodies]
    in_order = [rid for rid in reservation_ids for _ in range(2)] + [message["id"]] * 2
    assert [d["status_code"] for d in result["deliveries"]] == [200] * 14
    assert all(d["authorized"] for d in receiver.deliveries)
    assert sorted(delivered_ids) == sorted(in_order) and delivered_ids != in_order
    reservation_body = next(b for b in bodies if b["object"] == "reservation")
    message_body = next(b for b in bodies if b["object"] == "conversationMessage")
    assert reservation_body["accountId"] == 20001 and reservation_body["event"] == "reservation.updated"
    assert reservation_body["payload"]["data"] in truth["reservations"]
    assert message_body["event"] == "message.received" and message_body["payload"]["data"] == message


@pytest.mark.parametrize(
    "shape, data_path", [("data", ("data",)), ("eventType", ("data",)), ("payload_data", ("payload", "data"))]
)
def test_emit_supports_every_payload_shape(
    small_sim: SimulatorServer, receiver: Receiver, shape: str, data_path: tuple[str, ...]
) -> None:
    reservation = small_sim.truth(20001)["reservations"][0]
    small_sim.emit_webhooks(
        receiver.url,
        [{"event": "reservation.created", "reservation_id": reservation["id"]}],
        20001,
        login="hook",
        password="s3cret",
        shape=shape,
    )
    body = receiver.deliveries[0]["body"]
    data = body
    for key in data_path:
        data = data[key]
    assert data == reservation
    assert ("eventType" in body) == (shape == "eventType")


def test_test_ping_carries_data_test_and_bad_credentials_get_401(
    small_sim: SimulatorServer, receiver: Receiver
) -> None:
    outcome = small_sim.emit_webhooks(
        receiver.url, [{"event": "test"}], 20001, login="hook", password="wrong"
    )
    assert receiver.deliveries[0]["body"]["data"] == "test"
    assert outcome == [{"event": "test", "object_id": None, "status_code": 401}]


def test_mutation_delivers_its_events_to_registered_webhooks(
    small_sim: SimulatorServer, receiver: Receiver
) -> None:
    api = Api(small_sim, 20001)
    api.session.post(
        f"{small_sim.base_url}/webhooks/unifiedWebhooks",
        json={"isEnabled": 1, "url": receiver.url, "login": "hook", "password": "s3cret"},
    )
    api.session.post(
        f"{small_sim.base_url}/webhooks/unifiedWebhooks",
        json={"isEnabled": 0, "url": receiver.url + "/disabled"},
    )
    result = small_sim.mutate(
        20001,
        {"update_reservations": 2, "incoming_messages": 1, "outgoing_messages": 1},
        emit_webhooks_for_registered=True,
    )
    events = [(d["body"]["event"], d["body"]["payload"]["data"]["id"]) for d in receiver.deliveries]
    assert events == [("reservation.updated", rid) for rid in result["update_reservations"]] + [
        ("message.received", result["incoming_messages"][0])
    ]
    assert all(d["authorized"] for d in receiver.deliveries)


def test_mutation_can_deliver_to_an_explicit_webhook_target(
    small_sim: SimulatorServer, receiver: Receiver
) -> None:
    result = requests.post(
        f"{small_sim.admin_url}/accounts/20001/mutate",
        timeout=30,
        json={
            "cancel_reservations": 1,
            "webhook": {"url": receiver.url, "login": "hook", "password": "s3cret", "shape": "data"},
        },
    ).json()
    (body,) = [d["body"] for d in receiver.deliveries]
    assert body["data"]["id"] == result["cancel_reservations"][0] and body["data"]["status"] == "cancelled"
    assert result["webhook_deliveries"][0]["status_code"] == 200
