"""The analyst assets (schema ``hostaway_analytics``), one partition per account, kept up to date by Dagster itself.

Thin: each asset calls ``analytics.refresh`` (read live rows, compute with pandas, replace the account's
rows in one transaction) and reports row count, table name and column schema. No API call, so no
``hostaway_api`` pool. Lineage: ``reservation_nights`` <- listings, reservations; occupancy <- nights,
listings; revenue <- nights, reservations; ``guest_response_times`` <- messages, listings.

How they run without anyone asking (declarative automation, checked against Dagster 1.13's source and
docs): every asset carries ``AutomationCondition.eager()``, which requests a partition when any upstream
partition of the same account has a new materialization (a reconciliation run, or the webhook apply
job's reported materializations), and waits while an upstream is still in progress or has never been
materialized, so one reconciliation run gives one analytics run after it, not one per core asset.
Conditions are evaluated only by an automation condition sensor in the daemon's ``AssetDaemon``
(``auto_materialize.use_sensors`` defaults to true in 1.13). Dagster would create
``default_automation_condition_sensor`` on its own, but STOPPED (``AutomationConditionSensorDefinition``'s
``default_status``) until someone toggles it in the UI; so ``analytics_automation_sensor`` below targets
this group and is declared RUNNING, and the default one is then not created (nothing is left for it).
``hostaway_pipeline_tests/analytics/test_analytics_assets.py`` evaluates these conditions on an
instance to show a core materialization requests exactly the affected account's analytics.
"""

# No ``from __future__ import annotations``: Dagster reads the resource annotations as types.

from collections.abc import Callable

import dagster as dg
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from hostaway_pipeline.analytics import refresh
from hostaway_pipeline.analytics import tables as analytics_tables
from hostaway_pipeline.defs.assets import listings, messages, reservations
from hostaway_pipeline.defs.partitions import account_partitions
from hostaway_pipeline.defs.resources import WarehouseResource

ANALYTICS_KEY_PREFIX = "hostaway_analytics"
ANALYTICS_GROUP = "hostaway_analytics"
AUTOMATION_SENSOR_NAME = "hostaway_analytics_automation"
_PREVIEW_ROWS = 10


# Eager, but never from the input a failed step left behind: while any upstream's latest execution in
# this partition failed (a short read, failed message reads), the analytics tables keep the last good
# build instead of a green rebuild from half-updated input.
ANALYTICS_CONDITION = dg.AutomationCondition.eager() & ~dg.AutomationCondition.any_deps_match(
    dg.AutomationCondition.execution_failed())
ANALYTICS_RUN_PRIORITY = "-1"

def _column_schema(table: sa.Table) -> dg.TableSchema:
    dialect = sa.dialects.postgresql.dialect()
    return dg.TableSchema(columns=[
        dg.TableColumn(name=column.name, type=column.type.compile(dialect=dialect).lower(),
                       description=column.comment,
                       constraints=dg.TableColumnConstraints(nullable=bool(column.nullable)))
        for column in table.columns
    ])


def _preview_markdown(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "(no rows)"
    head = frame.head(_PREVIEW_ROWS).astype("string").fillna("")
    lines = ["| " + " | ".join(head.columns) + " |", "|" + "---|" * len(head.columns)]
    lines += ["| " + " | ".join(value.replace("|", "\\|") for value in row) + " |"
              for row in head.itertuples(index=False)]
    return "\n".join(lines)


def _result(context: dg.AssetExecutionContext, outcome: refresh.TableRefresh) -> dg.MaterializeResult:
    table = outcome.table
    context.log.info(f"{table.fullname} for account {outcome.account_id}: {outcome.rows_written} rows; "
                     f"{outcome.notes}")
    return dg.MaterializeResult(metadata={
        "dagster/row_count": outcome.rows_written,
        "dagster/table_name": table.fullname,
        "dagster/column_schema": _column_schema(table),
        **{key: value if isinstance(value, (int, float, str)) else dg.MetadataValue.json(value)
           for key, value in outcome.notes.items()},
        "preview": dg.MetadataValue.md(_preview_markdown(outcome.frame)),
    })


def _analytics_asset(table: sa.Table, description: str, deps: list,
                     refresher: Callable[[Engine, int], refresh.TableRefresh]) -> dg.AssetsDefinition:
    @dg.asset(
        name=table.name,
        key_prefix=ANALYTICS_KEY_PREFIX,
        partitions_def=account_partitions,
        group_name=ANALYTICS_GROUP,
        kinds={"pandas", "postgres"},
        description=description,
        deps=deps,
        automation_condition=ANALYTICS_CONDITION,
        metadata={"table": table.fullname},
    )
    def _asset(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
        return _result(context, refresher(warehouse.engine, int(context.partition_key)))

    return _asset


reservation_nights = _analytics_asset(
    analytics_tables.reservation_nights,
    "One row per booked night (confirmed guest stays and owner stays) with its share of the price.",
    [reservations, listings], refresh.refresh_reservation_nights)
listing_occupancy_monthly = _analytics_asset(
    analytics_tables.listing_occupancy_monthly,
    "Occupancy per listing and local month: sold nights over nights not blocked by the owner.",
    [reservation_nights, listings], refresh.refresh_listing_occupancy_monthly)
revenue_monthly = _analytics_asset(
    analytics_tables.revenue_monthly,
    "Revenue, nights, ADR and cancellation payouts per listing, channel, local month and currency.",
    [reservation_nights, reservations], refresh.refresh_revenue_monthly)
guest_response_times = _analytics_asset(
    analytics_tables.guest_response_times,
    "Each incoming guest message with the first host reply after it (elapsed time, local month).",
    [messages, listings], refresh.refresh_guest_response_times)

ANALYTICS_ASSETS = [reservation_nights, listing_occupancy_monthly, revenue_monthly, guest_response_times]

analytics_automation_sensor = dg.AutomationConditionSensorDefinition(
    AUTOMATION_SENSOR_NAME,
    target=dg.AssetSelection.groups(ANALYTICS_GROUP),
    default_status=dg.DefaultSensorStatus.RUNNING,
    # Behind reconciliations in the queue (a busy account's webhooks keep one analytics run coming), and
    # named for what they are in the Runs list and in `status`.
    run_tags={"dagster/priority": ANALYTICS_RUN_PRIORITY, "hostaway/trigger": "analytics"},
    # One plain run per account rather than a backfill: each goes through the per-account run queue limit.
    emit_backfills=False,
    description="Materializes an account's analytics tables after its hostaway assets change (eager).",
)
