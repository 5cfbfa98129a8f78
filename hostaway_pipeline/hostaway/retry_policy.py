"""When and how long to wait before retrying a failed Hostaway call: bounded exponential backoff, full jitter."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """At most ``max_attempts`` tries and ``max_total_seconds`` of waiting for one request."""

    max_attempts: int = 6
    max_total_seconds: float = 300.0
    base_seconds: float = 0.5
    cap_seconds: float = 30.0

    def backoff_seconds(self, attempt: int, retry_after_seconds: float | None = None,
                        rng: random.Random | None = None) -> float:
        """Seconds before retry number ``attempt`` (1-based): the server's Retry-After when given, else
        full jitter ``uniform(0, min(cap, base * 2**(attempt-1)))``."""
        if retry_after_seconds is not None:
            return min(max(retry_after_seconds, 0.0), self.max_total_seconds)
        ceiling = min(self.cap_seconds, self.base_seconds * 2 ** (attempt - 1))
        return (rng or random).uniform(0.0, ceiling)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """``Retry-After`` as delta-seconds or an HTTP date; ``None`` when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max((moment - (now or datetime.now(UTC))).total_seconds(), 0.0)
