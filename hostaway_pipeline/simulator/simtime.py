"""Time in the simulated Hostaway world: the zone-less UTC formats Hostaway uses and a scaled clock.

The world's "now" starts at a fixed instant derived from the seed and advances with real elapsed time
multiplied by ``time_scale``, so a benchmark can compress hours of account activity into seconds.
"""

from __future__ import annotations

import threading
import time
from datetime import date, datetime, timedelta

TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S"
DATE_FORMAT = "%Y-%m-%d"

# Every seed's world starts shortly after this instant (plus up to a day, chosen by the seed).
_WORLD_EPOCH = datetime(2026, 11, 1, 12, 0, 0)


def format_timestamp(moment: datetime) -> str:
    """Hostaway timestamp: ``YYYY-MM-DD HH:MM:SS`` in UTC, no zone, no fraction."""
    return moment.strftime(TIMESTAMP_FORMAT)


def format_date(day: date | datetime) -> str:
    """Hostaway calendar date: ``YYYY-MM-DD``."""
    return day.strftime(DATE_FORMAT)


def parse_timestamp(text: str) -> datetime:
    """Parse a Hostaway timestamp (``YYYY-MM-DD HH:MM:SS``); raises ValueError otherwise."""
    return datetime.strptime(text, TIMESTAMP_FORMAT)


def parse_date(text: str) -> date:
    """Parse a Hostaway calendar date (``YYYY-MM-DD``); raises ValueError otherwise."""
    return datetime.strptime(text, DATE_FORMAT).date()


def parse_filter_bound(text: str, *, is_end: bool) -> str:
    """Turn a filter bound given as a timestamp or a date into a comparable timestamp string.

    A date-only end bound covers its whole day (``23:59:59``), so ``latestActivityEnd=2026-10-01``
    includes everything that happened on that day.
    """
    text = text.strip()
    try:
        return format_timestamp(parse_timestamp(text))
    except ValueError:
        day = parse_date(text)  # raises ValueError with a usable message
        suffix = " 23:59:59" if is_end else " 00:00:00"
        return format_date(day) + suffix


def world_epoch_for_seed(seed: int) -> datetime:
    """The simulated world's base instant: deterministic per seed, always at a whole minute."""
    return _WORLD_EPOCH + timedelta(minutes=seed % 1440)


class WorldClock:
    """The simulated world's clock: base instant + real elapsed seconds x ``time_scale``."""

    def __init__(self, base: datetime, time_scale: float) -> None:
        if time_scale <= 0:
            raise ValueError(f"time_scale must be positive, got {time_scale}")
        self.base = base
        self.time_scale = time_scale
        self._started_monotonic = time.monotonic()

    def now(self) -> datetime:
        elapsed_real_seconds = time.monotonic() - self._started_monotonic
        return self.base + timedelta(seconds=elapsed_real_seconds * self.time_scale)

    def world_seconds_to_real(self, world_seconds: float) -> float:
        """How many real seconds pass while the world advances ``world_seconds``."""
        return world_seconds / self.time_scale


class StampSequence:
    """Hands out whole-second timestamps that strictly increase, even for changes within one second.

    Hostaway timestamps have one-second resolution; two mutations in the same simulated second would
    otherwise share an ``updatedOn`` and an incremental sync could not tell them apart.
    """

    def __init__(self, clock: WorldClock, floor: datetime) -> None:
        self._clock = clock
        self._last = floor.replace(microsecond=0)
        self._lock = threading.Lock()

    def next(self) -> datetime:
        with self._lock:
            candidate = self._clock.now().replace(microsecond=0)
            if candidate <= self._last:
                candidate = self._last + timedelta(seconds=1)
            self._last = candidate
            return candidate

    def raise_floor(self, floor: datetime) -> None:
        with self._lock:
            self._last = max(self._last, floor.replace(microsecond=0))
