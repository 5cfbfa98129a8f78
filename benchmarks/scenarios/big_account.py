"""``big_account``: the messages sync of an account 10x the seed size, and the peak memory of the process running it.

The claim: the messages sync's memory follows its batch (100 conversations per write transaction), not
the account. The stand-in serves one account of 7,870 reservations (10x the seed's 787); its
conversations are synced first (in this process, as the upstream asset does), then ``sync_messages``
makes its first full read (one messages call per conversation) in a child process of its own, so that
the peak resident set it reports (``VmHWM`` of ``/proc/self/status``) is the syncing process's and
nothing else's. The child starts as a Dagster step would: pipeline and Dagster imported, resources built;
``rss_before_sync_mb`` is that floor, ``peak_rss_mb`` the high-water mark over the whole child.

At the real rate (15 calls / 10 s per egress IP) 7,900 calls take about 90 minutes: run it with a high
``--time-scale`` (e.g. 200: 300 calls/s allowed). The limiter paces through Postgres and the stand-in
is one Python process, so on a small machine the rate achieved (``calls_per_second``) is below what the
scale allows; the figure that matters here is memory, and calls, rows and completeness.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from benchmarks.report import ScenarioResult, Target
from benchmarks.scenarios.options import BenchOptions
from benchmarks.stand_in import StandInProcess
from benchmarks.wiring import BenchTarget, fresh_database, server_url
from hostaway_pipeline.storage.tables import messages
from hostaway_pipeline.sync.failures import SyncFailure
from hostaway_pipeline.sync.full_sync import sync_conversations
from hostaway_pipeline.sync.messages_sync import sync_messages

ACCOUNT_ID = 70001
SIZE = 7870  # reservations (one conversation each): 10x the seed account
MAX_PEAK_RSS_MB = 300


def run(options: BenchOptions) -> ScenarioResult:
    return measure(options, SIZE)


def measure(options: BenchOptions, size: int) -> ScenarioResult:
    """The scenario for an account of ``size`` reservations (``run`` uses 10x the seed)."""
    with fresh_database(server_url(options.database_server_url)) as database_url, \
            StandInProcess({ACCOUNT_ID: size}, seed=options.seed, time_scale=options.time_scale) as stand_in:
        target = BenchTarget(database_url, stand_in.base_url, options.time_scale)
        api = target.api_resource()
        api.warehouse.accounts.add(ACCOUNT_ID, stand_in.client_secret(ACCOUNT_ID), name="benchmark")
        conversations = sync_conversations(api.client_for(ACCOUNT_ID), api.warehouse.writer, api.warehouse.engine)
        stand_in.reset_stats()
        child = _sync_messages_in_child(target)
        stats = stand_in.stats()
        with api.warehouse.engine.connect() as connection:
            live_messages = connection.execute(sa.select(sa.func.count()).select_from(messages.table).where(
                messages.table.c.account_id == ACCOUNT_ID, messages.table.c.deleted_at.is_(None))).scalar_one()

    calls = int(stats["total_calls"])
    extra = child["extra"]
    result = ScenarioResult(
        "big_account", f"first messages sync of one account of {size:,} reservations in its own process, "
                       f"4 message workers, time scale {options.time_scale:g}x "
                       f"({options.ip_calls_per_second:g} calls/s allowed per IP)",
    )
    result.figures = {
        "peak_rss_mb": child["peak_rss_mb"],
        "rss_before_sync_mb": child["rss_before_sync_mb"],
        "sync_succeeded": int(child["failure"] is None),
        "conversations": conversations.fetched,
        "conversations_read": extra.get("conversations_read", 0),
        "calls": calls,
        "served_429": int(stats["served_429"]),
        "seconds": child["seconds"],
        "calls_per_second": round(calls / child["seconds"], 1) if child["seconds"] else 0.0,
        "rows_messages": live_messages,
        "rows_missing": max(0, (child["reported"] or 0) - child["fetched"]),
        "conversations_not_read_in_full": sum(int(extra.get(key, 0)) for key in (
            "conversations_failed", "conversations_not_found", "conversations_read_incomplete")),
        "client_retries": child["retries"],
    }
    result.targets = [
        Target("peak_rss_mb", "<", MAX_PEAK_RSS_MB),
        Target("sync_succeeded", "==", 1),
        Target("rows_missing", "==", 0),
        Target("conversations_not_read_in_full", "==", 0),
    ]
    result.details = {"child": child, "conversations_sync": conversations.metadata(),
                      "stand_in_calls_by_endpoint": stats["by_endpoint"]}
    return result


def _sync_messages_in_child(target: BenchTarget) -> dict[str, Any]:
    """Run :func:`_child` in a fresh interpreter (the job on stdin: no URL on a command line)."""
    job = json.dumps({"database_url": target.database_url, "base_url": target.base_url,
                      "time_scale": target.time_scale})
    root = Path(__file__).resolve().parents[2]
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))}
    finished = subprocess.run([sys.executable, "-m", "benchmarks.scenarios.big_account"], input=job, text=True,
                              capture_output=True, env=environment, cwd=root, check=False)
    if finished.returncode != 0 or not finished.stdout.strip():
        raise RuntimeError(f"the messages sync child failed ({finished.returncode}): {finished.stderr[-2000:]}")
    return json.loads(finished.stdout.strip().splitlines()[-1])


def _memory_mb() -> dict[str, float]:
    """Resident set now and its high-water mark, of this process (per address space: not inherited
    through fork and exec, unlike ``getrusage``'s ``ru_maxrss``)."""
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = round(int(value.split()[0]) / 1024, 1)  # kB
    return fields


def _child() -> None:
    job = json.loads(sys.stdin.read())
    api = BenchTarget(job["database_url"], job["base_url"], float(job["time_scale"])).api_resource()
    client, writer, engine = api.client_for(ACCOUNT_ID), api.warehouse.writer, api.warehouse.engine
    with engine.connect():
        pass  # the pool and the migrations check, as a step has them before it syncs
    before = _memory_mb()["VmRSS"]
    failure = None
    started = time.monotonic()
    try:
        outcome = sync_messages(client, writer, engine)
    except SyncFailure as error:
        outcome, failure = error.outcome, str(error)
    seconds = time.monotonic() - started
    print(json.dumps({
        "peak_rss_mb": _memory_mb()["VmHWM"], "rss_before_sync_mb": before, "seconds": round(seconds, 2),
        "failure": failure, "fetched": outcome.fetched, "reported": outcome.reported_count,
        "rows_inserted": outcome.counts.inserted, "calls": client.stats.calls, "retries": client.stats.retries,
        "throttled_429": client.stats.throttled_429, "extra": outcome.extra,
    }))


if __name__ == "__main__":
    _child()
