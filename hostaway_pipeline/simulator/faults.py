"""Injected failures: rules that make chosen ``/v1`` requests misbehave like a flaky real API.

A rule matches by endpoint (or ``*``) and optionally account; it skips its first ``after`` matching
requests, then hits the next ``count`` and is spent. Faults only apply to requests the rate limiter
accepted, so they count as accepted calls. Kinds:

- ``status``: answer ``status_code`` (500/502/503/429...) with an optional ``retry_after`` header and body;
- ``timeout``: wait ``delay_seconds`` before answering normally (long enough to trip a client timeout);
- ``reset``: close the TCP connection with SO_LINGER 0, so the client sees a connection reset;
- ``malformed_json``: 200 with a truncated JSON body;
- ``locked_403``: 403 "Resource is locked", a 403 that is not an auth failure;
- ``page_drift`` (reservations): after serving a page, touch ``rows`` rows ordered after it so they
  jump to the front of ``updatedOn DESC``, i.e. rows move between pages mid-pagination.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

FAULT_KINDS = ("status", "timeout", "reset", "malformed_json", "locked_403", "page_drift")
ENDPOINT_NAMES = (
    "accessTokens",
    "listings",
    "listing",
    "reservations",
    "reservation",
    "conversations",
    "conversation",
    "messages",
    "message",
    "webhooks",
    "other",
)


@dataclass
class FaultRule:
    id: int
    kind: str
    endpoint: str = "*"
    account_id: int | None = None
    count: int = 1
    after: int = 0
    status_code: int = 500
    retry_after: float | None = None
    body: Any = None
    delay_seconds: float = 30.0
    rows: int = 5
    seen: int = 0
    fired: int = 0

    def matches(self, endpoint: str, account_id: int | None) -> bool:
        if self.endpoint not in ("*", endpoint):
            return False
        return self.account_id is None or self.account_id == account_id

    @property
    def spent(self) -> bool:
        return self.fired >= self.count

    def describe(self) -> dict[str, Any]:
        return {**asdict(self), "spent": self.spent}


def _number(spec: Mapping[str, Any], name: str, default: Any, kind: type, minimum: float = 0) -> Any:
    value = spec.get(name, default)
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or (kind is int and not isinstance(value, int))
    ):
        raise ValueError(
            f"fault field {name!r} must be a{'n integer' if kind is int else ' number'}, got {value!r}"
        )
    if value < minimum:
        raise ValueError(f"fault field {name!r} must be at least {minimum}, got {value!r}")
    return value


def parse_rule(rule_id: int, spec: Mapping[str, Any]) -> FaultRule:
    """Validate a rule given as JSON (see the module docstring); raises ValueError with the reason."""
    allowed = {
        "kind",
        "endpoint",
        "account_id",
        "count",
        "after",
        "status_code",
        "retry_after",
        "body",
        "delay_seconds",
        "rows",
    }
    unknown = set(spec) - allowed
    if unknown:
        raise ValueError(f"unknown fault fields {sorted(unknown)}; allowed: {sorted(allowed)}")
    kind = spec.get("kind")
    if kind not in FAULT_KINDS:
        raise ValueError(f"fault kind must be one of {FAULT_KINDS}, got {kind!r}")
    endpoint = spec.get("endpoint", "*")
    if endpoint != "*" and endpoint not in ENDPOINT_NAMES:
        raise ValueError(f"fault endpoint must be '*' or one of {ENDPOINT_NAMES}, got {endpoint!r}")
    if kind == "page_drift" and endpoint != "reservations":
        raise ValueError("page_drift faults apply to the 'reservations' endpoint only")
    status_code = _number(spec, "status_code", 500, int, minimum=100)
    if kind == "status" and "status_code" not in spec:
        raise ValueError("a 'status' fault needs a status_code, e.g. 503")
    return FaultRule(
        id=rule_id,
        kind=kind,
        endpoint=endpoint,
        account_id=_number(spec, "account_id", None, int, minimum=1),
        count=_number(spec, "count", 1, int, minimum=1),
        after=_number(spec, "after", 0, int),
        status_code=status_code,
        retry_after=_number(spec, "retry_after", None, float),
        body=spec.get("body"),
        delay_seconds=_number(spec, "delay_seconds", 30.0, float),
        rows=_number(spec, "rows", 5, int, minimum=1),
    )


class FaultInjector:
    """The active fault rules, consulted once per accepted ``/v1`` request."""

    def __init__(self) -> None:
        self._rules: list[FaultRule] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def add(self, spec: Mapping[str, Any]) -> FaultRule:
        with self._lock:
            rule = parse_rule(next(self._ids), spec)
            self._rules.append(rule)
            return rule

    def clear(self) -> None:
        with self._lock:
            self._rules = []

    def describe(self) -> list[dict[str, Any]]:
        with self._lock:
            return [rule.describe() for rule in self._rules]

    def pick(self, endpoint: str, account_id: int | None) -> FaultRule | None:
        """Count this request against every matching rule; return the first that fires on it."""
        chosen: FaultRule | None = None
        with self._lock:
            for rule in self._rules:
                if rule.spent or not rule.matches(endpoint, account_id):
                    continue
                rule.seen += 1
                if chosen is None and rule.seen > rule.after:
                    rule.fired += 1
                    chosen = rule
        return chosen
