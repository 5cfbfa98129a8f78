"""``readings``: what completeness costs under each reading of ``afterId`` the docs leave open.

For each reading the stand-in can serve (``keyset`` as documented, ``id_order``, ``ignored``), one
seed-size account is reconciled in full by the Dagster job (first sync), then a day of changes lands
upstream (cancellations, updates, new bookings, messages and one listing deleted) and the daily
reconciliation runs. Reported per reading: calls of the first full sync (and of its reservations
step), calls of the daily sync, and the calls spent proving deletions by id (the ``GET /{resource}/{id}``
lookups: one per row missing from a complete read); and whether the tables equal the stand-in's ground
truth after each sync.
"""

from __future__ import annotations

from typing import Any

from benchmarks.report import ScenarioResult, Target
from benchmarks.scenarios.full_sync import _materialize, seed_account
from benchmarks.scenarios.options import BenchOptions
from hostaway_pipeline.orchestration import materialization_metadata
from hostaway_pipeline.storage import tables
from hostaway_pipeline.storage.engine import get_engine

ACCOUNT_ID = 30001  # the account id ``full_sync._materialize`` materializes
READINGS = ("keyset", "id_order", "ignored")
DAILY_CHANGES = {"cancel_reservations": 3, "update_reservations": 5, "new_reservations": 4,
                 "incoming_messages": 8, "outgoing_messages": 6, "delete_listings": 1}
SINGLE_OBJECT_ENDPOINTS = ("listing", "reservation", "conversation", "message")


def _tables_equal_truth(database_url: str, truth: dict[str, Any]) -> bool:
    engine = get_engine(database_url)
    with engine.connect() as connection:
        for name, entity in tables.ENTITY_TABLES.items():
            table = entity.table
            live = set(connection.execute(table.select().with_only_columns(table.c.id).where(
                table.c.account_id == ACCOUNT_ID, table.c.deleted_at.is_(None))).scalars())
            if live != {int(o["id"]) for o in truth[name]}:
                return False
    return True


def _one_reading(options: BenchOptions, reading: str) -> dict[str, Any]:
    with seed_account(options, after_id_reading=reading) as (database_url, stand_in, target, instance):

        first, _ = _materialize(target, instance)
        first_stats = stand_in.stats()
        first_equal = _tables_equal_truth(database_url, stand_in.truth(ACCOUNT_ID))
        stand_in.reset_stats()
        stand_in.mutate(ACCOUNT_ID, DAILY_CHANGES)
        daily, _ = _materialize(target, instance)
        daily_stats = stand_in.stats()
        daily_equal = _tables_equal_truth(database_url, stand_in.truth(ACCOUNT_ID))
    metadata = materialization_metadata(first)
    return {
        "first_sync_calls": int(first_stats["total_calls"]),
        "first_sync_reservations_calls": int(first_stats["by_endpoint"].get("reservations", 0)),
        "first_sync_success": int(first.success),
        "first_sync_tables_equal_truth": int(first_equal),
        "daily_sync_calls": int(daily_stats["total_calls"]),
        "daily_sync_reservations_calls": int(daily_stats["by_endpoint"].get("reservations", 0)),
        "daily_deletion_proof_calls": sum(int(daily_stats["by_endpoint"].get(e, 0)) for e in SINGLE_OBJECT_ENDPOINTS),
        "daily_sync_success": int(daily.success),
        "daily_sync_tables_equal_truth": int(daily_equal),
        "served_429": int(first_stats["served_429"]) + int(daily_stats["served_429"]),
        "reservations_read_strategy": metadata.get("reservations", {}).get("read_strategy"),
    }


def run(options: BenchOptions) -> ScenarioResult:
    result = ScenarioResult(
        "readings", "one seed-size account under each afterId reading: first full sync, then a day of changes "
                    f"with one listing deleted; time scale {options.time_scale:g}x",
    )
    for reading in READINGS:
        figures = _one_reading(options, reading)
        result.details[reading] = figures
        for name, value in figures.items():
            if name != "reservations_read_strategy":
                result.figures[f"{reading}.{name}"] = value
        result.targets += [
            Target(f"{reading}.first_sync_tables_equal_truth", "==", 1),
            Target(f"{reading}.daily_sync_tables_equal_truth", "==", 1),
            Target(f"{reading}.first_sync_success", "==", 1),
            Target(f"{reading}.daily_sync_success", "==", 1),
            Target(f"{reading}.served_429", "==", 0),
        ]
    return result
