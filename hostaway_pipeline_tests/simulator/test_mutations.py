"""Admin mutations: they change the ground truth like Hostaway would, deterministically, over HTTP too."""

from __future__ import annotations

from typing import Any

import requests

from hostaway_pipeline.simulator.server import SimulatorServer
from hostaway_pipeline_tests.simulator.support import Api


def by_id(rows: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    return {row["id"]: row for row in rows}


def test_update_changes_truth_and_updated_on_strictly_increases(small_sim: SimulatorServer) -> None:
    before = by_id(small_sim.truth(20001)["reservations"])
    touched = small_sim.mutate(20001, {"update_reservations": 3})["update_reservations"]
    touched += small_sim.mutate(20001, {"update_reservations": 2})["update_reservations"]
    after = by_id(small_sim.truth(20001)["reservations"])
    stamps = [after[rid]["updatedOn"] for rid in touched]
    assert all(after[rid] != before[rid] for rid in touched)
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
    assert min(stamps) > max(r["updatedOn"] for r in before.values())
    assert all(after[rid]["latestActivityOn"] >= after[rid]["updatedOn"] for rid in touched)


def test_new_reservation_gets_a_conversation_with_a_first_message(small_sim: SimulatorServer) -> None:
    result = requests.post(
        f"{small_sim.admin_url}/accounts/20001/mutate", json={"new_reservations": 2}, timeout=10
    ).json()
    truth = small_sim.truth(20001)
    conversations = {c["reservationId"]: c for c in truth["conversations"]}
    assert len(truth["reservations"]) == 62
    for reservation_id, conversation_id in zip(
        result["new_reservations"], result["new_conversations"], strict=True
    ):
        assert conversations[reservation_id]["id"] == conversation_id
        assert by_id(truth["reservations"])[reservation_id]["status"] == "new"
        assert any(m["conversationId"] == conversation_id for m in truth["messages"])
    assert [e["event"] for e in result["events"]] == ["reservation.created"] * 2


def test_cancellation_sets_date_and_drops_scheduled_messages(small_sim: SimulatorServer) -> None:
    small_sim.mutate(20001, {"scheduled_messages": 40})
    truth = small_sim.truth(20001)
    awaiting_by_reservation = {m["reservationId"] for m in truth["messages"] if m["status"] == "awaiting"}
    cancelled = small_sim.mutate(20001, {"cancel_reservations": 20})["cancel_reservations"]
    truth = small_sim.truth(20001)
    hit = set(cancelled) & awaiting_by_reservation
    assert hit
    assert all(
        r["status"] == "cancelled" and r["cancellationDate"]
        for r in truth["reservations"]
        if r["id"] in cancelled
    )
    assert not [m for m in truth["messages"] if m["reservationId"] in hit and m["status"] == "awaiting"]


def test_sending_scheduled_messages_moves_message_sent_on(small_sim: SimulatorServer) -> None:
    small_sim.mutate(20001, {"scheduled_messages": 1})
    result = small_sim.mutate(20001, {"send_scheduled_messages": 1})
    (message_id,) = result["send_scheduled_messages"]
    truth = small_sim.truth(20001)
    message = by_id(truth["messages"])[message_id]
    conversation = by_id(truth["conversations"])[message["conversationId"]]
    assert message["status"] == "sent" and message["sentToChannelDate"] == message["date"]
    assert conversation["messageSentOn"] == message["date"]


def test_scheduled_message_becomes_the_preview_without_moving_markers(small_sim: SimulatorServer) -> None:
    before = by_id(small_sim.truth(20001)["conversations"])
    result = small_sim.mutate(20001, {"scheduled_messages": 1})
    (conversation_id,) = result["touched_conversations"]
    after = by_id(small_sim.truth(20001)["conversations"])[conversation_id]
    assert after["messageSentOn"] == before[conversation_id]["messageSentOn"]
    assert after["conversationMessages"][0]["id"] == result["scheduled_messages"][0]
    assert after["conversationMessages"][0]["status"] == "awaiting"


def test_deleted_listings_vanish_from_the_api_until_restored(small_sim: SimulatorServer) -> None:
    api = Api(small_sim, 20001)
    (deleted,) = small_sim.mutate(20001, {"delete_listings": 1})["delete_listings"]
    served = {row["id"] for row in api.json("/listings")["result"]}
    truth = small_sim.truth(20001)
    assert deleted not in served and truth["deleted_listing_ids"] == [deleted]
    assert deleted not in {row["id"] for row in truth["listings"]}
    small_sim.mutate(20001, {"restore_listings": 1})
    assert deleted in {row["id"] for row in api.json("/listings")["result"]}


def test_same_mutations_on_the_same_seed_touch_the_same_objects() -> None:
    changes = {"update_reservations": 4, "incoming_messages": 3, "status_changes": 2, "new_reservations": 1}
    first = SimulatorServer(accounts={1: 80}, seed=21).mutate(1, changes)
    second = SimulatorServer(accounts={1: 80}, seed=21).mutate(1, changes)
    assert first == second


def test_unknown_mutation_kind_is_a_400(small_sim: SimulatorServer) -> None:
    response = requests.post(f"{small_sim.admin_url}/accounts/20001/mutate", json={"explode": 1}, timeout=10)
    missing = requests.post(f"{small_sim.admin_url}/accounts/424242/mutate", json={}, timeout=10)
    assert (response.status_code, missing.status_code) == (400, 404)


def test_accounts_can_be_added_at_runtime(small_sim: SimulatorServer) -> None:
    created = requests.post(
        f"{small_sim.admin_url}/accounts", json={"account_id": 20002, "size": "empty"}, timeout=10
    ).json()
    api = Api(small_sim, 20002)
    small_sim.mutate(20002, {"new_reservations": 3})
    assert created["reservations"] == 0
    assert api.json("/reservations")["count"] == 3 and api.json("/listings")["count"] == 1
