"""Redaction before storage: fields that must never reach the warehouse are dropped, at any depth.

Card fields are always dropped; ``HOSTAWAY_REDACT_FIELDS`` adds more (default ``doorCode``). Applied to
entity rows and webhook payloads alike, so nothing sensitive is stored by any path.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


class Redactor:
    """Returns copies of JSON values without the configured keys (the input is never mutated)."""

    def __init__(self, field_names: Iterable[str]) -> None:
        self.field_names = frozenset(field_names)

    def __call__(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {key: self(item) for key, item in value.items() if key not in self.field_names}
        if isinstance(value, list):
            return [self(item) for item in value]
        return value
