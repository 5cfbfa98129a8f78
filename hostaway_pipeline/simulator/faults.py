"""Injected failures: rules that make chosen ``/v1`` requests misbehave like a flaky real API.

A rule matches by endpoint (or ``*``) and optionally account; it skips its first ``after`` matching
requests, then hits the next ``count`` and is spent. Faults only apply to requests the rate limiter
accepted, so they count as accepted calls. Kinds:

- ``status``: answer ``status_code`` (500/502/503/429...) with an optional ``retry_after`` header and body;
- ``timeout``: wait ``delay_seconds`` before answering normally (long enough to trip a client timeout);
- ``reset``: close the TCP connection with SO_LINGER 0, so the client sees a connection reset;
- ``malformed_json``: 200 with a truncated JSON body;
- ``locked_403``: 403 "Resource is locked", a 403 that is not an auth failure;
- ``empty_page`` (list endpoints): 200 with ``result: []`` but the true ``count`` (and ``page`` /
  ``totalPages`` where the endpoint has them): a broken upstream;
- ``page_drift`` (list endpoints): rows change upstream between page requests. After serving a page it
  applies ``action`` to ``rows`` rows picked by ``target``:

  - ``action="update"`` (default): reservations get a new ``updatedOn`` and ``latestActivityOn`` (they
    jump to the head of the default ``updatedOn DESC``); conversations get a new outgoing message so
    ``messageSentOn`` moves (head of the list); listings get a new ``latestActivityOn`` (in id order
    they stay put); messages are edited (``updatedOn`` now, body changed; they stay put);
  - ``action="create"``: ``rows`` new rows, made like the admin mutations make them: a reservation with
    its conversation (reservations, conversations), a listing, or an incoming guest message in the
    conversation just paged (messages). ``target`` does not apply;
  - ``action="delete"``: ``rows`` rows vanish upstream (from lists, 404 by id); a reservation takes its
    conversation and messages along, a conversation its messages. Hostaway itself cancels rather than
    deletes reservations, but a walk must survive it.

  ``target`` picks the rows in the order of the page just served: ``"unserved"`` (default for update)
  the rows ordered after the page, nearest first; ``"served"`` (default for delete) the rows of the page
  from its first, then the rows before it, nearest first (later offset pages shift back and a live row
  is skipped); ``"cursor"`` the page's last row only (for reservations, the next ``afterId``).
  Each firing's outcome (endpoint, action, target, ``ids`` and ``related`` ids) is appended to the
  rule's ``results`` and put on the call's ``fault_result`` in the call log.

``empty_page`` and ``page_drift`` rules with ``endpoint="*"`` match the four list endpoints only
(``listings``, ``reservations``, ``conversations``, ``messages``).
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

FAULT_KINDS = ("status", "timeout", "reset", "malformed_json", "locked_403", "page_drift", "empty_page")
LIST_ENDPOINTS = ("listings", "reservations", "conversations", "messages")
DRIFT_ACTIONS = ("update", "create", "delete")
DRIFT_TARGETS = ("unserved", "served", "cursor")
_DEFAULT_TARGETS = {"update": "unserved", "delete": "served", "create": None}
_LIST_KINDS = ("page_drift", "empty_page")
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
    action: str | None = None
    target: str | None = None
    seen: int = 0
    fired: int = 0
    results: list[dict[str, Any]] = field(default_factory=list)

    def matches(self, endpoint: str, account_id: int | None) -> bool:
        if self.endpoint not in ("*", endpoint):
            return False
        if self.kind in _LIST_KINDS and endpoint not in LIST_ENDPOINTS:
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
        "action",
        "target",
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
    if kind in _LIST_KINDS and endpoint not in ("*", *LIST_ENDPOINTS):
        raise ValueError(f"{kind} faults apply to the list endpoints {LIST_ENDPOINTS} (or '*') only")
    action, target = _drift_action_and_target(kind, spec)
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
        action=action,
        target=target,
    )


def _drift_action_and_target(kind: str, spec: Mapping[str, Any]) -> tuple[str | None, str | None]:
    if kind != "page_drift":
        for name in ("action", "target"):
            if name in spec:
                raise ValueError(f"fault field {name!r} applies to page_drift faults only")
        return None, None
    action = spec.get("action", "update")
    if action not in DRIFT_ACTIONS:
        raise ValueError(f"page_drift action must be one of {DRIFT_ACTIONS}, got {action!r}")
    target = spec.get("target")
    if target is None:
        return action, _DEFAULT_TARGETS[action]
    if action == "create":
        raise ValueError("page_drift target does not apply to action 'create' (new rows take their own place)")
    if target not in DRIFT_TARGETS:
        raise ValueError(f"page_drift target must be one of {DRIFT_TARGETS}, got {target!r}")
    return action, target


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

    def record_result(self, rule: FaultRule, result: Mapping[str, Any]) -> None:
        """Keep what a firing did (e.g. the ids a page_drift touched) on the rule, for tests to read."""
        with self._lock:
            rule.results.append(dict(result))

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
