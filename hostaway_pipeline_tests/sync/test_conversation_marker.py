"""The change markers that decide whether a conversation's messages are re-read."""

from __future__ import annotations

from hostaway_pipeline.sync.messages_sync import conversation_marker

CONVERSATION = {
    "id": 1,
    "messageSentOn": "2026-11-01 10:00:00",
    "messageReceivedOn": "2026-11-01 11:00:00",
    "hasUnreadMessages": 0,
    "conversationMessages": [{"id": 9, "status": "sent", "updatedOn": "2026-11-01 11:00:00"}],
    "Reservation": {"id": 5, "status": "new", "guestName": "Zoë"},
}


def test_the_marker_ignores_fields_that_do_not_change_messages():
    unread = {**CONVERSATION, "hasUnreadMessages": 1, "Reservation": {**CONVERSATION["Reservation"],
                                                                      "guestName": "Zoe"}}
    assert conversation_marker(unread) == conversation_marker(CONVERSATION)


def test_the_marker_moves_with_new_messages_previews_and_cancellations():
    changes = [
        {"messageSentOn": "2026-11-02 10:00:00"},
        {"messageReceivedOn": "2026-11-02 10:00:00"},
        {"conversationMessages": [{"id": 10, "status": "awaiting", "updatedOn": "2026-11-02 10:00:00"}]},
        {"conversationMessages": [{"id": 9, "status": "cancelled_by_system", "updatedOn": "2026-11-02 10:00:00"}]},
        {"Reservation": {**CONVERSATION["Reservation"], "status": "cancelled"}},
    ]
    for change in changes:
        assert conversation_marker({**CONVERSATION, **change}) != conversation_marker(CONVERSATION), change


def test_a_conversation_without_preview_or_reservation_has_a_marker_that_still_moves():
    bare = {"id": 2, "messageSentOn": None, "conversationMessages": []}
    assert conversation_marker(bare) == conversation_marker(dict(bare))
    assert conversation_marker(bare) != conversation_marker({**bare, "messageSentOn": "2026-11-02 10:00:00"})
    assert conversation_marker(bare) != conversation_marker({**bare, "conversationMessages": [{"id": 1}]})
