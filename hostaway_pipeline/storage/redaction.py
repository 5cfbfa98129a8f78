"""Redaction before storage: fields that must never reach the warehouse are dropped, at any depth.

Card fields are always dropped; ``HOSTAWAY_REDACT_FIELDS`` adds more (default: door and Wi-Fi codes and
the guest-portal hash and URLs, see ``settings.DEFAULT_EXTRA_REDACTED_FIELDS``). Names match
case-insensitively, so ``doorcode`` in the configuration (or ``DoorCode`` in a payload) still drops
``doorCode``. Applied to entity rows and webhook payloads alike, so nothing sensitive is stored by any path.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


class Redactor:
    """Returns copies of JSON values without the configured keys (the input is never mutated)."""

    def __init__(self, field_names: Iterable[str]) -> None:
        self.field_names = frozenset(name.casefold() for name in field_names)

    def __call__(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {
                key: self(item) for key, item in value.items() if str(key).casefold() not in self.field_names
            }
        if isinstance(value, list):
            return [self(item) for item in value]
        return value
