"""Delivery of Hostaway unified-webhook events to a receiver, in every payload shape seen in the wild.

Shapes: ``payload_data`` ``{"object", "event", "accountId", "payload": {"data": {...}}}``, ``data``
``{"object", "event", "accountId", "data": {...}}``, and the old ``eventType`` form; a test ping
carries ``"data": "test"``. Events are POSTed as JSON with optional HTTP Basic auth, optionally each
twice (duplicates) and in a shuffled order, as Hostaway may deliver them.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import requests

PAYLOAD_SHAPES = ("payload_data", "data", "eventType")
DELIVERY_TIMEOUT_SECONDS = 20.0  # Hostaway waits this long for an acknowledgement


@dataclass(frozen=True)
class Delivery:
    """One event to deliver: its name, Hostaway object kind and the full current object (or "test")."""

    event: str
    object_kind: str
    data: Any
    object_id: int | None = None


def build_payload(delivery: Delivery, account_id: int, shape: str) -> dict[str, Any]:
    if shape not in PAYLOAD_SHAPES:
        raise ValueError(f"webhook shape must be one of {PAYLOAD_SHAPES}, got {shape!r}")
    if shape == "eventType":
        return {
            "object": delivery.object_kind,
            "eventType": delivery.event,
            "accountId": account_id,
            "data": delivery.data,
        }
    if shape == "data" or delivery.event == "test":
        return {
            "object": delivery.object_kind,
            "event": delivery.event,
            "accountId": account_id,
            "data": delivery.data,
        }
    return {
        "object": delivery.object_kind,
        "event": delivery.event,
        "accountId": account_id,
        "payload": {"data": delivery.data},
    }


def deliver(
    url: str,
    deliveries: Sequence[Delivery],
    account_id: int,
    *,
    login: str | None = None,
    password: str | None = None,
    shape: str = "payload_data",
    duplicate: bool = False,
    shuffle: bool = False,
    rng: random.Random | None = None,
) -> list[dict[str, Any]]:
    """POST every delivery; return one outcome per HTTP attempt (event, object id, status or error)."""
    if shape not in PAYLOAD_SHAPES:
        raise ValueError(f"webhook shape must be one of {PAYLOAD_SHAPES}, got {shape!r}")
    queue = [item for item in deliveries for _ in range(2 if duplicate else 1)]
    if shuffle:
        (rng or random.Random()).shuffle(queue)
    auth = (login or "", password or "") if (login or password) else None
    outcomes: list[dict[str, Any]] = []
    with requests.Session() as session:
        for item in queue:
            outcome: dict[str, Any] = {"event": item.event, "object_id": item.object_id}
            try:
                response = session.post(
                    url,
                    json=build_payload(item, account_id, shape),
                    auth=auth,
                    timeout=DELIVERY_TIMEOUT_SECONDS,
                )
                outcome["status_code"] = response.status_code
            except requests.RequestException as error:
                outcome["status_code"] = None
                outcome["error"] = type(error).__name__
            outcomes.append(outcome)
    return outcomes
