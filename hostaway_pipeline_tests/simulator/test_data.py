"""Generated accounts: determinism, sizes, every real field with a real JSON type, realistic values."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from hostaway_pipeline.simulator.server import SimulatorServer, parse_accounts_spec
from hostaway_pipeline_tests.simulator.support import Api

FIELD_SHAPES = json.loads((Path(__file__).with_name("field_shapes.json")).read_text())


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def assert_matches_shape(kind: str, spec: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    assert rows, f"no {kind} rows to check"
    for row in rows:
        assert list(row) == list(spec), f"{kind} keys differ: {set(row) ^ set(spec)}"
        for key, value in row.items():
            assert json_type(value) in spec[key]["types"], (kind, key, value)


def test_same_seed_and_size_give_byte_identical_objects() -> None:
    first = SimulatorServer(accounts={10001: 120}, seed=3).truth(10001)
    second = SimulatorServer(accounts={10001: 120}, seed=3).truth(10001)
    other_seed = SimulatorServer(accounts={10001: 120}, seed=4).truth(10001)
    assert json.dumps(first) == json.dumps(second)
    assert json.dumps(first) != json.dumps(other_seed)


def test_seed_size_has_7_listings_787_reservations_787_conversations_and_thousands_of_messages(
    seed_truth: dict[str, Any],
) -> None:
    assert len(seed_truth["listings"]) == 7
    assert len(seed_truth["reservations"]) == 787
    assert len(seed_truth["conversations"]) == 787
    assert 5 <= len(seed_truth["messages"]) / 787 <= 7


def test_integer_size_scales_listings_and_empty_has_nothing() -> None:
    sim = SimulatorServer(accounts={1: 300, 2: 10, 3: "empty"}, seed=1)
    big, tiny, empty = sim.truth(1), sim.truth(2), sim.truth(3)
    assert (len(big["listings"]), len(big["reservations"]), len(big["conversations"])) == (3, 300, 300)
    assert (len(tiny["listings"]), len(tiny["reservations"])) == (1, 10)
    assert all(not empty[key] for key in ("listings", "reservations", "conversations", "messages"))


def test_objects_carry_every_real_field_with_a_real_json_type_in_real_key_order(
    seed_truth: dict[str, Any],
) -> None:
    listings, reservations = seed_truth["listings"], seed_truth["reservations"]
    conversations, messages = seed_truth["conversations"], seed_truth["messages"]
    conversation_spec = FIELD_SHAPES["conversation"]
    message_spec = FIELD_SHAPES["conversation_message"]
    assert_matches_shape("listing", FIELD_SHAPES["listing"], listings)
    assert_matches_shape("reservation", FIELD_SHAPES["reservation"], reservations)
    assert_matches_shape("conversation", conversation_spec, conversations)
    assert_matches_shape(
        "embedded Reservation",
        conversation_spec["Reservation"]["fields"],
        [c["Reservation"] for c in conversations],
    )
    assert_matches_shape("message", message_spec, messages)
    assert_matches_shape(
        "preview", message_spec, [m for c in conversations for m in c["conversationMessages"]]
    )
    metadata = [m["AirbnbOfficialMessageMetadata"] for m in messages if m["AirbnbOfficialMessageMetadata"]]
    assert_matches_shape(
        "AirbnbOfficialMessageMetadata", message_spec["AirbnbOfficialMessageMetadata"]["fields"], metadata
    )
    accounts = [m["AirbnbOfficialAccount"] for m in metadata if m["AirbnbOfficialAccount"]]
    expected_account_keys = message_spec["AirbnbOfficialMessageMetadata"]["fields"]["AirbnbOfficialAccount"][
        "keys"
    ]
    assert accounts and all(sorted(a) == expected_account_keys for a in accounts)
    for kind, field, rows in (
        ("listing", "listingAmenities", listings),
        ("listing", "listingBedTypes", listings),
        ("listing", "listingImages", listings),
        ("listing", "listingFeeSetting", listings),
        ("reservation", "customFieldValues", reservations),
        ("reservation", "reservationFees", reservations),
    ):
        items = [item for row in rows for item in row[field]]
        assert_matches_shape(f"{kind}.{field}", FIELD_SHAPES[kind][field]["item_fields"], items)


def test_api_pages_use_the_real_envelope_key_order(seed_api: Api) -> None:
    envelopes = FIELD_SHAPES["envelopes"]
    conversation = seed_api.json("/conversations", limit=1)
    assert list(seed_api.json("/listings")) == envelopes["listings"]["keys_in_order"]
    assert list(seed_api.json("/reservations", limit=5)) == envelopes["reservations"]["keys_in_order"]
    assert list(conversation) == envelopes["conversations"]["keys_in_order"]
    messages = seed_api.json(f"/conversations/{conversation['result'][0]['id']}/messages")
    assert list(messages) == envelopes["conversation_messages"]["keys_in_order"]


def test_values_have_realistic_proportions_and_formats(seed_truth: dict[str, Any]) -> None:
    reservations, messages = seed_truth["reservations"], seed_truth["messages"]
    statuses = Counter(r["status"] for r in reservations)
    assert statuses["new"] + statuses["modified"] > 0.7 * len(reservations)
    assert 0.05 * len(reservations) < statuses["cancelled"] < 0.2 * len(reservations)
    assert all(r["cancellationDate"] for r in reservations if r["status"] == "cancelled")
    assert sum(1 for r in reservations if r["doorCode"]) > 0.7 * len(reservations)
    assert all(r["ccNumber"] is None and r["cvc"] is None for r in reservations)
    assert all(r["insertedOn"] <= r["updatedOn"] <= r["latestActivityOn"] for r in reservations)
    assert all(
        isinstance(r[k], str)
        for r in reservations
        for k in ("reservationId", "hostawayReservationId", "channelReservationId")
    )
    assert {type(r["totalPrice"]) for r in reservations} == {int, float}
    with_metadata = sum(1 for m in messages if m["AirbnbOfficialMessageMetadata"])
    assert 0.68 < with_metadata / len(messages) < 0.86
    assert {m["communicationType"] for m in messages} >= {"channel", "email"}
    assert 0.3 < sum(m["isIncoming"] for m in messages) / len(messages) < 0.6
    assert Counter(m["status"] for m in messages)["awaiting"] > 0
    assert max(len(m["body"].encode()) for m in messages) > 3000
    text = json.dumps(seed_truth, ensure_ascii=False)
    assert "Zoë" in text or "Søren" in text
    assert any(ord(ch) > 0xFFFF for ch in text), "expected emoji outside the BMP"
    assert {m["accountId"] for m in messages} == {10001}
    assert {c["accountId"] for c in seed_truth["conversations"]} == {10001}


def test_ids_are_unique_and_realistically_sized(seed_truth: dict[str, Any]) -> None:
    for kind, digits in (("listings", 6), ("reservations", 8), ("conversations", 8), ("messages", 9)):
        ids = [row["id"] for row in seed_truth[kind]]
        assert len(ids) == len(set(ids))
        assert {len(str(i)) for i in ids} == {digits}, kind


def test_conversation_markers_and_preview_follow_the_messages(seed_truth: dict[str, Any]) -> None:
    by_conversation: dict[int, list[dict[str, Any]]] = {}
    for message in seed_truth["messages"]:
        by_conversation.setdefault(message["conversationId"], []).append(message)
    reservations = {r["id"]: r for r in seed_truth["reservations"]}
    for conversation in seed_truth["conversations"]:
        messages = by_conversation[conversation["id"]]
        reservation = reservations[conversation["reservationId"]]
        sent_out = [m["date"] for m in messages if m["status"] == "sent" and not m["isIncoming"]]
        received = [m["date"] for m in messages if m["isIncoming"]]
        assert conversation["messageSentOn"] == max(sent_out, default=reservation["insertedOn"])
        assert conversation["messageReceivedOn"] == max(received, default=None)
        latest = max(
            (m for m in messages if m["status"] in ("sent", "awaiting")), key=lambda m: (m["date"], m["id"])
        )
        assert conversation["conversationMessages"] == [latest]
        assert conversation["Reservation"]["id"] == reservation["id"]
        assert conversation["Reservation"]["latestActivityOn"] is None
    assert any(c["conversationMessages"][0]["status"] == "awaiting" for c in seed_truth["conversations"])


@pytest.mark.parametrize(
    "spec, expected",
    [
        ("10001:seed,10002:50,10003:empty", {10001: "seed", 10002: 50, 10003: "empty"}),
        (" 7:SEED ", {7: "seed"}),
    ],
)
def test_accounts_spec_parses(spec: str, expected: dict[int, Any]) -> None:
    assert parse_accounts_spec(spec) == expected


@pytest.mark.parametrize("spec", ["", "10001", "10001:", "abc:seed", "10001:huge", "1:seed,1:empty", "1:-5"])
def test_bad_accounts_spec_is_a_clear_value_error(spec: str) -> None:
    with pytest.raises(ValueError, match="account|size|spec"):
        parse_accounts_spec(spec)
