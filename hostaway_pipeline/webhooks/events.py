"""Reading one Hostaway webhook delivery: every payload shape, cleaned and redacted, with its dedupe key.

Shapes accepted (the shared API notes): ``{"object", "event", "accountId", "payload": {"data": {...}}}``,
the same with a top-level ``data``, the old form naming the event ``eventType``, and the test ping whose
``data`` is ``"test"``. Nothing here raises on a bad body: a delivery is always something to store, with a
status saying why it is not ``pending`` (``ignored``, ``unknown_event``, ``unparseable``); the store adds
``unknown_account``.

The dedupe key names account, event, object id and the object's own version (its ``updatedOn``, the
column the entity writer orders that entity by), plus a hash of the redacted data: the same delivery
twice (in any shape) has one key, a newer version of the object another.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from hostaway_pipeline.storage import normalize
from hostaway_pipeline.storage.redaction import Redactor
from hostaway_pipeline.storage.source_values import to_timestamp
from hostaway_pipeline.storage.tables import ENTITY_TABLES, EntityTable

# The events this version knows how to apply, and the entity table each one's data belongs to.
KNOWN_EVENTS: dict[str, str] = {
    "reservation.created": "reservations",
    "reservation.updated": "reservations",
    "message.received": "messages",
}
TEST_PING_DATA = "test"
# Readable parts of a dedupe key are cut to this length; the hash covers them whole.
KEY_PART_CHARACTERS = 64


@dataclass(frozen=True)
class ParsedDelivery:
    """What to store for one delivery; ``problem`` (for ``last_error``) says why it is not ``pending``."""

    status: str
    dedupe_key: str
    payload: Any
    account_id: int | None = None
    event: str | None = None
    object_type: str | None = None
    object_id: int | None = None
    object_version: str | None = None
    object_updated_on: datetime | None = None
    problem: str | None = None


def version_source_key(entity: EntityTable) -> str:
    """The source field holding the entity's version (``updatedOn`` for reservations and messages)."""
    first = entity.version_columns[0]
    return next(column.source_key for column in entity.source_columns if column.name == first)


def parse_delivery(body: bytes, redactor: Redactor) -> ParsedDelivery:
    """The delivery as a row to store; never raises on what the body holds."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):  # not JSON, not UTF-8, too deep, an integer Python refuses
        return _unparseable_text(body, "the body is not JSON")
    cleaned = redactor(normalize.clean_json(document, 0, normalize.Tally()))
    if not isinstance(cleaned, dict):
        return _unparseable(body, cleaned, f"the body is a JSON {type(document).__name__}, not an object")
    event = _text(cleaned.get("event")) or _text(cleaned.get("eventType"))
    account_id = _account_id(cleaned.get("accountId"))
    object_type = _text(cleaned.get("object"))
    if event is None:
        return _unparseable(body, cleaned, "no event name (event or eventType)", account_id=account_id,
                            object_type=object_type)
    if account_id is None:
        return _unparseable(body, cleaned, "no usable accountId (a positive integer)", event=event,
                            object_type=object_type)
    data = _data(cleaned)
    fields: dict[str, Any] = {"account_id": account_id, "event": event, "object_type": object_type}
    if data == TEST_PING_DATA:
        return ParsedDelivery("ignored", _key(account_id, event, None, None, cleaned), cleaned,
                              problem="a test ping: nothing to apply", **fields)
    object_id = normalize.usable_id(data)[0] if isinstance(data, dict) else None
    entity_name = KNOWN_EVENTS.get(event)
    version_key = version_source_key(ENTITY_TABLES[entity_name]) if entity_name else "updatedOn"
    version = _text(data.get(version_key)) if isinstance(data, dict) else None
    located: dict[str, Any] = {**fields, "object_id": object_id, "object_version": version,
                               "object_updated_on": _moment(version)}
    key = _key(account_id, event, object_id, version, data if data is not None else cleaned)
    if entity_name is None:
        return ParsedDelivery("unknown_event", key, cleaned, problem=f"event {event!r} is not one this version "
                              f"applies (known: {', '.join(KNOWN_EVENTS)})", **located)
    if object_id is None:
        why = normalize.usable_id(data)[1] if isinstance(data, dict) else f"data is {_kind(data)}, not an object"
        return ParsedDelivery("unparseable", key, cleaned, problem=f"{event} without a usable object: {why}",
                              **located)
    return ParsedDelivery("pending", key, cleaned, **located)


def _data(document: dict[str, Any]) -> Any:
    nested = document.get("payload")
    if isinstance(nested, dict) and "data" in nested:
        return nested["data"]
    return document.get("data")


def _text(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def _account_id(value: Any) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        account_id = normalize.usable_id({"id": value})[0]
    except (TypeError, ValueError):
        return None
    return account_id if account_id is not None and account_id > 0 else None


def _moment(version: str | None) -> datetime | None:
    try:
        return to_timestamp(version)
    except (ValueError, TypeError, OverflowError):
        return None


def _kind(value: Any) -> str:
    return "missing" if value is None else f"a JSON {type(value).__name__}"


def _digest(value: Any) -> str:
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


def _key(account_id: int, event: str, object_id: int | None, version: str | None, data: Any) -> str:
    """Readable where it can be (cut short), unique by a hash over every part whole."""
    digest = _digest([account_id, event, object_id, version, data])
    parts = [str(account_id), event[:KEY_PART_CHARACTERS], "" if object_id is None else str(object_id),
             (version or "")[:KEY_PART_CHARACTERS], digest]
    return "/".join(parts)


def _unparseable(body: bytes, cleaned: Any, problem: str, **fields: Any) -> ParsedDelivery:
    key = "unparseable/" + hashlib.sha256(body).hexdigest()
    return ParsedDelivery("unparseable", key, cleaned, problem=problem, **fields)


def _unparseable_text(body: bytes, problem: str) -> ParsedDelivery:
    text, _ = normalize.clean_text(body.decode("utf-8", "replace"))
    return _unparseable(body, text, problem)
