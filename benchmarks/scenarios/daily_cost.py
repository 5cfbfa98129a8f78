"""``daily_cost``: what a daily reconciliation of a seed-size account costs, quiet and after a busy day.

One seed-size account (787 reservations, 787 conversations) is reconciled by the Dagster job (all four
assets and their checks) at default settings: the first sync (full), then a pass over a quiet day
(nothing changed upstream), then a pass after "the day above" of issue 12 (16 conversations, 5
reservations and 2 new bookings changed). Reported per pass: calls in all and per endpoint, whether the
run and its checks are green, and whether the tables equal the stand-in's ground truth (live ids of all
four tables, and the version fields of every row). From the daily figures, accounts per egress IP
(129,600 calls a day), with the weekly full listing of reservations amortized over its week, beside the
naive design (805 calls a day, 160 accounts per IP).

Then the intraday pass (the ``intraday_hostaway_account`` job): once on the quiet account, once after a
morning of host-sent and scheduled-sent messages (``AN_HOUR_OF_SENDS``). Accounts per IP with an hourly
intraday pass count the day above plus 24 passes at the quiet cost plus one messages call per moved
conversation (counted again although the daily pass then finds them unmoved: an upper bound).
"""

from __future__ import annotations

from typing import Any

import dagster as dg
import sqlalchemy as sa

from benchmarks.report import ScenarioResult, Target
from benchmarks.scenarios.full_sync import ACCOUNT_ID, _materialize, _summary, seed_account
from benchmarks.scenarios.options import BenchOptions
from benchmarks.stand_in import StandInProcess
from benchmarks.wiring import BenchTarget
from hostaway_pipeline.defs.intraday import intraday_account_job
from hostaway_pipeline.defs.partitions import partition_key
from hostaway_pipeline.storage import tables
from hostaway_pipeline.storage.engine import get_engine

IP_CALLS_PER_DAY = 129_600
NAIVE_CALLS_PER_DAY = 805
FULL_LISTING_EVERY_DAYS = 7
# The day above: 16 conversations (guest and host messages), 5 reservations edited, 2 new bookings.
THE_DAY_ABOVE = {"new_reservations": 2, "update_reservations": 5, "incoming_messages": 8, "outgoing_messages": 8}
# What an intraday pass exists for: host-sent messages and scheduled messages going out (webhooks bring the rest).
AN_HOUR_OF_SENDS = {"outgoing_messages": 3, "send_scheduled_messages": 2}
INTRADAY_PASSES_PER_DAY = 24
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


def _messages_differing(database_url: str, truth: dict[str, Any], conversation_ids: set[int]) -> list[int]:
    """Messages of these conversations that are missing, extra or not at their newest version in the table."""
    engine = get_engine(database_url)
    table = tables.messages.table
    with engine.connect() as connection:
        stored = {row.id: row.raw for row in connection.execute(sa.select(table.c.id, table.c.raw).where(
            table.c.account_id == ACCOUNT_ID, table.c.deleted_at.is_(None),
            table.c.conversation_id.in_(sorted(conversation_ids) or [-1])))}
    upstream = {int(m["id"]): m for m in truth["messages"] if m["conversationId"] in conversation_ids}
    stale = [i for i, m in upstream.items()
             if i in stored and any(stored[i].get(key) != m.get(key) for key in VERSION_KEYS["messages"])]
    return sorted(set(stored) ^ set(upstream)) + sorted(stale)


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


def _intraday_pass(stand_in: StandInProcess, target: BenchTarget, instance: dg.DagsterInstance) -> dict[str, Any]:
    stand_in.reset_stats()
    api = target.api_resource()
    result = intraday_account_job.execute_in_process(
        instance=instance, partition_key=partition_key(ACCOUNT_ID), raise_on_error=False,
        resources={"warehouse": api.warehouse, "hostaway_rate_limiter": api.rate_limiter, "hostaway_api": api},
        run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}})
    stats = stand_in.stats()
    metadata: dict[str, Any] = {}
    for event in result.all_events:
        if event.is_successful_output:
            metadata = {key: value.value for key, value in event.step_output_data.metadata.items()}
    return {"calls": int(stats["total_calls"]), "by_endpoint": stats["by_endpoint"], "success": int(result.success),
            "read_kind": metadata.get("conversations_read_kind"),
            "conversations_moved": metadata.get("conversations_moved"),
            "messages_read": metadata.get("conversations_messages_read"), "served_429": int(stats["served_429"])}


def run(options: BenchOptions) -> ScenarioResult:
    with seed_account(options) as (database_url, stand_in, target, instance):

        first = _pass(stand_in, target, instance, database_url)
        quiet = _pass(stand_in, target, instance, database_url)
        touched = stand_in.mutate(ACCOUNT_ID, THE_DAY_ABOVE)
        busy = _pass(stand_in, target, instance, database_url)
        intraday_quiet = _intraday_pass(stand_in, target, instance)
        sends = stand_in.mutate(ACCOUNT_ID, AN_HOUR_OF_SENDS)
        intraday_busy = _intraday_pass(stand_in, target, instance)
        truth_after_intraday = stand_in.truth(ACCOUNT_ID)
        sent_to = set(sends.get("touched_conversations", []))
        intraday_missed = _messages_differing(database_url, truth_after_intraday, sent_to)

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
    moved_per_pass = int(intraday_busy["by_endpoint"].get("messages", 0))
    hourly_per_day = (busy["calls"] + weekly_extra + INTRADAY_PASSES_PER_DAY * intraday_quiet["calls"]
                      + moved_per_pass)
    figures.update({
        "intraday_quiet_calls": intraday_quiet["calls"],
        "intraday_quiet_read_kind": intraday_quiet["read_kind"],
        "intraday_after_sends_calls": intraday_busy["calls"],
        "intraday_after_sends_conversations_calls": int(intraday_busy["by_endpoint"].get("conversations", 0)),
        "intraday_after_sends_messages_calls": moved_per_pass,
        "intraday_after_sends_conversations_sent_to": len(sent_to),
        "intraday_after_sends_conversations_moved": intraday_busy["conversations_moved"],
        "intraday_after_sends_calls_over_goal": intraday_busy["calls"] - (5 + len(sent_to)),
        "intraday_after_sends_sent_conversations_equal_truth": int(not intraday_missed),
        "intraday_success": int(intraday_quiet["success"] and intraday_busy["success"]),
        "hourly_intraday_calls_per_day": round(hourly_per_day, 1),
        "hourly_intraday_accounts_per_ip": int(IP_CALLS_PER_DAY // hourly_per_day),
    })
    figures["served_429"] = (first["served_429"] + quiet["served_429"] + busy["served_429"]
                             + intraday_quiet["served_429"] + intraday_busy["served_429"])
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
        Target("intraday_quiet_calls", "<=", 5),
        Target("intraday_after_sends_calls_over_goal", "<=", 0),
        Target("intraday_after_sends_sent_conversations_equal_truth", "==", 1),
        Target("intraday_success", "==", 1),
        Target("day_above_accounts_per_ip", ">=", 3000),
        Target("hourly_intraday_accounts_per_ip", ">=", 1000),
    ]
    result.details = {"changes": THE_DAY_ABOVE, "touched": {k: v for k, v in touched.items() if isinstance(v, list)
                                                            and k != "webhook_deliveries" and k != "events"},
                      "first_sync": first, "quiet_day": quiet, "day_above": busy,
                      "intraday_quiet": intraday_quiet, "intraday_after_sends": intraday_busy,
                      "intraday_sends": AN_HOUR_OF_SENDS, "intraday_missed": intraday_missed,
                      "weekly_full_listing_extra_calls_per_day": round(weekly_extra, 2)}
    return result
