"""``daily_cost``: what a daily reconciliation of a seed-size account costs, quiet and after a busy day.

One seed-size account (787 reservations, 787 conversations) is reconciled by the Dagster job (all four
assets and their checks) at default settings: the first sync (full), then a pass over a quiet day
(nothing changed upstream), then a pass after "the day above" of issue 12 (16 conversations, 5
reservations and 2 new bookings changed). Reported per pass: calls in all and per endpoint, whether the
run and its checks are green, and whether the tables equal the stand-in's ground truth (live ids of all
four tables, and the version fields of every row). From the daily figures, accounts per egress IP
(129,600 calls a day), with the weekly full listing of reservations amortized over its week, beside the
naive design (805 calls a day, 160 accounts per IP).
"""

from __future__ import annotations

from typing import Any

import dagster as dg
import sqlalchemy as sa

from benchmarks.report import ScenarioResult, Target
from benchmarks.scenarios.full_sync import ACCOUNT_ID, _materialize, _summary
from benchmarks.scenarios.options import BenchOptions
from benchmarks.stand_in import StandInProcess
from benchmarks.wiring import BenchTarget, fresh_database, server_url
from hostaway_pipeline.defs.partitions import ACCOUNT_PARTITIONS_NAME, partition_key
from hostaway_pipeline.storage import tables
from hostaway_pipeline.storage.engine import get_engine

IP_CALLS_PER_DAY = 129_600
NAIVE_CALLS_PER_DAY = 805
FULL_LISTING_EVERY_DAYS = 7
# The day above: 16 conversations (guest and host messages), 5 reservations edited, 2 new bookings.
THE_DAY_ABOVE = {"new_reservations": 2, "update_reservations": 5, "incoming_messages": 8, "outgoing_messages": 8}
VERSION_KEYS = {"listings": ("latestActivityOn",), "reservations": ("updatedOn", "latestActivityOn", "status"),
                "conversations": ("messageSentOn", "messageReceivedOn"), "messages": ("updatedOn", "status")}


def tables_equal_truth(database_url: str, truth: dict[str, Any]) -> list[str]:
    """Which tables differ from the ground truth (live ids, or a version field of a row); empty when none."""
    differing: list[str] = []
    engine = get_engine(database_url)
    with engine.connect() as connection:
        for name, entity in tables.ENTITY_TABLES.items():
            table = entity.table
            stored = {row.id: row.raw for row in connection.execute(sa.select(table.c.id, table.c.raw).where(
                table.c.account_id == ACCOUNT_ID, table.c.deleted_at.is_(None)))}
            upstream = {int(o["id"]): o for o in truth[name]}
            if set(stored) != set(upstream) or any(
                    stored[i].get(key) != o.get(key) for i, o in upstream.items() for key in VERSION_KEYS[name]):
                differing.append(name)
    return differing


def _pass(stand_in: StandInProcess, target: BenchTarget, instance: dg.DagsterInstance,
          database_url: str) -> dict[str, Any]:
    stand_in.reset_stats()
    result, seconds = _materialize(target, instance)
    stats = stand_in.stats()
    summary = _summary(result)
    differing = tables_equal_truth(database_url, stand_in.truth(ACCOUNT_ID))
    return {"calls": int(stats["total_calls"]), "by_endpoint": stats["by_endpoint"], "success": int(result.success),
            "failed_checks": summary["failed_checks"], "served_429": int(stats["served_429"]),
            "tables_equal_truth": int(not differing), "tables_differing": differing, "seconds": round(seconds, 2),
            "reservations_read": summary["assets"].get("reservations", {}).get("read_kind"),
            "messages_conversations_read": summary["assets"].get("messages", {}).get("conversations_read")}


def run(options: BenchOptions) -> ScenarioResult:
    with fresh_database(server_url(options.database_server_url)) as database_url, \
            StandInProcess({ACCOUNT_ID: "seed"}, seed=options.seed, time_scale=options.time_scale) as stand_in:
        target = BenchTarget(database_url, stand_in.base_url, options.time_scale)
        instance = dg.DagsterInstance.ephemeral()
        target.api_resource().warehouse.accounts.add(ACCOUNT_ID, stand_in.client_secret(ACCOUNT_ID))
        instance.add_dynamic_partitions(ACCOUNT_PARTITIONS_NAME, [partition_key(ACCOUNT_ID)])

        first = _pass(stand_in, target, instance, database_url)
        quiet = _pass(stand_in, target, instance, database_url)
        touched = stand_in.mutate(ACCOUNT_ID, THE_DAY_ABOVE)
        busy = _pass(stand_in, target, instance, database_url)

    # A full listing of reservations replaces one incremental read a week.
    full_listing = int(first["by_endpoint"].get("reservations", 0))
    incremental = int(quiet["by_endpoint"].get("reservations", 0))
    weekly_extra = (full_listing - incremental) / FULL_LISTING_EVERY_DAYS
    result = ScenarioResult(
        "daily_cost", f"one seed-size account: first sync, a quiet day, the day above (issue 12); default settings, "
                      f"time scale {options.time_scale:g}x")
    figures: dict[str, Any] = {"first_sync_calls": first["calls"]}
    for name, figures_of in (("quiet_day", quiet), ("day_above", busy)):
        per_day = figures_of["calls"] + weekly_extra
        figures.update({
            f"{name}_calls": figures_of["calls"],
            f"{name}_reservations_calls": int(figures_of["by_endpoint"].get("reservations", 0)),
            f"{name}_conversations_calls": int(figures_of["by_endpoint"].get("conversations", 0)),
            f"{name}_messages_calls": int(figures_of["by_endpoint"].get("messages", 0)),
            f"{name}_success": figures_of["success"],
            f"{name}_failed_checks": len(figures_of["failed_checks"]),
            f"{name}_tables_equal_truth": figures_of["tables_equal_truth"],
            f"{name}_calls_per_day_with_weekly_full_listing": round(per_day, 1),
            f"{name}_accounts_per_ip": int(IP_CALLS_PER_DAY // per_day),
        })
    figures["served_429"] = first["served_429"] + quiet["served_429"] + busy["served_429"]
    figures["naive_calls_per_day"] = NAIVE_CALLS_PER_DAY
    figures["naive_accounts_per_ip"] = IP_CALLS_PER_DAY // NAIVE_CALLS_PER_DAY
    result.figures = figures
    result.targets = [
        Target("quiet_day_calls", "<=", 20),
        Target("day_above_calls", "<=", 40),
        Target("quiet_day_tables_equal_truth", "==", 1),
        Target("day_above_tables_equal_truth", "==", 1),
        Target("quiet_day_success", "==", 1),
        Target("day_above_success", "==", 1),
        Target("quiet_day_failed_checks", "==", 0),
        Target("day_above_failed_checks", "==", 0),
        Target("served_429", "==", 0),
    ]
    result.details = {"changes": THE_DAY_ABOVE, "touched": {k: v for k, v in touched.items() if isinstance(v, list)
                                                            and k != "webhook_deliveries" and k != "events"},
                      "first_sync": first, "quiet_day": quiet, "day_above": busy,
                      "weekly_full_listing_extra_calls_per_day": round(weekly_extra, 2)}
    return result
