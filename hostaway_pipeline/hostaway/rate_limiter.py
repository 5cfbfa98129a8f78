"""The one place that decides when a Hostaway call may be sent: pacing shared through Postgres.

Hostaway allows 15 calls / 10 s per client IP and 20 / 10 s per account. Every call first acquires a slot
from two buckets, ``ip:<egress id>`` and ``account:<id>``, kept as rows of
``hostaway.rate_limit_buckets`` so every thread, process and machine on the same database shares them.
Each bucket is a GCRA with no burst: it holds the earliest moment the next call may go (``next_free_at``)
and the spacing between calls (``period * (1 + margin) / calls``). Acquiring locks both rows (in key
order, so never a deadlock), books the IP lane's next slot (once the account's own bucket allows it) and
moves both buckets forward by their spacing; the caller sleeps until its slot. The database's clock
decides, never a host's. Waiters queue on the row locks first come, first served, so accounts waiting at
once are served fairly. Even spacing means no window ever holds more than the limit, bursts never
cluster, and the limiter runs the budget at ``1 / (1 + margin)`` of the documented rate. A 429 from the
server pushes both buckets out by a full window.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, fields

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Engine

from hostaway_pipeline.settings import RateLimit
from hostaway_pipeline.storage.tables import rate_limit_buckets as buckets


@dataclass
class LimiterCounters:
    """What this process's calls cost in pacing; exposed as run metadata."""

    grants: int = 0
    waits: int = 0
    wait_seconds: float = 0.0
    throttled_429: int = 0

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

    def _ensure_rows(self, wanted: dict[str, float]) -> None:
        missing = {key: interval for key, interval in wanted.items() if key not in self._ensured}
        if not missing:
            return
        statement = pg_insert(buckets).values(
            [{"bucket_key": key, "interval_seconds": interval} for key, interval in sorted(missing.items())]
        )
        # The configured spacing wins: a process started with new limits updates the shared rows.
        statement = statement.on_conflict_do_update(
            index_elements=[buckets.c.bucket_key], set_={"interval_seconds": statement.excluded.interval_seconds}
        )
        with self.engine.begin() as connection:
            connection.execute(statement)
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
        self._ensure_rows(wanted)
        keys = sorted(wanted)
        ip_key = ip_bucket_key(self.egress_id)
        with self.engine.begin() as connection:
            rows = connection.execute(
                sa.select(buckets.c.bucket_key, buckets.c.next_free_at, sa.func.clock_timestamp().label("now"))
                .where(buckets.c.bucket_key.in_(keys))
                .order_by(buckets.c.bucket_key)
                .with_for_update()
            ).all()
            now = rows[0].now
            next_free = {row.bucket_key: row.next_free_at for row in rows}
            ip_free_at = max(now, next_free[ip_key])
            account_free_at = max((at for key, at in next_free.items() if key != ip_key), default=now)
            if account_free_at > ip_free_at:
                return False, (account_free_at - now).total_seconds()
            wait_seconds = (ip_free_at - now).total_seconds()
            connection.execute(
                sa.update(buckets)
                .where(buckets.c.bucket_key.in_(keys))
                .values(
                    next_free_at=sa.bindparam("granted_at", ip_free_at, type_=buckets.c.next_free_at.type)
                    + sa.func.make_interval(0, 0, 0, 0, 0, 0, buckets.c.interval_seconds),
                    grants=buckets.c.grants + 1,
                    wait_seconds=buckets.c.wait_seconds + wait_seconds,
                    updated_at=now,
                )
            )
        return True, wait_seconds

    def acquire(self, account_id: int | None) -> float:
        """Block until a call for ``account_id`` may be sent; returns the seconds waited."""
        waited = 0.0
        while True:
            granted, wait_seconds = self.try_reserve(account_id)
            if wait_seconds > 0:
                self._sleep(wait_seconds)
                waited += wait_seconds
            if granted:
                break
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
        with self.engine.begin() as connection:
            connection.execute(
                sa.update(buckets)
                .where(buckets.c.bucket_key.in_(sorted(wanted)))
                .values(
                    next_free_at=sa.func.greatest(
                        buckets.c.next_free_at,
                        sa.func.clock_timestamp() + sa.func.make_interval(0, 0, 0, 0, 0, 0, pause),
                    ),
                    throttled=buckets.c.throttled + 1,
                )
            )
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
