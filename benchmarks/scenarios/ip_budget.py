"""``ip_budget``: how much of the per-IP budget a full sync uses, and that pacing alone earns no 429, with jitter.

Two runs against the strict stand-in, each on a fresh database and a fresh stand-in:

1. one seed-size account read in full (every call a first full sync makes: token, listings, reservations,
   conversations, each conversation's messages on 4 threads);
2. three seed-size accounts read in full at once, one OS process each (as three Dagster run workers or
   machines would), sharing only the Postgres limiter.

Every request waits a random 0 to ``JITTER_SECONDS_AT_REAL_SCALE / K`` (uniform, after its slot is granted)
before it is sent: network jitter the client cannot see. The limiter runs with the production margin (0.03) and the
production guard time-scaled (0.1 s / K). The stand-in's call log is the judge: 429s it served, calls,
the most calls in any window, and the headroom: the shortest time between an accepted call and the one
15 accepted calls after it, minus the window (above 0, no window can hold a 16th call). Utilization =
calls / (wall seconds x per-IP rate), wall time from before the first token request to the last
response. Reads only: the Dagster job's writes and step hand-offs are measured by ``full_sync``.
"""

from __future__ import annotations

import random
import threading
import time
from typing import Any

import requests

from benchmarks.account_processes import read_in_processes
from benchmarks.account_read import read_account
from benchmarks.report import ScenarioResult, Target
from benchmarks.scenarios.options import BenchOptions
from benchmarks.stand_in import StandInProcess
from benchmarks.wiring import BenchTarget, fresh_database, server_url
from hostaway_pipeline.defs.resources import HostawayApiResource
from hostaway_pipeline.hostaway.client import HostawayClient
from hostaway_pipeline.hostaway.retry_policy import RetryPolicy
from hostaway_pipeline.hostaway.transport import HostawayTransport

ONE_ACCOUNT = 50001
THREE_ACCOUNTS = (50011, 50012, 50013)
# Network jitter against the real API's 10 s windows, time-scaled like the windows (10 ms at time scale 10).
JITTER_SECONDS_AT_REAL_SCALE = 0.1


class JitterySession(requests.Session):
    """A ``requests.Session`` that holds every request back a random 0 to ``jitter`` seconds before sending."""

    def __init__(self, jitter: float, seed: int) -> None:
        super().__init__()
        self.jitter = jitter
        self._rng = random.Random(seed)
        self._rng_lock = threading.Lock()

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        with self._rng_lock:
            delay = self._rng.uniform(0.0, self.jitter)
        time.sleep(delay)
        return super().send(request, **kwargs)


class _JitteryApi:
    """The API resource's clients, over a jittery session."""

    def __init__(self, api: HostawayApiResource, jitter: float, seed: int) -> None:
        self.api = api
        limiter = api.rate_limiter.limiter
        self.limiter = limiter
        self.transport = HostawayTransport(
            api.base_url or api.warehouse.settings.api_base_url, limiter,
            RetryPolicy(max_attempts=api.max_attempts, max_total_seconds=api.max_retry_seconds),
            timeout_seconds=(min(10.0, api.request_timeout_seconds), api.request_timeout_seconds),
            session=JitterySession(jitter, seed),
        )

    def client_for(self, account_id: int) -> HostawayClient:
        registry = self.api.warehouse.accounts
        return HostawayClient(account_id, self.transport, self.api.token_store,
                              lambda: registry.client_secret(account_id), self.api.message_workers)


def _read(target: BenchTarget, account_id: int, seed: int) -> dict[str, Any]:
    jittery = _JitteryApi(target.api_resource(), JITTER_SECONDS_AT_REAL_SCALE / target.time_scale, seed)
    read = read_account(jittery, account_id).as_dict()
    limiter = jittery.limiter
    read["limiter"] = {"spacing": {"margin": limiter.margin, "guard_seconds": limiter.guard_seconds,
                                   "ip_interval_seconds": limiter.interval_seconds(limiter.per_ip)},
                       "late_shifts": jittery.limiter.counters.late_shifts,
                       "late_rebooks": jittery.limiter.counters.late_rebooks,
                       "held_by_pause": jittery.limiter.counters.held_by_pause,
                       "account_only_pauses": jittery.limiter.counters.account_only_pauses,
                       "ip_pauses": jittery.limiter.counters.ip_pauses}
    return read


def _read_with_own_seed(target: BenchTarget, account_id: int) -> dict[str, Any]:
    return _read(target, account_id, seed=account_id)


def tightest_span_seconds(calls: list[dict[str, Any]], limit: int = 15) -> float | None:
    """The shortest time between an accepted call and the accepted call ``limit`` after it, as the stand-in
    saw them: a window of W seconds never holds more than ``limit`` calls while this stays above W."""
    times = sorted(call["time"] for call in calls if call["accepted"])
    return min((later - earlier for earlier, later in zip(times, times[limit:], strict=False)), default=None)


def _headroom_ms(calls: list[dict[str, Any]], options: BenchOptions) -> float:
    span = tightest_span_seconds(calls)
    return round(((span or 0.0) - 10.0 / options.time_scale) * 1000, 1)


def _one_account(options: BenchOptions) -> tuple[dict[str, Any], dict[str, Any]]:
    with fresh_database(server_url(options.database_server_url)) as database_url, \
            StandInProcess({ONE_ACCOUNT: "seed"}, seed=options.seed, time_scale=options.time_scale) as stand_in:
        target = BenchTarget(database_url, stand_in.base_url, options.time_scale)
        target.api_resource().warehouse.accounts.add(ONE_ACCOUNT, stand_in.client_secret(ONE_ACCOUNT),
                                                     name="benchmark")
        read = _read(target, ONE_ACCOUNT, seed=options.seed)
        stats = stand_in.stats()
        stats["headroom_ms"] = _headroom_ms(stand_in.calls(), options)
        return read, stats


def _three_accounts(options: BenchOptions) -> tuple[list[dict[str, Any]], dict[str, Any], float]:
    with fresh_database(server_url(options.database_server_url)) as database_url, \
            StandInProcess(dict.fromkeys(THREE_ACCOUNTS, "seed"), seed=options.seed,
                           time_scale=options.time_scale) as stand_in:
        target = BenchTarget(database_url, stand_in.base_url, options.time_scale)
        registry = target.api_resource().warehouse.accounts
        for account_id in THREE_ACCOUNTS:
            registry.add(account_id, stand_in.client_secret(account_id), name="benchmark")
        reads, began = read_in_processes(target, THREE_ACCOUNTS, _read_with_own_seed)
        stats = stand_in.stats()
        stats["headroom_ms"] = _headroom_ms(stand_in.calls(), options)
        return reads, stats, began


def run(options: BenchOptions) -> ScenarioResult:
    one, one_stats = _one_account(options)
    three, three_stats, three_began = _three_accounts(options)

    rate = options.ip_calls_per_second
    one_seconds = one["finished"] - one["started"]
    three_seconds = max(read["finished"] for read in three) - three_began
    one_calls, three_calls = int(one_stats["total_calls"]), int(three_stats["total_calls"])
    jitter_ms = JITTER_SECONDS_AT_REAL_SCALE * 1000 / options.time_scale
    result = ScenarioResult(
        "ip_budget", f"full reads (every call of a full sync) of 1 and of 3 seed-size accounts at once, "
                     f"0-{jitter_ms:g} ms network jitter per call, time scale {options.time_scale:g}x "
                     f"({rate:g} calls/s per IP)",
    )
    result.figures = {
        "one_account_calls": one_calls,
        "one_account_seconds": round(one_seconds, 2),
        "one_account_utilization": round(one_calls / (one_seconds * rate), 3),
        "one_account_served_429": int(one_stats["served_429"]),
        "one_account_max_calls_in_a_window": int(one_stats["max_calls_in_any_window_by_ip"]),
        "one_account_headroom_ms": one_stats["headroom_ms"],
        "three_accounts_calls": three_calls,
        "three_accounts_seconds": round(three_seconds, 2),
        "three_accounts_utilization": round(three_calls / (three_seconds * rate), 3),
        "three_accounts_served_429": int(three_stats["served_429"]),
        "three_accounts_max_calls_in_a_window": int(three_stats["max_calls_in_any_window_by_ip"]),
        "three_accounts_headroom_ms": three_stats["headroom_ms"],
        "rows_missing": one["missing"] + sum(read["missing"] for read in three),
        "conversations_failed": one["failed_conversations"] + sum(read["failed_conversations"] for read in three),
        "late_shifts": one["limiter"]["late_shifts"] + sum(read["limiter"]["late_shifts"] for read in three),
        "late_rebooks": one["limiter"]["late_rebooks"] + sum(read["limiter"]["late_rebooks"] for read in three),
    }
    result.targets = [
        Target("one_account_utilization", ">=", 0.95),
        Target("one_account_served_429", "==", 0),
        Target("one_account_max_calls_in_a_window", "<=", 15),
        Target("three_accounts_utilization", ">=", 0.95),
        Target("three_accounts_served_429", "==", 0),
        Target("three_accounts_max_calls_in_a_window", "<=", 15),
        Target("rows_missing", "==", 0),
        Target("conversations_failed", "==", 0),
    ]
    result.details = {
        "jitter_seconds": JITTER_SECONDS_AT_REAL_SCALE / options.time_scale,
        "spacing": one["limiter"]["spacing"],
        "one_account": {"read": one, "stand_in_calls_by_endpoint": one_stats["by_endpoint"]},
        "three_accounts": {"reads": three, "stand_in_calls_by_account": three_stats["by_account"]},
    }
    return result
