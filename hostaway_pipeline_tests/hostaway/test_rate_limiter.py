"""The Postgres-backed limiter: even spacing per bucket (margin and absolute guard), both buckets honoured,
429 pauses capped and blamed on the right bucket, deadlines, shared state, no deadlocks, fairness.

Spacing is read from the schedule the database booked (``recent_slots``, exact timestamps), never from how
long something took: these machines are loaded, and timing claims live in the benchmarks."""

from __future__ import annotations

import math
import threading
import time
from collections import Counter

import pytest
import requests
import sqlalchemy as sa

from hostaway_pipeline.hostaway.rate_limiter import (
    RateLimitDeadlineExceeded,
    RateLimiter,
    account_bucket_key,
    ip_bucket_key,
)
from hostaway_pipeline.settings import RATE_LIMIT_SCHEDULE_CEILING_SECONDS, RateLimit
from hostaway_pipeline.simulator.server import SimulatorServer
from hostaway_pipeline.storage.tables import rate_limit_buckets

# Slots at least this far apart are far enough apart that no statement on a loaded machine takes as long.
LONG = 10.0


def limiter(engine, ip: str = "15/10s", account: str = "20/10s", margin: float = 0.0, egress: str = "t",
            guard: float = 0.0, **options) -> RateLimiter:
    return RateLimiter(engine, RateLimit.parse(ip, "ip"), RateLimit.parse(account, "account"), margin, egress,
                       sleep=lambda seconds: None, guard_seconds=guard, **options)


def reserve(pacing: RateLimiter, account_id: int | None) -> float:
    """Seconds from now until the slot this call books (no real sleeping: the test reads the schedule)."""
    granted, wait = pacing.try_reserve(account_id)
    assert granted
    return wait


def booked_slots(engine, egress: str = "t") -> list[float]:
    """The IP lane's booked slots (epoch seconds, database clock), oldest first."""
    with engine.connect() as connection:
        return [float(moment) for (moment,) in connection.execute(sa.text(
            "SELECT extract(epoch FROM slot) FROM hostaway.rate_limit_buckets, unnest(recent_slots) AS slot "
            "WHERE bucket_key = :key ORDER BY slot"), {"key": ip_bucket_key(egress)})]


def gaps(moments: list[float]) -> list[float]:
    return [later - earlier for earlier, later in zip(moments, moments[1:], strict=False)]


def bucket_row(engine, key: str):
    with engine.connect() as connection:
        return connection.execute(sa.text(
            "SELECT grants, throttled, extract(epoch FROM paused_until - clock_timestamp()) AS paused_for, "
            "extract(epoch FROM next_free_at - clock_timestamp()) AS free_in "
            "FROM hostaway.rate_limit_buckets WHERE bucket_key = :key"), {"key": key}).one()


# ---- spacing ---------------------------------------------------------------------------------------------


def test_reservations_on_one_ip_are_spaced_by_period_over_calls(engine):
    pacing = limiter(engine, ip=f"3/{3 * LONG:g}s", account="1000/1s")
    waits = [reserve(pacing, None) for _ in range(5)]
    assert waits[0] < LONG / 2 and waits == sorted(waits)  # the first goes now, each later one after it
    assert gaps(booked_slots(engine)) == pytest.approx([LONG] * 4, abs=1e-6)


def test_the_margin_widens_the_spacing(engine):
    pacing = limiter(engine, ip=f"1/{LONG:g}s", account="1000/1s", margin=0.5)
    for _ in range(3):
        reserve(pacing, None)
    assert gaps(booked_slots(engine)) == pytest.approx([1.5 * LONG] * 2, abs=1e-6)


def test_the_guard_adds_an_absolute_time_to_every_window_on_top_of_the_margin(engine):
    """``calls`` slots span ``period * (1 + margin) + guard``: 3 calls per 30 s, 10 % margin, 3 s guard make
    12 s slots, where the margin alone makes 11 s. A caller may be late by a quarter of the stretch."""
    pacing = limiter(engine, ip=f"3/{3 * LONG:g}s", account="1000/1s", margin=0.1, guard=3.0)
    for _ in range(3):
        reserve(pacing, None)
    assert gaps(booked_slots(engine)) == pytest.approx([(33.0 + 3.0) / 3] * 2, abs=1e-6)
    assert pacing.late_tolerance_seconds == pytest.approx((3.0 + 3.0) / 4)
    assert limiter(engine, ip="15/10s", guard=0.0).late_tolerance_seconds == 0.0  # no stretch, no lateness check


def test_an_account_over_its_own_pace_waits_without_booking_the_shared_ip_lane(engine):
    pacing = limiter(engine, ip="1000/1s", account=f"1/{2 * LONG:g}s")
    assert reserve(pacing, 7) < LONG / 2
    granted, wait = pacing.try_reserve(7)
    assert not granted and LONG < wait <= 2 * LONG
    assert len(booked_slots(engine)) == 1  # account 7's refused try took nothing from the IP lane
    assert reserve(pacing, 8) < LONG / 2  # another account is not held up by account 7's pace
    assert len(booked_slots(engine)) == 2


def test_acquire_waits_for_the_account_bucket_then_takes_an_ip_slot(engine):
    pacing = RateLimiter(engine, RateLimit.parse("1000/1s", "ip"), RateLimit.parse("2/1s", "account"), 0.0, "t",
                         guard_seconds=0.0)
    assert pacing.acquire(7) == 0.0
    waited = pacing.acquire(7)  # really sleeps, at most one account spacing (0.5 s)
    assert 0.0 < waited <= 0.5 + 1e-3
    first, second = booked_slots(engine)
    assert second - first >= 0.5 - 1e-3  # the IP slot came only once the account's own bucket allowed it
    assert pacing.counters.grants == 2 and pacing.counters.waits == 1


# ---- 429s: capped pauses, blamed on the right bucket -----------------------------------------------------


def test_a_429_while_own_calls_are_under_the_ip_limit_pauses_only_that_account(engine):
    """Two calls in the IP window, limit 15: the IP budget cannot have been exceeded by this deployment, so
    the 429 came from the account's limit (shared with the customer's other integrations). Account 5 waits
    out the pause; account 6, on the same egress IP, is not held at all."""
    pacing = limiter(engine, ip="15/10s", account="20/10s")
    waits = [reserve(pacing, 5), reserve(pacing, 6)]
    time.sleep(max(waits) + 0.05)  # both slots have come (only past slots count: those calls were sent)
    verdict = pacing.report_throttled(account_id=5, pause_seconds=60.0)
    assert not verdict.ip_paused and verdict.own_calls_in_ip_window == 2
    granted, wait = pacing.try_reserve(5)
    assert not granted and 50.0 < wait <= 60.0
    assert reserve(pacing, 6) < 5.0
    ip, account = bucket_row(engine, ip_bucket_key("t")), bucket_row(engine, account_bucket_key(5))
    assert ip.paused_for is None and 50.0 < account.paused_for <= 60.0
    assert (ip.throttled, account.throttled) == (1, 1)  # both count the 429; only the account is paused
    assert pacing.counters.account_only_pauses == 1 and pacing.counters.ip_pauses == 0


def test_a_429_when_own_calls_filled_the_ip_window_pauses_the_ip_and_the_account(engine):
    """Here this deployment's own calls did fill the IP window (a process paced the lane at 1000 calls / 10 s
    while the limit is 4): the IP budget is what was exceeded, so every account on the egress waits."""
    loose = limiter(engine, ip="1000/10s", account="1000/10s")
    waits = [reserve(loose, 5) for _ in range(6)]
    time.sleep(max(waits) + 0.05)
    strict = limiter(engine, ip="4/10s", account="1000/10s")
    verdict = strict.report_throttled(account_id=5, pause_seconds=60.0)
    assert verdict.ip_paused and verdict.own_calls_in_ip_window == 6
    for account_id, latest in ((5, 60.0), (6, 60.0 + 2.5)):  # the lane resumes after the pause, 2.5 s slots
        granted, wait = strict.try_reserve(account_id)
        assert granted and 50.0 < wait <= latest + 1e-3
    assert strict.counters.ip_pauses == 1


def test_a_429_on_a_call_without_an_account_pauses_the_ip(engine):
    pacing = limiter(engine)
    assert pacing.report_throttled(account_id=None, pause_seconds=60.0).ip_paused
    granted, wait = pacing.try_reserve(9)
    assert granted and 50.0 < wait <= 60.0


@pytest.mark.parametrize(("pause", "expected"), [
    (86400.0, 120.0), (1e12, 120.0),  # capped at the maximum pause
    (math.nan, 10.0), (math.inf, 10.0), (-5.0, 10.0), (None, 10.0),  # not a finite pause: a full window
    (3.0, 3.0),
], ids=["a-day", "absurd", "nan", "infinite", "negative", "absent", "sane"])
def test_a_429_pause_is_capped_at_the_maximum_and_nonsense_falls_back_to_a_window(engine, pause, expected):
    pacing = limiter(engine, ip="15/10s", account="20/10s")
    assert pacing.max_pause_seconds == 120.0
    verdict = pacing.report_throttled(account_id=5, pause_seconds=pause)
    assert verdict.pause_seconds == expected
    assert expected - 5.0 < bucket_row(engine, account_bucket_key(5)).paused_for <= expected


def test_a_pause_or_booking_stored_beyond_the_ceiling_is_ignored_and_overwritten(engine):
    """Earlier versions stored ``Retry-After: 86400`` or a date in 2999 as is, on both buckets. The limiter
    does not honour anything further ahead than it ever schedules: the next call goes now, and the rows
    are healed."""
    pacing = limiter(engine)
    reserve(pacing, 5)
    with engine.begin() as connection:
        connection.execute(sa.text(
            "UPDATE hostaway.rate_limit_buckets SET paused_until = '2999-01-01', next_free_at = '2999-01-01'"))
    assert reserve(pacing, 5) < 5.0
    assert pacing.paused_seconds(5) == 0.0
    for key in (ip_bucket_key("t"), account_bucket_key(5)):
        row = bucket_row(engine, key)
        assert row.paused_for is None and row.free_in <= RATE_LIMIT_SCHEDULE_CEILING_SECONDS


# ---- deadlines ------------------------------------------------------------------------------------------


def test_acquire_with_a_deadline_raises_a_clear_error_instead_of_waiting_and_books_nothing(engine):
    pacing = limiter(engine)
    reserve(pacing, 7)
    pacing.report_throttled(7, 60.0)  # only account 7 is paused
    started = time.monotonic()
    with pytest.raises(RateLimitDeadlineExceeded) as raised:
        pacing.acquire(7, deadline=time.monotonic() + 1.0)
    assert time.monotonic() - started < 30.0  # failed when it knew, not after waiting
    message = str(raised.value)
    assert "account 7" in message and "paused by a 429" in message and "deadline" in message
    assert 50.0 < raised.value.wait_seconds <= 60.0
    assert len(booked_slots(engine)) == 1 and pacing.counters.deadline_exceeded == 1


def test_a_slot_past_the_deadline_is_not_booked_and_the_ip_queue_is_named(engine):
    pacing = limiter(engine, ip=f"1/{3 * LONG:g}s", account="1000/1s")
    reserve(pacing, 1)  # the lane's next slot is 30 s away
    with pytest.raises(RateLimitDeadlineExceeded, match="egress IP's queue"):
        pacing.acquire(2, deadline=time.monotonic() + LONG)
    assert len(booked_slots(engine)) == 1  # the refused caller took no slot from the queue


def test_acquire_without_a_deadline_gives_up_after_the_limiters_maximum_wait(engine):
    pacing = limiter(engine, max_wait_seconds=1.0)
    pacing.report_throttled(None, 60.0)
    with pytest.raises(RateLimitDeadlineExceeded, match="egress IP is paused by a 429"):
        pacing.acquire(3)


# ---- lateness --------------------------------------------------------------------------------------------


def _oversleeping(seconds_late: float, before_oversleeping=lambda: None):
    """A sleep that wakes ``seconds_late`` late the first time it is called (a descheduled thread)."""
    pending = [seconds_late]

    def sleep(seconds: float) -> None:
        if pending:
            before_oversleeping()
        time.sleep(seconds + (pending.pop() if pending else 0.0))

    return sleep


def _lane_free_at(engine, egress: str = "t") -> float:
    with engine.connect() as connection:
        return float(connection.execute(sa.text(
            "SELECT extract(epoch FROM next_free_at) FROM hostaway.rate_limit_buckets WHERE bucket_key = :key"),
            {"key": ip_bucket_key(egress)}).scalar())


def test_a_caller_that_wakes_too_late_moves_later_bookings_back_when_none_is_a_window_ahead(engine):
    """A thread that oversleeps its slot by more than the late tolerance would share a server window with the
    call a full window of slots later. Nobody has booked that far yet, so it sends and every later booking
    moves back by its lateness: the next slot is at least one spacing after the late call's real send."""
    pacing = RateLimiter(engine, RateLimit.parse("2/1s", "ip"), RateLimit.parse("1000/1s", "account"), 0.0, "t",
                         sleep=_oversleeping(0.5), guard_seconds=0.2)  # 0.6 s slots, tolerance 0.05 s
    pacing.acquire(1)  # goes now, without sleeping
    pacing.acquire(1)  # booked 0.6 s ahead, wakes 0.5 s late: shifts the lane, sends
    assert pacing.counters.late_shifts == 1 and pacing.counters.late_rebooks == 0
    assert pacing.counters.grants == 2
    first, second = booked_slots(engine)
    assert _lane_free_at(engine) - second >= 0.6 + 0.5  # one spacing after the late send, not the slot


def test_a_caller_that_wakes_too_late_gives_its_slot_up_when_the_lane_is_booked_a_window_ahead(engine):
    """Same lateness, but while it overslept two more calls booked the lane a full window (2 slots) past its
    slot: moving them is not possible, so it sends nothing in its slot and books again behind them."""
    other = limiter(engine, ip="2/1s", account="1000/1s", guard=0.2)
    pacing = RateLimiter(engine, RateLimit.parse("2/1s", "ip"), RateLimit.parse("1000/1s", "account"), 0.0, "t",
                         sleep=_oversleeping(0.5, lambda: [reserve(other, 2) for _ in range(2)]),
                         guard_seconds=0.2)
    pacing.acquire(1)
    pacing.acquire(1)
    assert pacing.counters.late_rebooks == 1 and pacing.counters.late_shifts == 0
    assert pacing.counters.grants == 2
    assert len(booked_slots(engine)) == 5  # its first slot stayed empty; it went after the other two
    assert min(gaps(booked_slots(engine))) >= 0.6 - 1e-6


# ---- sharing, deadlocks, pauses in flight, fairness --------------------------------------------------------


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
    assert min(gaps(booked_slots(engine))) >= 0.05 - 1e-6


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
    limiter (as another process would, knowing only what Postgres knows) with a 1 s pause (on account 1's
bucket: one call in the IP window is far under the limit). The stand-in
    records no call inside the pause: the calls booked into it go after it, booked again one spacing apart."""
    interval, pause = 0.2, 1.0
    egress = "pause-test"
    pacing = RateLimiter(engine, RateLimit.parse("5/1s", "ip"), RateLimit.parse("100/1s", "account"), 0.0, egress,
                         guard_seconds=0.0)
    reporter = RateLimiter(engine, RateLimit.parse("5/1s", "ip"), RateLimit.parse("100/1s", "account"), 0.0, egress,
                           guard_seconds=0.0)
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
                          "fair-test", guard_seconds=0.0)
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
