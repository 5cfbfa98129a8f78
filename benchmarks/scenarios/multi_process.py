"""``multi_process``: 4 OS processes read 4 seed-size accounts at once, sharing one per-IP budget.

Each process builds its own resources (own engine, own ``requests`` session, own limiter object): the
only thing they share is the Postgres-backed limiter, exactly as separate Dagster run workers or
machines would. Judged by the stand-in's call log: 429s, the most calls in any window, aggregate
utilization over the wall time of the whole read, and each account's share of the calls served while
all four were still reading (the contention window: from the first call to the first account's last
call). Over the whole run equal accounts get equal totals whatever the fairness, so only the
contention window shows whether the limiter is fair.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from benchmarks.account_processes import read_in_processes
from benchmarks.account_read import read_account
from benchmarks.report import ScenarioResult, Target
from benchmarks.scenarios.options import BenchOptions
from benchmarks.stand_in import StandInProcess
from benchmarks.wiring import BenchTarget, fresh_database, server_url

ACCOUNT_IDS = (20001, 20002, 20003, 20004)


def _read(target: BenchTarget, account_id: int) -> dict[str, Any]:
    return read_account(target.api_resource(), account_id).as_dict()


def contention_shares(calls: list[dict[str, Any]], account_ids: tuple[int, ...]) -> tuple[dict[str, float], float]:
    """Each account's share of the calls served while every account was still calling; and that window's length."""
    accepted = [c for c in calls if c["accepted"] and c["account_id"] in account_ids]
    last_by_account = {a: max(c["time"] for c in accepted if c["account_id"] == a) for a in account_ids}
    start = min(c["time"] for c in accepted)
    end = min(last_by_account.values())
    inside = Counter(c["account_id"] for c in accepted if c["time"] <= end)
    total = sum(inside.values())
    return {str(a): round(inside[a] / total, 3) for a in account_ids}, end - start


def run(options: BenchOptions) -> ScenarioResult:
    with fresh_database(server_url(options.database_server_url)) as database_url, \
            StandInProcess(dict.fromkeys(ACCOUNT_IDS, "seed"), seed=options.seed,
                           time_scale=options.time_scale) as stand_in:
        target = BenchTarget(database_url, stand_in.base_url, options.time_scale)
        api = target.api_resource()
        for account_id in ACCOUNT_IDS:
            api.warehouse.accounts.add(account_id, stand_in.client_secret(account_id), name="benchmark")
        reads, began = read_in_processes(target, ACCOUNT_IDS, _read)
        stats = stand_in.stats()
        calls = stand_in.calls()

    ended = max(read["finished"] for read in reads)
    seconds = ended - began
    total_calls = int(stats["total_calls"])
    shares, contention_seconds = contention_shares(calls, ACCOUNT_IDS)
    overall = {str(a): round(int(stats["by_account"].get(str(a), 0)) / total_calls, 3) for a in ACCOUNT_IDS}
    result = ScenarioResult(
        "multi_process", f"{len(ACCOUNT_IDS)} OS processes x 1 seed-size account each, time scale "
                         f"{options.time_scale:g}x ({options.ip_calls_per_second:g} calls/s per IP)",
    )
    result.figures = {
        "processes": len(reads),
        "calls": total_calls,
        "served_429": int(stats["served_429"]),
        "seconds": round(seconds, 2),
        "utilization": round(total_calls / (seconds * options.ip_calls_per_second), 3),
        "max_calls_in_a_window_per_ip": int(stats["max_calls_in_any_window_by_ip"]),
        "contention_seconds": round(contention_seconds, 2),
        "min_account_share": min(shares.values()),
        "max_account_share": max(shares.values()),
        "rows_missing": sum(read["missing"] for read in reads),
    }
    result.targets = [
        Target("served_429", "==", 0),
        Target("utilization", ">=", 0.90),
        Target("max_calls_in_a_window_per_ip", "<=", 15),
        Target("min_account_share", ">=", 0.20),
        Target("max_account_share", "<=", 0.30),
        Target("rows_missing", "==", 0),
    ]
    result.details = {"account_share_while_all_reading": shares, "account_share_overall": overall,
                      "stand_in_calls_by_account": stats["by_account"], "reads": reads}
    return result
