"""``full_read``: one seed-size account read in full through the shared limiter, against the strict stand-in.

The claim: the pipeline runs AT the per-IP limit, never over it. Calls and 429s are the stand-in's
count; utilization = calls / (wall seconds x per-IP rate), wall seconds from before the first request
(token included) to the last response.
"""

from __future__ import annotations

from benchmarks.account_read import read_account
from benchmarks.report import ScenarioResult, Target
from benchmarks.scenarios.options import BenchOptions
from benchmarks.stand_in import StandInProcess
from benchmarks.wiring import BenchTarget, fresh_database, server_url

ACCOUNT_ID = 10001
# 1 token + 1 listings page + 8 reservation pages + 1 catch-up of rows that moved behind the cursor
# + 8 conversation pages + 1 head re-read for conversations that moved up + 787 message reads = 807.
MAX_CALLS = 807


def run(options: BenchOptions) -> ScenarioResult:
    with fresh_database(server_url(options.database_server_url)) as database_url, \
            StandInProcess({ACCOUNT_ID: "seed"}, seed=options.seed, time_scale=options.time_scale) as stand_in:
        target = BenchTarget(database_url, stand_in.base_url, options.time_scale)
        api = target.api_resource()
        api.warehouse.accounts.add(ACCOUNT_ID, stand_in.client_secret(ACCOUNT_ID), name="benchmark")
        read = read_account(api, ACCOUNT_ID)
        stats = stand_in.stats()

    seconds = read.finished - read.started
    calls = int(stats["total_calls"])
    result = ScenarioResult(
        "full_read", f"one seed-size account, 4 message workers, time scale {options.time_scale:g}x "
                     f"({options.ip_calls_per_second:g} calls/s per IP)",
    )
    result.figures = {
        "calls": calls,
        "served_429": int(stats["served_429"]),
        "seconds": round(seconds, 2),
        "utilization": round(calls / (seconds * options.ip_calls_per_second), 3),
        "max_calls_in_a_window_per_ip": int(stats["max_calls_in_any_window_by_ip"]),
        "rows_missing": read.missing + read.failed_conversations,
        **{f"rows_{name}": count for name, count in read.rows.items()},
        "client_retries": read.retries,
        "limiter_wait_seconds_summed_over_threads": read.rate_limit_wait_seconds,
    }
    result.targets = [
        Target("served_429", "==", 0),
        Target("calls", "<=", MAX_CALLS),
        Target("utilization", ">=", 0.95),
        Target("max_calls_in_a_window_per_ip", "<=", 15),
        Target("rows_missing", "==", 0),
    ]
    result.details = {"stand_in_calls_by_endpoint": stats["by_endpoint"], "read": read.as_dict()}
    return result
