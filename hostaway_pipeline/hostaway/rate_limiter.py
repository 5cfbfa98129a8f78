"""The one place that decides when a Hostaway call may be sent: pacing shared through Postgres.

Hostaway allows 15 calls / 10 s per client IP and 20 / 10 s per account. Every call first acquires a slot
from two buckets, ``ip:<egress pool>`` (the pool this process sends for: one pool, one egress IP, one
budget; ``defs/resources.py`` lets it call only for accounts of that pool) and ``account:<id>``, kept as rows of
``hostaway.rate_limit_buckets`` so every thread, process and machine on the same database shares them.
Each bucket is a GCRA with no burst: it holds the earliest moment the next call may go (``next_free_at``)
and the spacing between calls, ``(period * (1 + margin) + guard) / calls``. A reservation is one autocommit
statement, so one round trip: it locks both rows in key order (``SELECT ... ORDER BY bucket_key FOR
UPDATE``), reads the database clock, books the IP lane's next slot (once the account's own bucket allows
it) and moves both buckets forward by their spacing; the caller sleeps locally until its slot. Every path
that locks several rows (reservation, 429 report, late shift, row creation) locks them in that same key
order, so limiter statements never deadlock one another; a deadlock, serialization failure or dropped
connection is retried inside the limiter. The database's clock decides, never a host's. Waiters queue on the row locks
first come, first served: each waiting caller gets its turn, so accounts waiting at once with as many
callers each get equal shares of the IP lane. Even spacing means no window ever holds more than the limit
and bursts never cluster.

Jitter. ``calls`` slots span ``period * (1 + margin) + guard``: a call may reach the server up to
``margin * period + guard`` later than its slot (relative to the call ``calls`` slots after it) before the
two share a window. The guard is absolute (default 0.1 s), so the tolerance does not shrink with the window
the way the margin does; the budget runs at ``period / (period * (1 + margin) + guard)`` of the documented
rate (0.96 with the defaults). A caller that is ready later than a quarter of that tolerance after its
slot (a descheduled thread, or a database backend descheduled between reading its clock and answering:
lateness counts from the earliest local moment the slot can be) may not simply send: if nobody has booked
the slot a full window after its own yet, it moves every later booking back by its lateness (one
statement) and sends; otherwise it gives the slot up and books again. Either way the rest of the tolerance
is left to what happens after the send (the network, the server). Limiter statements run with
``synchronous_commit = off``: a booking is visible to every other session at commit all the same, only its
durability waits for the WAL writer, so a reservation does not wait for a disk flush between reading the
clock and returning (a crash may forget the last few hundred milliseconds of bookings: at worst one 429).

429s. A 429 pauses buckets until ``paused_until``: ``Retry-After`` (seconds or an HTTP date) when it is a
finite non-negative number, else a full window, and never more than ``max_pause_seconds`` (default 120 s):
``Retry-After: 86400``, ``nan`` or a date in 2999 can neither stall an egress IP nor be stored. Which
buckets: the IP row keeps the slots it granted over the last two windows (``recent_slots``); if this
deployment's own calls in the IP window before the refused call (the window stretched by the guard, for
calls that reached the server late) were under the IP limit, the IP budget cannot have been what was
exceeded, so the 429 came from the account's limit, which the customer's other integrations share: only
that account's bucket is paused and every other account on the egress IP keeps its pace. Otherwise (or for
a call with no account) the IP bucket is paused too. Reservations honour a pause on either bucket: new
bookings land after it, and a caller whose booked slot came after a wait re-reads ``paused_until`` (one
primary-key read) before it may send; if a pause began while it slept, it waits the pause out and books
again (it re-reads 20 ms before its slot, so the read's round trip delays nothing). A slot granted at once
needs no re-read (a pause set before the booking already put the slot after it), so an unhurried call
costs one round trip and a paced one two.

Deadlines. ``acquire`` takes a deadline (``time.monotonic()``; default ``max_wait_seconds`` from now) and
raises :class:`RateLimitDeadlineExceeded` as soon as it knows no slot comes before it, rather than
sleeping: a slot past the deadline is never booked, so a caller that gives up takes nothing from the lane.
Nothing is ever scheduled more than ``RATE_LIMIT_SCHEDULE_CEILING_SECONDS`` (600 s) ahead; a pause or a
booking stored further ahead (written by an older version, or by hand) is ignored and overwritten.
"""

from __future__ import annotations

import math
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

from hostaway_pipeline.settings import (
    RATE_LIMIT_GUARD_SECONDS_DEFAULT,
    RATE_LIMIT_MAX_PAUSE_SECONDS_DEFAULT,
    RATE_LIMIT_SCHEDULE_CEILING_SECONDS,
    RateLimit,
)
from hostaway_pipeline.storage.tables import SCHEMA
from hostaway_pipeline.storage.tables import rate_limit_buckets as buckets

_TABLE = f"{SCHEMA}.{buckets.name}"

# One statement: lock the rows in key order, read the clock once every lock is held (the aggregate reads
# every locked row first), decide, and book when granted. ``found`` guards against rows deleted under us.
# A booking or pause stored beyond the ceiling is not honoured (``sane``) and is overwritten by the booking.
_RESERVE = sa.text(f"""
WITH locked AS MATERIALIZED (
    SELECT bucket_key, next_free_at, next_free_at - make_interval(secs => interval_seconds) AS last_slot,
           paused_until
    FROM {_TABLE} WHERE bucket_key = ANY(:keys) ORDER BY bucket_key FOR UPDATE
), clock AS MATERIALIZED (
    SELECT clock_timestamp() AS now, count(*) AS found,
           max(next_free_at) FILTER (WHERE bucket_key = :ip_key) AS ip_next_free,
           max(last_slot) FILTER (WHERE bucket_key = :ip_key) AS ip_last_slot,
           max(paused_until) FILTER (WHERE bucket_key = :ip_key) AS ip_paused_until,
           max(next_free_at) FILTER (WHERE bucket_key <> :ip_key) AS account_next_free,
           max(last_slot) FILTER (WHERE bucket_key <> :ip_key) AS account_last_slot,
           max(paused_until) FILTER (WHERE bucket_key <> :ip_key) AS account_paused_until
    FROM locked
), sane AS MATERIALIZED (
    SELECT now, found, now + make_interval(secs => :ceiling) AS ceiling_at,
           CASE WHEN ip_last_slot <= now + make_interval(secs => :ceiling) THEN ip_next_free END AS ip_next_free,
           CASE WHEN ip_paused_until <= now + make_interval(secs => :ceiling) THEN ip_paused_until END AS ip_pause,
           CASE WHEN account_last_slot <= now + make_interval(secs => :ceiling)
                THEN account_next_free END AS account_next_free,
           CASE WHEN account_paused_until <= now + make_interval(secs => :ceiling)
                THEN account_paused_until END AS account_pause
    FROM clock
), options AS MATERIALIZED (
    SELECT *, greatest(now, ip_next_free, ip_pause) AS slot_at,
           greatest(account_next_free, account_pause) AS account_ready_at  -- NULL: no account bucket
    FROM sane
), decision AS MATERIALIZED (
    SELECT *,
           found = :expected AND (account_ready_at IS NULL OR account_ready_at <= slot_at)
               AND slot_at <= now + make_interval(secs => :max_wait) AS granted,
           account_ready_at IS NOT NULL AND account_ready_at > slot_at AS account_first
    FROM options
), booked AS (
    UPDATE {_TABLE} AS bucket
    SET next_free_at = decision.slot_at + make_interval(secs => bucket.interval_seconds),
        grants = bucket.grants + 1,
        wait_seconds = bucket.wait_seconds + extract(epoch FROM decision.slot_at - decision.now),
        updated_at = decision.now,
        paused_until = CASE WHEN bucket.paused_until > decision.ceiling_at THEN NULL ELSE bucket.paused_until END,
        recent_slots = CASE WHEN bucket.bucket_key = :ip_key THEN array_append(
            ARRAY(SELECT slot FROM unnest(bucket.recent_slots) AS slot
                  WHERE slot > decision.now - make_interval(secs => :history) AND slot <= decision.ceiling_at
                  ORDER BY slot),
            decision.slot_at) ELSE bucket.recent_slots END
    FROM decision
    WHERE decision.granted AND bucket.bucket_key IN (SELECT bucket_key FROM locked)
)
SELECT granted, found, extract(epoch FROM slot_at) AS slot_epoch,
       extract(epoch FROM now - statement_timestamp()) AS before_clock_seconds,
       extract(epoch FROM CASE WHEN account_first THEN account_ready_at ELSE slot_at END - now) AS wait_seconds,
       CASE WHEN account_first AND account_pause >= account_ready_at THEN 'the account is paused by a 429'
            WHEN account_first THEN 'the account''s own pace'
            WHEN ip_pause >= slot_at THEN 'the egress IP is paused by a 429'
            ELSE 'the egress IP''s queue' END AS held_by
FROM decision
""")

# Same lock order as a reservation. ``own_calls``: slots this deployment booked on the IP lane in the window
# that ended when the refused call was sent (itself included). The IP is blamed only when the others alone
# reached the IP limit; the account bucket is always paused. Pauses beyond the ceiling are dropped first.
_REPORT_THROTTLED = sa.text(f"""
WITH locked AS MATERIALIZED (
    SELECT bucket_key, recent_slots FROM {_TABLE} WHERE bucket_key = ANY(:keys) ORDER BY bucket_key FOR UPDATE
), clock AS MATERIALIZED (
    SELECT clock_timestamp() AS now, count(*) AS found FROM locked
), judged AS MATERIALIZED (
    SELECT now, now + make_interval(secs => :pause_seconds) AS until,
           now + make_interval(secs => :ceiling) AS ceiling_at,
           (SELECT count(*) FROM locked CROSS JOIN LATERAL unnest(locked.recent_slots) AS slot
            WHERE locked.bucket_key = :ip_key
              AND slot > now - make_interval(secs => :sent_seconds_ago + :ip_window_seconds)
              AND slot <= now - make_interval(secs => :sent_seconds_ago)) AS own_calls
    FROM clock
), blamed AS MATERIALIZED (
    SELECT *, :ip_only OR own_calls - 1 >= :ip_limit AS ip_blamed FROM judged
), paused AS (
    UPDATE {_TABLE} AS bucket
    SET paused_until = CASE WHEN bucket.bucket_key <> :ip_key OR blamed.ip_blamed
                            THEN greatest(CASE WHEN bucket.paused_until <= blamed.ceiling_at
                                               THEN bucket.paused_until END, blamed.until)
                            WHEN bucket.paused_until > blamed.ceiling_at THEN NULL
                            ELSE bucket.paused_until END,
        throttled = bucket.throttled + 1
    FROM blamed
    WHERE bucket.bucket_key IN (SELECT bucket_key FROM locked)
)
SELECT ip_blamed, own_calls FROM blamed
""")

# A caller that woke ``:late`` seconds after its slot may still send if nobody has booked the slot a full
# window after it on either bucket (``next_free_at`` not past ``slot + calls * interval``): then every later
# booking moves back by ``:late`` and keeps its distance from this late call. Same lock order as ever.
_SHIFT_FOR_LATE = sa.text(f"""
WITH locked AS MATERIALIZED (
    SELECT bucket_key, next_free_at, interval_seconds FROM {_TABLE}
    WHERE bucket_key = ANY(:keys) ORDER BY bucket_key FOR UPDATE
), safe AS MATERIALIZED (
    SELECT count(*) = :expected AND coalesce(bool_and(next_free_at <= to_timestamp(:slot) + make_interval(
               secs => interval_seconds * CASE WHEN bucket_key = :ip_key THEN :ip_calls ELSE :account_calls END)),
               false) AS ok
    FROM locked
), shifted AS (
    UPDATE {_TABLE} AS bucket SET next_free_at = bucket.next_free_at + make_interval(secs => :late)
    FROM safe WHERE safe.ok AND bucket.bucket_key IN (SELECT bucket_key FROM locked)
)
SELECT ok FROM safe
""")

_PAUSED_SECONDS = sa.text(f"""
SELECT extract(epoch FROM max(paused_until) FILTER (
           WHERE paused_until <= clock_timestamp() + make_interval(secs => :ceiling)) - clock_timestamp())
FROM {_TABLE} WHERE bucket_key = ANY(:keys)
""")

# A caller whose slot comes after a wait re-reads the pause this long before its slot, then sleeps the rest.
_PAUSE_CHECK_LEAD_SECONDS = 0.02

# Deadlock detected, serialization failure, lock not available: the statement changed nothing, run it again.
_TRANSIENT_SQLSTATES = frozenset({"40P01", "40001", "55P03"})
_DATABASE_ATTEMPTS = 6

_autocommit_engines: dict[tuple[int, str], Engine] = {}
_autocommit_engines_lock = threading.Lock()


def _without_commit_flush(dbapi_connection: Any, _: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("SET synchronous_commit TO off")
    finally:
        cursor.close()


def _autocommit_engine(engine: Engine) -> Engine:
    """The limiters' own small pool on ``engine``'s database, one per process: autocommit, so each limiter
    statement is its own transaction in one round trip; no pre-ping (a dropped connection is retried); and
    ``synchronous_commit = off`` (see the module docstring)."""
    key = (os.getpid(), engine.url.render_as_string(hide_password=False))
    with _autocommit_engines_lock:
        found = _autocommit_engines.get(key)
        if found is None:
            found = sa.create_engine(engine.url, isolation_level="AUTOCOMMIT", pool_size=2, max_overflow=16)
            sa.event.listen(found, "connect", _without_commit_flush)
            _autocommit_engines[key] = found
        return found


def _is_transient(error: sa.exc.DBAPIError) -> bool:
    return error.connection_invalidated or getattr(error.orig, "pgcode", None) in _TRANSIENT_SQLSTATES


class RateLimitDeadlineExceeded(TimeoutError):
    """No slot for a call before the caller's deadline; says how far off the earliest one is and why."""

    def __init__(self, account_id: int | None, wait_seconds: float, remaining_seconds: float, held_by: str) -> None:
        self.account_id = account_id
        self.wait_seconds = wait_seconds
        self.remaining_seconds = remaining_seconds
        self.held_by = held_by
        who = "a call without an account" if account_id is None else f"a call for account {account_id}"
        super().__init__(
            f"rate limiter: no slot for {who} before its deadline: the earliest is {wait_seconds:.1f} s away "
            f"(held by {held_by}), the deadline {max(remaining_seconds, 0.0):.1f} s"
        )


@dataclass(frozen=True)
class Reservation:
    """One attempt at a slot: granted (``wait_seconds`` until it) or not (come back in ``wait_seconds``)."""

    granted: bool
    wait_seconds: float
    held_by: str  # what decides the wait: the IP queue or pause, the account's pace or pause
    slot_epoch: float = 0.0  # the IP slot (database clock, epoch seconds) when granted
    # The earliest local instant (time.monotonic()) the slot can be: the statement was sent, waited for its
    # locks, read the clock, and the slot is wait_seconds after that. How late a caller is counts from here,
    # so time the database spent after reading its clock (a backend descheduled on a busy host) counts too.
    slot_monotonic: float = 0.0


@dataclass(frozen=True)
class ThrottleVerdict:
    """What a reported 429 paused: ``ip_paused`` False means the account's bucket only."""

    ip_paused: bool
    own_calls_in_ip_window: int  # this deployment's slots in the refused call's IP window, itself included
    pause_seconds: float


@dataclass
class LimiterCounters:
    """What this process's calls cost in pacing; exposed as run metadata."""

    grants: int = 0
    waits: int = 0
    wait_seconds: float = 0.0
    throttled_429: int = 0
    account_only_pauses: int = 0  # 429s blamed on the account's limit: the egress IP kept its pace
    ip_pauses: int = 0  # 429s that paused the egress IP (own calls filled its window, or no account)
    held_by_pause: int = 0  # booked slots given up because a 429 paused the bucket while the caller slept
    late_shifts: int = 0  # callers that woke too late and moved every later booking back instead
    late_rebooks: int = 0  # booked slots given up because the caller woke too late to send safely
    deadline_exceeded: int = 0  # acquires that raised RateLimitDeadlineExceeded
    database_retries: int = 0  # limiter statements run again after a deadlock, serialization or connection error

    def snapshot(self) -> LimiterCounters:
        return LimiterCounters(**{f.name: getattr(self, f.name) for f in fields(self)})

    def minus(self, earlier: LimiterCounters) -> LimiterCounters:
        return LimiterCounters(**{f.name: getattr(self, f.name) - getattr(earlier, f.name) for f in fields(self)})


def ip_bucket_key(egress_id: str) -> str:
    return f"ip:{egress_id}"


def account_bucket_key(account_id: int) -> str:
    return f"account:{account_id}"


def _finite_non_negative(value: float | None) -> float | None:
    if value is None or not math.isfinite(value) or value < 0:
        return None
    return float(value)


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
        *,
        guard_seconds: float = RATE_LIMIT_GUARD_SECONDS_DEFAULT,
        max_pause_seconds: float = RATE_LIMIT_MAX_PAUSE_SECONDS_DEFAULT,
        max_wait_seconds: float = RATE_LIMIT_SCHEDULE_CEILING_SECONDS,
    ) -> None:
        if not (math.isfinite(margin) and margin >= 0 and math.isfinite(guard_seconds) and guard_seconds >= 0):
            raise ValueError(f"margin and guard must be finite and >= 0, got {margin!r} and {guard_seconds!r}")
        if not 0 < max_pause_seconds <= RATE_LIMIT_SCHEDULE_CEILING_SECONDS:
            raise ValueError(f"max_pause_seconds must be in (0, {RATE_LIMIT_SCHEDULE_CEILING_SECONDS:g}], "
                             f"got {max_pause_seconds!r}")
        if not 0 < max_wait_seconds <= RATE_LIMIT_SCHEDULE_CEILING_SECONDS:
            raise ValueError(f"max_wait_seconds must be in (0, {RATE_LIMIT_SCHEDULE_CEILING_SECONDS:g}], "
                             f"got {max_wait_seconds!r}")
        self.engine = engine
        self.per_ip = per_ip
        self.per_account = per_account
        self.margin = margin
        self.guard_seconds = guard_seconds
        self.max_pause_seconds = max_pause_seconds
        self.max_wait_seconds = max_wait_seconds
        self.egress_id = egress_id
        self._sleep = sleep
        self._ensured: set[str] = set()
        self._lock = threading.Lock()
        self.counters = LimiterCounters()

    def interval_seconds(self, limit: RateLimit) -> float:
        """Spacing of one bucket: ``calls`` slots span the window stretched by the margin, plus the guard."""
        return (limit.period_seconds * (1.0 + self.margin) + self.guard_seconds) / limit.calls

    @property
    def late_tolerance_seconds(self) -> float:
        """How late after its slot a caller may still send: a quarter of the jitter the IP spacing absorbs
        (100 ms of the 400 ms that the default 3 % margin and 0.1 s guard give 10 s windows; a slot given up
        costs one spacing, a 429 a whole window, so the check leaves most of the tolerance to the network)."""
        return (self.interval_seconds(self.per_ip) * self.per_ip.calls - self.per_ip.period_seconds) / 4

    @property
    def default_pause_seconds(self) -> float:
        """A 429 without a usable Retry-After pauses for a full window (capped like any pause)."""
        return min(max(self.per_ip.period_seconds, self.per_account.period_seconds), self.max_pause_seconds)

    def _buckets_for(self, account_id: int | None) -> dict[str, float]:
        wanted = {ip_bucket_key(self.egress_id): self.interval_seconds(self.per_ip)}
        if account_id is not None:
            wanted[account_bucket_key(account_id)] = self.interval_seconds(self.per_account)
        return wanted

    def _execute(self, statement: Executable, parameters: Mapping[str, Any] | None = None,
                 sent_at: list[float] | None = None) -> Sequence[Row]:
        """Run one limiter statement as its own transaction, again after a transient database error;
        ``sent_at`` gets the ``time.monotonic()`` at which each attempt was sent.

        Safe to repeat: a statement that failed changed nothing. The one ambiguous case, a connection lost
        after the server committed, books a second slot (slower, never faster) or counts a 429 twice.
        """
        for attempt in range(1, _DATABASE_ATTEMPTS + 1):
            try:
                with _autocommit_engine(self.engine).connect() as connection:
                    if sent_at is not None:
                        sent_at.append(time.monotonic())
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

    def reserve(self, account_id: int | None, max_wait_seconds: float | None = None) -> Reservation:
        """One attempt at a slot no more than ``max_wait_seconds`` (default and at most the limiter's
        ``max_wait_seconds``) from now.

        Only the IP lane books slots ahead of time. An account that is itself over pace, or paused, does
        not book an IP slot in the future (that would block every other account behind it); it waits for
        its own bucket, then queues for the IP lane like everyone else. A slot beyond ``max_wait_seconds``
        is not booked either: the answer is "not granted" with a wait longer than asked.
        """
        wanted = self._buckets_for(account_id)
        max_wait = self.max_wait_seconds if max_wait_seconds is None else min(max_wait_seconds, self.max_wait_seconds)
        ip_window = self.per_ip.period_seconds + self.guard_seconds
        while True:
            self._ensure_rows(wanted)
            sent_at: list[float] = []
            (row,) = self._execute(_RESERVE, {
                "keys": sorted(wanted), "ip_key": ip_bucket_key(self.egress_id), "expected": len(wanted),
                "max_wait": max(max_wait, 0.0), "ceiling": RATE_LIMIT_SCHEDULE_CEILING_SECONDS,
                "history": 2 * ip_window,
            }, sent_at)
            if row.found == len(wanted):
                wait_seconds = float(row.wait_seconds)
                return Reservation(bool(row.granted), wait_seconds, str(row.held_by), float(row.slot_epoch),
                                   sent_at[-1] + max(float(row.before_clock_seconds), 0.0) + wait_seconds)
            with self._lock:  # a row was deleted under us (tests truncate): create it again
                self._ensured.difference_update(wanted)

    def try_reserve(self, account_id: int | None) -> tuple[bool, float]:
        """``reserve`` as ``(granted, wait_seconds)``."""
        reservation = self.reserve(account_id)
        return reservation.granted, reservation.wait_seconds

    def paused_seconds(self, account_id: int | None) -> float:
        """Seconds until a 429 pause on this call's buckets ends (0 when none is running)."""
        (row,) = self._execute(_PAUSED_SECONDS, {"keys": sorted(self._buckets_for(account_id)),
                                                 "ceiling": RATE_LIMIT_SCHEDULE_CEILING_SECONDS})
        return max(0.0, float(row[0] or 0.0))

    def _shift_for_late(self, account_id: int | None, slot_epoch: float, late_seconds: float) -> bool:
        wanted = self._buckets_for(account_id)
        (row,) = self._execute(_SHIFT_FOR_LATE, {
            "keys": sorted(wanted), "expected": len(wanted), "slot": slot_epoch, "late": late_seconds,
            "ip_key": ip_bucket_key(self.egress_id), "ip_calls": self.per_ip.calls,
            "account_calls": self.per_account.calls,
        })
        return bool(row.ok)

    def _give_up(self, account_id: int | None, wait_seconds: float, remaining: float, held_by: str) -> None:
        with self._lock:
            self.counters.deadline_exceeded += 1
        raise RateLimitDeadlineExceeded(account_id, wait_seconds, remaining, held_by)

    def acquire(self, account_id: int | None, deadline: float | None = None) -> float:
        """Block until a call for ``account_id`` may be sent; returns the seconds waited.

        ``deadline`` is a ``time.monotonic()`` instant (default ``max_wait_seconds`` from now). When the
        earliest slot lies beyond it, raises :class:`RateLimitDeadlineExceeded` at once instead of waiting,
        and books nothing.
        """
        if deadline is None:
            deadline = time.monotonic() + self.max_wait_seconds
        late_tolerance = self.late_tolerance_seconds
        waited = 0.0
        while True:
            remaining = deadline - time.monotonic()
            reservation = self.reserve(account_id, max(remaining, 0.0))
            answered_at = time.monotonic()
            wait_seconds = reservation.wait_seconds
            if not reservation.granted:
                if wait_seconds > remaining:
                    self._give_up(account_id, wait_seconds, remaining, reservation.held_by)
                if wait_seconds > 0:
                    self._sleep(wait_seconds)
                    waited += wait_seconds
                continue
            # A slot granted for now needs no pause check: a pause reported before the booking already put the
            # slot after it. Else check a little before the slot, so the round trip is slept off, not sent late.
            paused_for = 0.0
            if wait_seconds > 0:
                lead = min(wait_seconds, _PAUSE_CHECK_LEAD_SECONDS)
                self._sleep(wait_seconds - lead)
                waited += wait_seconds
                paused_for = self.paused_seconds(account_id)
            if paused_for > 0:
                # A 429 paused the bucket while this call slept towards its slot: give the slot up, wait the
                # pause out, then book again (after the pause, behind whoever booked meanwhile).
                with self._lock:
                    self.counters.held_by_pause += 1
                remaining = deadline - time.monotonic()
                if paused_for > remaining:
                    self._give_up(account_id, paused_for, remaining, "a 429 pause that began while it waited")
                self._sleep(paused_for)
                waited += paused_for
                continue
            slot_in = answered_at + wait_seconds - time.monotonic()  # never early: the latest the slot can be
            if slot_in > 0:
                self._sleep(slot_in)
            late = time.monotonic() - reservation.slot_monotonic  # never underestimated
            if late_tolerance > 0 and late > late_tolerance:
                # Woke too late: sent now, this call could share a server window with the call a full window
                # of slots after it. If that slot is not booked yet, move every later booking back (the lane
                # loses the lateness); else leave the slot unused (slower, never faster) and book again.
                budget = late + late_tolerance  # covers the shift's own round trip
                if (self._shift_for_late(account_id, reservation.slot_epoch, budget)
                        and time.monotonic() - reservation.slot_monotonic <= budget):
                    with self._lock:
                        self.counters.late_shifts += 1
                    break
                with self._lock:
                    self.counters.late_rebooks += 1
                continue
            break
        with self._lock:
            self.counters.grants += 1
            if waited > 0:
                self.counters.waits += 1
                self.counters.wait_seconds += waited
        return waited

    def pause_seconds_for(self, retry_after_seconds: float | None) -> float:
        """The pause a 429 sets: a finite non-negative Retry-After, else a full window; at most the maximum."""
        usable = _finite_non_negative(retry_after_seconds)
        return self.default_pause_seconds if usable is None else min(usable, self.max_pause_seconds)

    def report_throttled(self, account_id: int | None, pause_seconds: float | None = None,
                         sent_seconds_ago: float = 0.0) -> ThrottleVerdict:
        """The server answered 429 to a call sent ``sent_seconds_ago``: pause the account's bucket for
        ``pause_seconds`` (sanitised and capped, see :meth:`pause_seconds_for`), and the egress IP's too
        unless this deployment's own calls in that call's IP window were under the IP limit."""
        wanted = self._buckets_for(account_id)
        self._ensure_rows(wanted)
        pause = self.pause_seconds_for(pause_seconds)
        ip_window = self.per_ip.period_seconds + self.guard_seconds
        ago = min(_finite_non_negative(sent_seconds_ago) or 0.0, ip_window)
        (row,) = self._execute(_REPORT_THROTTLED, {
            "keys": sorted(wanted), "ip_key": ip_bucket_key(self.egress_id), "pause_seconds": pause,
            "ceiling": RATE_LIMIT_SCHEDULE_CEILING_SECONDS, "sent_seconds_ago": ago,
            "ip_window_seconds": ip_window, "ip_limit": self.per_ip.calls, "ip_only": account_id is None,
        })
        verdict = ThrottleVerdict(bool(row.ip_blamed), int(row.own_calls), pause)
        with self._lock:
            self.counters.throttled_429 += 1
            if verdict.ip_paused:
                self.counters.ip_pauses += 1
            else:
                self.counters.account_only_pauses += 1
        return verdict

    def bucket_totals(self) -> dict[str, dict[str, float]]:
        """All-time grants, wait seconds and 429s per bucket, as every process recorded them."""
        with self.engine.connect() as connection:
            rows = connection.execute(sa.select(buckets).order_by(buckets.c.bucket_key)).all()
        return {
            row.bucket_key: {"grants": row.grants, "wait_seconds": row.wait_seconds, "throttled": row.throttled}
            for row in rows
        }
