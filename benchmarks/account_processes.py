"""Several accounts read at once, one OS process each, released together: what multi-process scenarios share.

Each process builds its own resources first (engine, session, limiter object: the clock must not count
that), waits at a common barrier, reads its account with the scenario's ``read(target, account_id)``
(a module-level function, so the ``spawn`` start method can send it), and reports the result. The only
thing the processes share is the Postgres-backed limiter, as separate Dagster run workers or machines
would.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable, Sequence
from typing import Any

from benchmarks.wiring import BenchTarget

Read = Callable[[BenchTarget, int], dict[str, Any]]


def _worker(read: Read, target: BenchTarget, account_id: int, start: Any, results: Any) -> None:
    try:
        target.api_resource().transport  # noqa: B018 - build the engine, session and limiter before the clock
        start.wait()
        results.put(("ok", read(target, account_id)))
    except BaseException as error:  # noqa: BLE001 - reported to the parent, which fails the scenario
        results.put(("error", f"account {account_id}: {type(error).__name__}: {error}"))


def read_in_processes(target: BenchTarget, account_ids: Sequence[int],
                      read: Read) -> tuple[list[dict[str, Any]], float]:
    """Every account's ``read`` result (in completion order) and ``time.time()`` when all were released."""
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(len(account_ids) + 1)
    results = context.Queue()
    workers = [context.Process(target=_worker, args=(read, target, account_id, start, results))
               for account_id in account_ids]
    for worker in workers:
        worker.start()
    start.wait(timeout=120)
    began = time.time()
    outcomes = [results.get(timeout=3600) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
    errors = [detail for status, detail in outcomes if status == "error"]
    if errors:
        raise RuntimeError("a reading process failed: " + "; ".join(errors))
    return [detail for _, detail in outcomes], began
