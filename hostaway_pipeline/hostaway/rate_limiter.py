"""The one place that decides when a Hostaway call may be sent: pacing shared through Postgres.

Hostaway allows 15 calls / 10 s per client IP and 20 / 10 s per account. Every call first acquires a slot
from two buckets, ``ip:<egress id>`` and ``account:<id>``, kept as rows of
``hostaway.rate_limit_buckets`` so every thread, process and machine on the same database shares them.
Each bucket is a GCRA with no burst: it holds the earliest moment the next call may go (``next_free_at``)
and the spacing between calls (``period * (1 + margin) / calls``). A reservation is one autocommit
statement, so one round trip: it locks both rows in key order (``SELECT ... ORDER BY bucket_key FOR
UPDATE``), reads the database clock, books the IP lane's next slot (once the account's own bucket allows
it) and moves both buckets forward by their spacing; the caller sleeps locally until its slot. Every path
that locks several rows (reservation, 429 report, row creation) locks them in that same key order, so
limiter statements never deadlock one another; a deadlock, serialization failure or dropped connection is
retried inside the limiter. The database's clock decides, never a host's. Waiters queue on the row locks
first come, first served: each waiting caller gets its turn, so accounts waiting at once with as many
callers each get equal shares of the IP lane. Even spacing means no window ever holds more than the limit,
bursts never cluster, and the limiter runs the budget at ``1 / (1 + margin)`` of the documented rate.

A 429 from the server pauses both buckets until ``paused_until`` (``Retry-After``, else a full window):
new bookings land after it, and a caller whose booked slot came after a wait re-reads ``paused_until``
(one primary-key read) before it may send; if a pause began while it slept, it waits the pause out and
books again. A slot granted at once needs no re-read (a pause set before the booking already pushed the
slot past it), so an unhurried call costs one round trip and a paced one two.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Engine, Row
from sqlalchemy.sql.expression import Executable

from hostaway_pipeline.settings import RateLimit
from hostaway_pipeline.storage.tables import SCHEMA
from hostaway_pipeline.storage.tables import rate_limit_buckets as buckets

_TABLE = f"{SCHEMA}.{buckets.name}"

# One statement: lock the rows in key order, read the clock once every lock is held (the aggregate reads
# every locked row first), decide, and book when granted. ``found`` guards against rows deleted under us.
_RESERVE = sa.text(f"""
WITH locked AS MATERIALIZED (
    SELECT bucket_key, next_free_at FROM {_TABLE}
    WHERE bucket_key = ANY(:keys) ORDER BY bucket_key FOR UPDATE
), clock AS MATERIALIZED (
    SELECT clock_timestamp() AS now, count(*) AS found,
           max(next_free_at) FILTER (WHERE bucket_key = :ip_key) AS ip_next_free,
           max(next_free_at) FILTER (WHERE bucket_key <> :ip_key) AS account_next_free
    FROM locked
), decision AS MATERIALIZED (
    SELECT now, found, greatest(now, ip_next_free) AS slot_at, account_next_free,
           found = :expected AND (account_next_free IS NULL OR account_next_free <= greatest(now, ip_next_free))
               AS granted
    FROM clock
), booked AS (
    UPDATE {_TABLE} AS bucket
    SET next_free_at = decision.slot_at + make_interval(secs => bucket.interval_seconds),
        grants = bucket.grants + 1,
        wait_seconds = bucket.wait_seconds + extract(epoch FROM decision.slot_at - decision.now),
        updated_at = decision.now
    FROM decision
    WHERE decision.granted AND bucket.bucket_key IN (SELECT bucket_key FROM locked)
)
SELECT granted, found,
       extract(epoch FROM CASE WHEN granted THEN slot_at ELSE account_next_free END - now) AS wait_seconds
FROM decision
""")

# Same lock order as a reservation; the pause end is read once every lock is held (the aggregate again).
_REPORT_THROTTLED = sa.text(f"""
WITH locked AS MATERIALIZED (
    SELECT bucket_key FROM {_TABLE} WHERE bucket_key = ANY(:keys) ORDER BY bucket_key FOR UPDATE
), pause AS MATERIALIZED (
    SELECT clock_timestamp() + make_interval(secs => :pause_seconds) AS until, count(*) AS found FROM locked
)
UPDATE {_TABLE} AS bucket
SET paused_until = greatest(bucket.paused_until, pause.until),
    next_free_at = greatest(bucket.next_free_at, pause.until),
    throttled = bucket.throttled + 1
FROM pause
WHERE bucket.bucket_key IN (SELECT bucket_key FROM locked)
""")

_PAUSED_SECONDS = sa.text(f"""
SELECT extract(epoch FROM max(paused_until) - clock_timestamp()) FROM {_TABLE} WHERE bucket_key = ANY(:keys)
""")

# Deadlock detected, serialization failure, lock not available: the statement changed nothing, run it again.
_TRANSIENT_SQLSTATES = frozenset({"40P01", "40001", "55P03"})
_DATABASE_ATTEMPTS = 6

_autocommit_engines: dict[tuple[int, str], Engine] = {}
_autocommit_engines_lock = threading.Lock()


def _autocommit_engine(engine: Engine) -> Engine:
    """The limiters' own small pool on ``engine``'s database, one per process: autocommit, so each limiter
    statement is its own transaction in one round trip, and no pre-ping (a dropped connection is retried)."""
    key = (os.getpid(), engine.url.render_as_string(hide_password=False))
    with _autocommit_engines_lock:
        found = _autocommit_engines.get(key)
        if found is None:
            found = sa.create_engine(engine.url, isolation_level="AUTOCOMMIT", pool_size=2, max_overflow=16)
            _autocommit_engines[key] = found
        return found


def _is_transient(error: sa.exc.DBAPIError) -> bool:
    return error.connection_invalidated or getattr(error.orig, "pgcode", None) in _TRANSIENT_SQLSTATES


@dataclass
class LimiterCounters:
    """What this process's calls cost in pacing; exposed as run metadata."""

    grants: int = 0
    waits: int = 0
    wait_seconds: float = 0.0
    throttled_429: int = 0
    held_by_pause: int = 0  # booked slots given up because a 429 paused the bucket while the caller slept
    database_retries: int = 0  # limiter statements run again after a deadlock, serialization or connection error

    def snapshot(self) -> LimiterCounters:
        return LimiterCounters(**{f.name: getattr(self, f.name) for f in fields(self)})

    def minus(self, earlier: LimiterCounters) -> LimiterCounters:
        return LimiterCounters(**{f.name: getattr(self, f.name) - getattr(earlier, f.name) for f in fields(self)})


def ip_bucket_key(egress_id: str) -> str:
    return f"ip:{egress_id}"


def account_bucket_key(account_id: int) -> str:
    return f"account:{account_id}"


class RateLimiter:
    """Acquire before every Hostaway request; report every 429. Thread-safe; one per process is enough."""

    def __init__(
        self,
        engine: Engine,
        per_ip: RateLimit,
        per_account: RateLimit,
        margin: float = 0.03,
        egress_id: str = "default",
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.engine = engine
        self.per_ip = per_ip
        self.per_account = per_account
        self.margin = margin
        self.egress_id = egress_id
        self._sleep = sleep
        self._ensured: set[str] = set()
        self._lock = threading.Lock()
        self.counters = LimiterCounters()

    def interval_seconds(self, limit: RateLimit) -> float:
        return limit.period_seconds * (1.0 + self.margin) / limit.calls

    def _buckets_for(self, account_id: int | None) -> dict[str, float]:
        wanted = {ip_bucket_key(self.egress_id): self.interval_seconds(self.per_ip)}
        if account_id is not None:
            wanted[account_bucket_key(account_id)] = self.interval_seconds(self.per_account)
        return wanted

    def _execute(self, statement: Executable, parameters: Mapping[str, Any] | None = None) -> Sequence[Row]:
        """Run one limiter statement as its own transaction, again after a transient database error.

        Safe to repeat: a statement that failed changed nothing. The one ambiguous case, a connection lost
        after the server committed, books a second slot (slower, never faster) or counts a 429 twice.
        """
        for attempt in range(1, _DATABASE_ATTEMPTS + 1):
            try:
                with _autocommit_engine(self.engine).connect() as connection:
                    result = connection.execute(statement, dict(parameters or {}))
                    return result.all() if result.returns_rows else []
            except sa.exc.DBAPIError as error:
                if attempt == _DATABASE_ATTEMPTS or not _is_transient(error):
                    raise
                with self._lock:
                    self.counters.database_retries += 1
                self._sleep(random.uniform(0.0, min(1.0, 0.02 * 2**attempt)))  # full jitter
        raise AssertionError("unreachable")

    def _ensure_rows(self, wanted: dict[str, float]) -> None:
        missing = {key: interval for key, interval in wanted.items() if key not in self._ensured}
        if not missing:
            return
        # Rows are inserted (and, when they exist, locked) in key order, like every other limiter path.
        statement = pg_insert(buckets).values(
            [{"bucket_key": key, "interval_seconds": interval} for key, interval in sorted(missing.items())]
        )
        # The configured spacing wins: a process started with new limits updates the shared rows.
        statement = statement.on_conflict_do_update(
            index_elements=[buckets.c.bucket_key], set_={"interval_seconds": statement.excluded.interval_seconds}
        )
        self._execute(statement)
        with self._lock:
            self._ensured.update(missing)

    def try_reserve(self, account_id: int | None) -> tuple[bool, float]:
        """One attempt at a slot: ``(True, seconds until it)`` when reserved, or ``(False, seconds)`` when the
        account's own bucket is the bottleneck and the caller should come back then.

        Only the IP lane books slots ahead of time. An account that is itself over pace does not book
        an IP slot in the future (that would block every other account behind it); it waits for its
        own bucket, then queues for the IP lane like everyone else.
        """
        wanted = self._buckets_for(account_id)
        while True:
            self._ensure_rows(wanted)
            (row,) = self._execute(_RESERVE, {"keys": sorted(wanted), "ip_key": ip_bucket_key(self.egress_id),
                                              "expected": len(wanted)})
            if row.found == len(wanted):
                return bool(row.granted), float(row.wait_seconds)
            with self._lock:  # a row was deleted under us (tests truncate): create it again
                self._ensured.difference_update(wanted)

    def paused_seconds(self, account_id: int | None) -> float:
        """Seconds until a 429 pause on this call's buckets ends (0 when none is running)."""
        (row,) = self._execute(_PAUSED_SECONDS, {"keys": sorted(self._buckets_for(account_id))})
        return max(0.0, float(row[0] or 0.0))

    def acquire(self, account_id: int | None) -> float:
        """Block until a call for ``account_id`` may be sent; returns the seconds waited."""
        waited = 0.0
        while True:
            granted, wait_seconds = self.try_reserve(account_id)
            if wait_seconds > 0:
                self._sleep(wait_seconds)
                waited += wait_seconds
            if not granted:
                continue
            if wait_seconds <= 0:
                break  # booked for now: a pause reported before the booking already put the slot after it
            paused_for = self.paused_seconds(account_id)
            if paused_for <= 0:
                break
            # A 429 paused the bucket while this call slept towards its slot: give the slot up, wait the
            # pause out, then book again (after the pause, behind whoever booked meanwhile).
            with self._lock:
                self.counters.held_by_pause += 1
            self._sleep(paused_for)
            waited += paused_for
        with self._lock:
            self.counters.grants += 1
            if waited > 0:
                self.counters.waits += 1
                self.counters.wait_seconds += waited
        return waited

    def report_throttled(self, account_id: int | None, pause_seconds: float | None = None) -> None:
        """The server answered 429: no call on these buckets before ``pause_seconds`` (default a window)."""
        wanted = self._buckets_for(account_id)
        self._ensure_rows(wanted)
        pause = pause_seconds if pause_seconds is not None else max(
            self.per_ip.period_seconds, self.per_account.period_seconds
        )
        self._execute(_REPORT_THROTTLED, {"keys": sorted(wanted), "pause_seconds": float(pause)})
        with self._lock:
            self.counters.throttled_429 += 1

    def bucket_totals(self) -> dict[str, dict[str, float]]:
        """All-time grants, wait seconds and 429s per bucket, as every process recorded them."""
        with self.engine.connect() as connection:
            rows = connection.execute(sa.select(buckets).order_by(buckets.c.bucket_key)).all()
        return {
            row.bucket_key: {"grants": row.grants, "wait_seconds": row.wait_seconds, "throttled": row.throttled}
            for row in rows
        }
