"""Conversations and messages endpoints: order, markers, preview, embedded Reservation, scheduled filter."""

from __future__ import annotations

from typing import Any

from hostaway_pipeline.simulator.server import SimulatorServer
from hostaway_pipeline_tests.simulator.support import Api


def test_conversations_are_served_newest_message_sent_first(seed_api: Api) -> None:
    rows = seed_api.all_pages("/conversations")
    keys = [(row["messageSentOn"], row["id"]) for row in rows]
    assert len(rows) == 787 and keys == sorted(keys, reverse=True)


def test_conversation_pages_carry_page_and_total_pages(seed_api: Api) -> None:
    page = seed_api.json("/conversations", limit=100, offset=200)
    assert (page["page"], page["totalPages"], page["count"], len(page["result"])) == (3, 8, 787, 100)


def test_conversation_embeds_its_reservation_and_one_preview_message(
    seed_api: Api, seed_truth: dict[str, Any]
) -> None:
    reservation = seed_truth["reservations"][10]
    page = seed_api.json("/conversations", reservationId=reservation["id"])
    (conversation,) = page["result"]
    embedded = conversation["Reservation"]
    assert page["count"] == 1
    assert embedded["id"] == reservation["id"] and embedded["arrivalDate"] == reservation["arrivalDate"]
    assert embedded["listingName"] == "" and embedded["guestAuthHash"] is None
    assert len(conversation["conversationMessages"]) == 1
    assert conversation["conversationMessages"][0]["conversationId"] == conversation["id"]


def test_messages_default_to_sent_only_and_include_scheduled_on_request(
    seed_api: Api, seed_truth: dict[str, Any]
) -> None:
    awaiting = next(m for m in seed_truth["messages"] if m["status"] == "awaiting")
    path = f"/conversations/{awaiting['conversationId']}/messages"
    default = seed_api.json(path)
    everything = seed_api.json(path, includeScheduledMessages=1)
    assert {m["status"] for m in default["result"]} == {"sent"}
    assert awaiting in everything["result"] and everything["count"] == default["count"] + 1


def test_messages_are_newest_first_and_paged(seed_api: Api, seed_truth: dict[str, Any]) -> None:
    conversation = max(
        seed_truth["conversations"],
        key=lambda c: sum(1 for m in seed_truth["messages"] if m["conversationId"] == c["id"]),
    )
    path = f"/conversations/{conversation['id']}/messages"
    whole = seed_api.json(path)["result"]
    first_two = seed_api.json(path, limit=2)
    keys = [(m["date"], m["id"]) for m in whole]
    assert keys == sorted(keys, reverse=True)
    assert first_two["result"] == whole[:2] and first_two["totalPages"] == -(-len(whole) // 2)


def test_unknown_conversation_is_404(seed_api: Api) -> None:
    response = seed_api.get("/conversations/1/messages")
    assert (response.status_code, response.json()["status"]) == (404, "fail")


def test_single_message_is_served_by_id(seed_api: Api, seed_truth: dict[str, Any]) -> None:
    message = seed_truth["messages"][42]
    assert (
        seed_api.json(f"/conversations/{message['conversationId']}/messages/{message['id']}")["result"]
        == message
    )


def test_incoming_message_updates_markers_but_does_not_move_the_conversation(
    small_sim: SimulatorServer,
) -> None:
    api = Api(small_sim, 20001)
    before = api.json("/conversations")["result"]
    result = small_sim.mutate(20001, {"incoming_messages": 1})
    (conversation_id,) = result["touched_conversations"]
    after = api.json("/conversations")["result"]
    changed = next(c for c in after if c["id"] == conversation_id)
    assert [c["id"] for c in after] == [c["id"] for c in before]
    assert changed["messageReceivedOn"] == small_sim.truth(20001)["messages"][-1]["date"]
    assert changed["hasUnreadMessages"] == 1


def test_outgoing_message_moves_the_conversation_to_the_front(small_sim: SimulatorServer) -> None:
    api = Api(small_sim, 20001)
    result = small_sim.mutate(20001, {"outgoing_messages": 1})
    first = api.json("/conversations", limit=1)["result"][0]
    assert first["id"] == result["touched_conversations"][0]
    assert first["hasUnreadMessages"] == 0
    assert first["conversationMessages"][0]["status"] in ("sent", "awaiting")
