"""The Postgres-backed limiter: even spacing per bucket, both buckets honoured, 429 pauses, shared state,
no deadlocks, fairness between accounts."""

from __future__ import annotations

import threading
import time
from collections import Counter

import requests
import sqlalchemy as sa

from hostaway_pipeline.hostaway.rate_limiter import RateLimiter, account_bucket_key, ip_bucket_key
from hostaway_pipeline.settings import RateLimit
from hostaway_pipeline.simulator.server import SimulatorServer
from hostaway_pipeline.storage.tables import rate_limit_buckets


def limiter(engine, ip: str = "15/10s", account: str = "20/10s", margin: float = 0.0, egress: str = "t") -> RateLimiter:
    return RateLimiter(engine, RateLimit.parse(ip, "ip"), RateLimit.parse(account, "account"), margin, egress,
                       sleep=lambda seconds: None)


def reserve(pacing: RateLimiter, account_id: int | None) -> float:
    """Seconds from now until the slot this call books (no real sleeping: the test reads the schedule)."""
    granted, wait = pacing.try_reserve(account_id)
    assert granted
    return wait


def test_reservations_on_one_ip_are_spaced_by_period_over_calls(engine):
    pacing = limiter(engine, ip="10/1s", account="1000/1s")
    waits = [reserve(pacing, None) for _ in range(5)]
    assert waits[0] < 0.05
    for earlier, later in zip(waits, waits[1:], strict=False):
        assert 0.09 < later - earlier < 0.11


def test_an_account_over_its_own_pace_waits_without_booking_the_shared_ip_lane(engine):
    pacing = limiter(engine, ip="1000/1s", account="4/1s")
    assert reserve(pacing, 7) < 0.05
    granted, wait = pacing.try_reserve(7)
    assert not granted and 0.2 < wait < 0.26
    assert reserve(pacing, 8) < 0.05  # another account is not held up by account 7's pace


def test_acquire_waits_for_the_account_bucket_then_takes_an_ip_slot(engine):
    pacing = RateLimiter(engine, RateLimit.parse("1000/1s", "ip"), RateLimit.parse("4/1s", "account"), 0.0, "t")
    pacing.acquire(7)
    waited = pacing.acquire(7)  # really sleeps about 0.25 s
    assert 0.2 < waited < 0.3
    assert pacing.counters.grants == 2 and pacing.counters.waits == 1


def test_the_margin_widens_the_spacing(engine):
    pacing = limiter(engine, ip="10/1s", account="1000/1s", margin=0.5)
    waits = [reserve(pacing, None) for _ in range(3)]
    assert 0.14 < waits[2] - waits[1] < 0.16


def test_a_429_pauses_both_buckets_for_the_given_time(engine):
    pacing = limiter(engine, ip="1000/1s", account="1000/1s")
    pacing.report_throttled(account_id=5, pause_seconds=2.0)
    assert 1.9 < reserve(pacing, 5) < 2.1
    assert pacing.counters.throttled_429 == 1
    with engine.connect() as connection:
        rows = connection.execute(sa.select(rate_limit_buckets.c.bucket_key, rate_limit_buckets.c.throttled))
        throttled = dict(rows.all())
    assert throttled == {ip_bucket_key("t"): 1, account_bucket_key(5): 1}


def test_limiters_in_different_threads_share_one_schedule(engine):
    """Many threads (each with its own limiter, as separate processes would) book 40 distinct slots:
    the shared lane ends exactly 40 spacings after the first booking, so no slot was handed out twice."""
    def database_now() -> float:
        with engine.connect() as connection:
            return float(connection.execute(sa.select(sa.func.extract("epoch", sa.func.clock_timestamp()))).scalar())

    def worker() -> None:
        own = limiter(engine, ip="20/1s", account="1000/1s")
        for _ in range(10):
            reserve(own, 1)

    started = database_now()
    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    finished = database_now()
    with engine.connect() as connection:
        lane_free_at = connection.execute(
            sa.select(sa.func.extract("epoch", rate_limit_buckets.c.next_free_at))
            .where(rate_limit_buckets.c.bucket_key == ip_bucket_key("t"))
        ).scalar()
    booked_seconds = float(lane_free_at) - started
    assert 40 * 0.05 <= booked_seconds <= 40 * 0.05 + (finished - started)
    with engine.connect() as connection:
        grants = connection.execute(
            sa.select(rate_limit_buckets.c.grants).where(rate_limit_buckets.c.bucket_key == ip_bucket_key("t"))
        ).scalar()
    assert grants == 40


def test_reserving_and_reporting_429s_at_once_never_deadlocks(engine):
    """Threads reserving and threads reporting 429s on the same account hammer the same two rows for a few
    seconds: every path locks them in one order, so Postgres never has to break a deadlock (and no retry of
    a database error was needed to hide one). The IP row is created first, so heap order (the order a plain
    ``UPDATE ... WHERE bucket_key IN (...)`` locks rows in) is the opposite of key order from the start."""
    limiter(engine).acquire(None)
    stop = threading.Event()
    errors: list[BaseException] = []
    limiters: list[RateLimiter] = []

    def hammer(work) -> None:
        own = limiter(engine, ip="2000/1s", account="2000/1s")  # each thread its own, as processes would
        limiters.append(own)
        try:
            while not stop.is_set():
                work(own)
        except BaseException as error:  # collected and asserted below
            errors.append(error)
            stop.set()

    threads = [threading.Thread(target=hammer, args=(lambda own: own.acquire(3),)) for _ in range(4)]
    threads += [threading.Thread(target=hammer, args=(lambda own: own.report_throttled(3, 0.001),))
                for _ in range(2)]
    for thread in threads:
        thread.start()
    stop.wait(4.0)
    stop.set()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sum(own.counters.database_retries for own in limiters) == 0
    totals = limiters[0].bucket_totals()[account_bucket_key(3)]
    assert totals["grants"] > 0 and totals["throttled"] > 0


def test_a_deadlock_the_limiter_loses_is_retried_not_raised(engine):
    """Another transaction holds the IP row while the limiter's reservation holds the account row and waits
    for it, then asks for the account row: Postgres breaks the deadlock by failing the limiter's statement
    (the other side checks only after 30 s), and the limiter runs it again instead of failing the step."""
    pacing = limiter(engine, ip="1000/1s", account="1000/1s")
    pacing.acquire(9)  # the rows exist
    errors: list[BaseException] = []

    def reserve_in_thread() -> None:
        try:
            pacing.acquire(9)
        except BaseException as error:  # collected and asserted below
            errors.append(error)

    def someone_waits_for_a_lock() -> bool:
        with engine.connect() as observer:  # a new transaction each time: pg_stat_activity is read once per one
            return bool(observer.execute(sa.text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )).scalar())

    reserving = threading.Thread(target=reserve_in_thread)
    lock_row = sa.select(rate_limit_buckets.c.bucket_key).with_for_update()
    with engine.connect() as other, other.begin():
        other.execute(sa.text("SET LOCAL deadlock_timeout = '30s'"))
        other.execute(lock_row.where(rate_limit_buckets.c.bucket_key == ip_bucket_key("t")))
        reserving.start()
        deadline = time.monotonic() + 10
        while not someone_waits_for_a_lock() and time.monotonic() < deadline:
            time.sleep(0.01)
        other.execute(lock_row.where(rate_limit_buckets.c.bucket_key == account_bucket_key(9)))
    reserving.join(timeout=30)
    assert errors == []
    assert pacing.counters.grants == 2 and pacing.counters.database_retries == 1


def test_a_429_pause_holds_back_calls_already_booked_into_it(engine):
    """Six threads book IP slots 0.2 s apart and sleep towards them; then a 429 is reported through another
    limiter (as another process would, knowing only what Postgres knows) with a 1 s pause. The stand-in
    records no call inside the pause: the calls booked into it go after it, booked again one spacing apart."""
    interval, pause = 0.2, 1.0
    egress = "pause-test"
    pacing = RateLimiter(engine, RateLimit.parse("5/1s", "ip"), RateLimit.parse("100/1s", "account"), 0.0, egress)
    reporter = RateLimiter(engine, RateLimit.parse("5/1s", "ip"), RateLimit.parse("100/1s", "account"), 0.0, egress)
    errors: list[BaseException] = []
    with SimulatorServer(accounts={1: "empty"}, seed=1, time_scale=10.0) as simulator:  # stand-in: 15 calls/s

        def call() -> None:
            try:
                pacing.acquire(1)
                # No token: the stand-in answers 403 but logs the call with its time like any other.
                requests.get(f"{simulator.base_url}/listings", timeout=10)
            except BaseException as error:  # collected and asserted below
                errors.append(error)

        threads = [threading.Thread(target=call) for _ in range(6)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not (
            reporter.bucket_totals().get(ip_bucket_key(egress), {}).get("grants") == 6 and simulator.calls()
        ):
            time.sleep(0.005)  # every thread holds a slot, and the one booked for now has been sent
        reported_from = time.monotonic()
        reporter.report_throttled(1, pause)
        reported_at = time.monotonic()
        for thread in threads:
            thread.join(timeout=30)
        sent = sorted(call["time"] for call in simulator.calls())
    assert errors == [] and len(sent) == 6
    pause_ends = reported_from + pause
    # A call that passed its check just before the pause was committed may reach the stand-in just after.
    assert [moment for moment in sent if reported_at + 0.05 < moment < pause_ends] == []
    held_back = [moment for moment in sent if moment >= pause_ends]
    assert len(held_back) >= 3 and pacing.counters.held_by_pause == len(held_back)
    assert min(later - earlier for earlier, later in zip(held_back, held_back[1:], strict=False)) > 0.7 * interval


def test_accounts_waiting_at_once_get_equal_shares_of_a_tight_ip_lane(engine):
    """Two accounts, three waiting threads each, one IP lane far tighter than either account's own limit:
    over the contention interval each account gets roughly half the grants (counted, not timed)."""
    grants: Counter[int] = Counter()
    counting = threading.Lock()
    stop = threading.Event()
    errors: list[BaseException] = []

    def worker(account_id: int) -> None:
        own = RateLimiter(engine, RateLimit.parse("40/1s", "ip"), RateLimit.parse("1000/1s", "account"), 0.0,
                          "fair-test")
        try:
            while not stop.is_set():
                own.acquire(account_id)
                with counting:
                    grants[account_id] += 1
        except BaseException as error:  # collected and asserted below
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(account,)) for account in (21, 22) for _ in range(3)]
    for thread in threads:
        thread.start()
    time.sleep(3.0)
    stop.set()
    for thread in threads:
        thread.join(timeout=10)
    assert errors == []
    total = grants[21] + grants[22]
    assert total >= 40
    assert 0.3 <= grants[21] / total <= 0.7, grants
