"""What each kind of upstream change does to the conversation list's order and markers, as served over HTTP.

The table in ``hostaway_pipeline/sync/intraday.py`` (and docs/performance.md) rests on these: a host
message, a scheduled message sent and a new booking bring a conversation to the head of the list; an
incoming message, a new scheduled message, a cancellation, a status change and an edit of an older
message leave it where it stands (the first four move a marker, the last none); a deleted reservation
takes its conversation and messages with it.
"""

from __future__ import annotations

from typing import Any

import pytest

from hostaway_pipeline.simulator.server import SimulatorServer
from hostaway_pipeline.sync.messages_sync import conversation_marker
from hostaway_pipeline_tests.simulator.support import Api

ACCOUNT = 20001


def served(api: Api) -> list[dict[str, Any]]:
    return api.all_pages("/conversations")


def positions(rows: list[dict[str, Any]]) -> dict[int, int]:
    return {row["id"]: place for place, row in enumerate(rows)}


@pytest.mark.parametrize(("change", "to_head", "markers_move"), [
    ("outgoing_messages", True, True),
    ("send_scheduled_messages", True, True),
    ("incoming_messages", False, True),
    ("cancel_reservations", False, True),
    ("status_changes", False, True),
    ("edit_messages", False, False),
])
def test_which_changes_bring_a_conversation_to_the_head_and_which_move_its_markers(
        small_sim: SimulatorServer, change: str, to_head: bool, markers_move: bool) -> None:
    small_sim.mutate(ACCOUNT, {"scheduled_messages": 3})  # something to send
    api = Api(small_sim, ACCOUNT)
    before = served(api)
    touched = small_sim.mutate(ACCOUNT, {change: 1})
    truth = small_sim.truth(ACCOUNT)
    if change in ("cancel_reservations", "status_changes"):
        (conversation_id,) = [c["id"] for c in truth["conversations"] if c["reservationId"] in touched[change]]
    else:
        message = next(m for m in truth["messages"] if m["id"] == touched[change][0])
        conversation_id = message["conversationId"]
    after = served(api)
    was, now = positions(before)[conversation_id], positions(after)[conversation_id]
    assert (now == 0) is to_head or was == 0
    if not to_head:
        assert now == was  # nothing else moved either
    marker = {row["id"]: conversation_marker(row) for row in before}[conversation_id]
    assert (conversation_marker(after[now]) != marker) is markers_move


def test_a_new_scheduled_message_moves_the_preview_only_when_it_is_the_newest(small_sim: SimulatorServer) -> None:
    api = Api(small_sim, ACCOUNT)
    before = {row["id"]: row for row in served(api)}
    touched = small_sim.mutate(ACCOUNT, {"scheduled_messages": 6})
    truth = small_sim.truth(ACCOUNT)
    after = {row["id"]: row for row in served(api)}
    for message_id in touched["scheduled_messages"]:
        message = next(m for m in truth["messages"] if m["id"] == message_id)
        conversation_id = message["conversationId"]
        assert after[conversation_id]["messageSentOn"] == before[conversation_id]["messageSentOn"]
        latest = [m for m in truth["messages"] if m["conversationId"] == conversation_id
                  and m["status"] in ("sent", "awaiting")]
        newest = max(latest, key=lambda m: (m["date"], m["id"]))["id"]
        assert (after[conversation_id]["conversationMessages"][0]["id"] == message_id) is (newest == message_id)


def test_a_new_booking_is_served_at_the_head_and_a_deleted_reservation_takes_its_conversation(
        small_sim: SimulatorServer) -> None:
    api = Api(small_sim, ACCOUNT)
    (new_conversation,) = small_sim.mutate(ACCOUNT, {"new_reservations": 1})["new_conversations"]
    assert served(api)[0]["id"] == new_conversation
    touched = small_sim.mutate(ACCOUNT, {"delete_reservations": 1})
    (gone,) = touched["deleted_conversations"]
    assert gone not in positions(served(api))
    assert api.get(f"/conversations/{gone}/messages").status_code == 404
    assert api.get(f"/reservations/{touched['delete_reservations'][0]}").status_code == 404
