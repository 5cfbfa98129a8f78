"""When and how long to wait before retrying a failed Hostaway call: bounded exponential backoff, full jitter.

A ``Retry-After`` header is a hint from a server we do not control, so it is never trusted blindly: a
value that is not a finite non-negative number of seconds or a readable HTTP date (``-5``, ``nan``,
``inf``, ``soon``) is ignored as if absent, and any value (``86400``, a date in 2999) is capped at the
maximum pause (``HOSTAWAY_RATE_LIMIT_MAX_PAUSE``, default 120 s). The rate limiter applies the same cap
to the pauses it stores, so no response can hold a bucket for longer.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from hostaway_pipeline.settings import RATE_LIMIT_MAX_PAUSE_SECONDS_DEFAULT

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})

# RFC 9110 delta-seconds is 1*DIGIT; a fraction is accepted (the local stand-in sends one). No sign,
# exponent, "nan" or "inf": float() would read those, and they are exactly the values to ignore.
_DELTA_SECONDS = re.compile(r"[0-9]+(?:\.[0-9]+)?")


@dataclass(frozen=True)
class RetryPolicy:
    """At most ``max_attempts`` tries and ``max_total_seconds`` of waiting for one request."""

    max_attempts: int = 6
    max_total_seconds: float = 300.0
    base_seconds: float = 0.5
    cap_seconds: float = 30.0

    def backoff_seconds(self, attempt: int, retry_after_seconds: float | None = None,
                        rng: random.Random | None = None) -> float:
        """Seconds before retry number ``attempt`` (1-based): the server's Retry-After when given (read it with
        :func:`parse_retry_after`, which caps it), else full jitter ``uniform(0, min(cap, base * 2**(attempt-1)))``.
        A Retry-After that is not a finite number is ignored here too."""
        if retry_after_seconds is not None and math.isfinite(retry_after_seconds):
            return min(max(retry_after_seconds, 0.0), self.max_total_seconds)
        ceiling = min(self.cap_seconds, self.base_seconds * 2 ** (attempt - 1))
        return (rng or random).uniform(0.0, ceiling)


def parse_retry_after(value: str | None, now: datetime | None = None,
                      max_seconds: float = RATE_LIMIT_MAX_PAUSE_SECONDS_DEFAULT) -> float | None:
    """``Retry-After`` as seconds to wait, at most ``max_seconds``; ``None`` when absent or not to be trusted.

    Delta-seconds (digits, optionally a fraction) or an HTTP date (seconds until it, 0 when it has passed).
    Negative, NaN, infinite, signed, exponent or otherwise unreadable values give ``None``; values beyond
    ``max_seconds`` give ``max_seconds``.
    """
    if not value:
        return None
    value = value.strip()
    if _DELTA_SECONDS.fullmatch(value):
        seconds = float(value)  # digits only: finite unless absurdly long, and then capped below
    else:
        try:
            moment = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if moment is None:
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        seconds = max((moment - (now or datetime.now(UTC))).total_seconds(), 0.0)
    if math.isnan(seconds):
        return None
    return min(seconds, max_seconds)
