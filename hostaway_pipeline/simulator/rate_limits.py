"""Hostaway's rate limits (per client IP and per account, true sliding windows) and exact call statistics.

A request is refused with 429 when the accepted requests in the trailing window ``(now - W, now]`` of
its IP or of its account already reached the limit; only accepted requests enter the windows. The
statistics are computed from the same monotonic timestamps with the same window semantics, so
``max_calls_in_any_window_*`` is exact and can never exceed a limit the limiter enforced.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class RateLimitPolicy:
    """Declared limits: ``ip_limit`` / ``account_limit`` accepted calls per ``window_seconds`` (real time)."""

    ip_limit: int = 15
    account_limit: int = 20
    window_seconds: float = 10.0

    def __post_init__(self) -> None:
        if self.ip_limit < 1 or self.account_limit < 1:
            raise ValueError("rate limits must be at least 1 call per window")
        if self.window_seconds <= 0:
            raise ValueError("the rate-limit window must be positive")


class SlidingWindowLimiter:
    """Admits or refuses each call against both windows atomically; never forgets on stats reset."""

    def __init__(self, policy: RateLimitPolicy) -> None:
        self.policy = policy
        self._by_ip: dict[str, deque[float]] = {}
        self._by_account: dict[int, deque[float]] = {}
        self._lock = threading.Lock()

    def _trim(self, window: deque[float], now: float) -> deque[float]:
        horizon = now - self.policy.window_seconds
        while window and window[0] <= horizon:
            window.popleft()
        return window

    def admit(self, ip: str, account_id: int | None) -> tuple[bool, float]:
        """Return (accepted, monotonic timestamp of the decision)."""
        with self._lock:
            now = time.monotonic()
            ip_window = self._trim(self._by_ip.setdefault(ip, deque()), now)
            account_window = (
                self._trim(self._by_account.setdefault(account_id, deque()), now)
                if account_id is not None
                else None
            )
            if len(ip_window) >= self.policy.ip_limit:
                return False, now
            if account_window is not None and len(account_window) >= self.policy.account_limit:
                return False, now
            ip_window.append(now)
            if account_window is not None:
                account_window.append(now)
            return True, now


@dataclass
class CallRecord:
    """One ``/v1`` call, logged when admitted or refused; ``status`` is filled in once answered."""

    time: float
    ip: str
    account_id: int | None
    endpoint: str
    method: str
    accepted: bool
    status: int | None = None  # None while in flight, or when the connection was reset
    connection_reset: bool = False
    fault: str | None = None
    fault_id: int | None = None
    fault_result: dict[str, Any] | None = None  # what an empty_page / page_drift fault did on this call

    def status_label(self) -> str:
        if self.connection_reset:
            return "reset"
        return "pending" if self.status is None else str(self.status)


def max_in_any_window(times: Iterable[float], window_seconds: float) -> int:
    """Most timestamps inside any window ``(t - W, t]``: exact, two pointers over sorted times."""
    ordered = sorted(times)
    best = 0
    start = 0
    for end, moment in enumerate(ordered):
        while ordered[start] <= moment - window_seconds:
            start += 1
        best = max(best, end - start + 1)
    return best


class CallLog:
    """Every ``/v1`` call since the last reset, and the statistics derived from it."""

    def __init__(self, policy: RateLimitPolicy) -> None:
        self.policy = policy
        self._records: list[CallRecord] = []
        self._lock = threading.Lock()

    def record(self, record: CallRecord) -> None:
        with self._lock:
            self._records.append(record)

    def reset(self) -> None:
        with self._lock:
            self._records = []

    def records(self) -> list[CallRecord]:
        with self._lock:
            return sorted(self._records, key=lambda r: r.time)

    def calls(self) -> list[dict[str, Any]]:
        return [asdict(record) for record in self.records()]

    def stats(self) -> dict[str, Any]:
        records = self.records()
        accepted = [r for r in records if r.accepted]
        window = self.policy.window_seconds
        times_by_ip: dict[str, list[float]] = {}
        times_by_account: dict[str, list[float]] = {}
        for r in accepted:
            times_by_ip.setdefault(r.ip, []).append(r.time)
            if r.account_id is not None:
                times_by_account.setdefault(str(r.account_id), []).append(r.time)
        per_ip = {ip: max_in_any_window(times, window) for ip, times in times_by_ip.items()}
        per_account = {acc: max_in_any_window(times, window) for acc, times in times_by_account.items()}
        return {
            "total_calls": len(records),
            "accepted_calls": len(accepted),
            "served_429": sum(1 for r in records if not r.accepted),
            "by_endpoint": dict(Counter(r.endpoint for r in records)),
            "accepted_by_endpoint": dict(Counter(r.endpoint for r in accepted)),
            "by_account": dict(Counter(str(r.account_id) for r in records if r.account_id is not None)),
            "by_status": dict(Counter(r.status_label() for r in records)),
            "by_ip": dict(Counter(r.ip for r in records)),
            "injected_faults": dict(Counter(r.fault for r in records if r.fault)),
            "max_calls_in_any_window_by_ip": max(per_ip.values(), default=0),
            "max_calls_in_any_window_by_account": max(per_account.values(), default=0),
            "max_calls_in_any_window_per_ip": per_ip,
            "max_calls_in_any_window_per_account": per_account,
            "window_seconds": window,
            "ip_limit": self.policy.ip_limit,
            "account_limit": self.policy.account_limit,
            "first_call_at": records[0].time if records else None,
            "last_call_at": records[-1].time if records else None,
        }
