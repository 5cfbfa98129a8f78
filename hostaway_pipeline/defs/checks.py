"""Asset checks on the synced tables: counts agree with the API, references resolve.
Checks read only the warehouse and the run history, never the API: a check costs no rate-limit budget.
The row-count checks compare the live rows with the ``reported_count`` the API gave during the partition's
latest materialization; for messages (read per conversation, only where something moved) with the sum of
the API's per-conversation counts recorded when each live conversation was last read.
"""


import dagster as dg
import sqlalchemy as sa

from hostaway_pipeline.defs.assets import conversations, listings, messages, reservations
from hostaway_pipeline.defs.partitions import account_partitions
from hostaway_pipeline.defs.reconciliation_history import latest_reconciliation
from hostaway_pipeline.defs.resources import WarehouseResource
from hostaway_pipeline.storage import tables


def _live_count(warehouse: WarehouseResource, table: sa.Table, account_id: int) -> int:
    with warehouse.engine.connect() as connection:
        return connection.execute(
            sa.select(sa.func.count()).select_from(table).where(
                table.c.account_id == account_id, table.c.deleted_at.is_(None)
            )
        ).scalar_one()


def _latest_reported_count(context: dg.AssetCheckExecutionContext, asset_key: dg.AssetKey) -> int | None:
    record = latest_reconciliation(context.instance, asset_key, context.partition_key)
    if record is None:
        return None
    materialization = record.asset_materialization
    value = materialization.metadata.get("reported_count") if materialization else None
    count = None if value is None else value.value
    return int(count) if isinstance(count, int | float | str) else None


def _row_count_check(asset: dg.AssetsDefinition, table_name: str) -> dg.AssetChecksDefinition:
    @dg.asset_check(asset=asset, name="row_count_matches_api", partitions_def=account_partitions,
                    description=f"Live rows in hostaway.{table_name} equal the API's count at the last sync")
    def check(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource) -> dg.AssetCheckResult:
        account_id = int(context.partition_key)
        live = _live_count(warehouse, tables.ENTITY_TABLES[table_name].table, account_id)
        reported = _latest_reported_count(context, asset.key)
        return dg.AssetCheckResult(
            passed=reported is not None and live == reported,
            metadata={"live_rows": live, "api_count": reported if reported is not None else -1},
            description=None if reported is not None else "no materialization with an API count yet",
        )

    return check


def _api_message_count(warehouse: WarehouseResource, account_id: int) -> int:
    """What the API counted for the live conversations' messages when each was last read."""
    state, conversations_table = tables.conversation_message_sync, tables.conversations.table
    with warehouse.engine.connect() as connection:
        return connection.execute(
            sa.select(sa.func.coalesce(sa.func.sum(state.c.api_message_count), 0)).select_from(
                state.join(conversations_table, sa.and_(conversations_table.c.account_id == state.c.account_id,
                                                        conversations_table.c.id == state.c.conversation_id))
            ).where(state.c.account_id == account_id, conversations_table.c.deleted_at.is_(None))
        ).scalar_one()


@dg.asset_check(asset=messages, name="row_count_matches_api", partitions_def=account_partitions,
                description="Live rows in hostaway.messages equal the sum of the API's per-conversation counts "
                            "at each live conversation's last read")
def messages_row_count_matches_api(context: dg.AssetCheckExecutionContext,
                                   warehouse: WarehouseResource) -> dg.AssetCheckResult:
    account_id = int(context.partition_key)
    live = _live_count(warehouse, tables.messages.table, account_id)
    counted = _api_message_count(warehouse, account_id)
    return dg.AssetCheckResult(passed=live == counted, metadata={"live_rows": live, "api_count": counted})


def _orphans(warehouse: WarehouseResource, child: sa.Table, column: str, parent: sa.Table, account_id: int) -> int:
    parent_alive = sa.select(parent.c.id).where(
        parent.c.account_id == account_id, parent.c.id == child.c[column], parent.c.deleted_at.is_(None)
    )
    with warehouse.engine.connect() as connection:
        return connection.execute(
            sa.select(sa.func.count()).select_from(child).where(
                child.c.account_id == account_id, child.c.deleted_at.is_(None), child.c[column].is_not(None),
                ~sa.exists(parent_alive),
            )
        ).scalar_one()


def _reference_check(asset: dg.AssetsDefinition, name: str, column: str, parent_name: str,
                     metadata_key: str, additional_deps: list | None = None) -> dg.AssetChecksDefinition:
    child_name = asset.key.path[-1]

    @dg.asset_check(asset=asset, name=name, partitions_def=account_partitions, additional_deps=additional_deps,
                    description=f"Live {child_name} whose {column} has no live row in hostaway.{parent_name} "
                                "(a warning: webhooks can deliver a child before its parent)")
    def check(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource) -> dg.AssetCheckResult:
        orphans = _orphans(warehouse, tables.ENTITY_TABLES[child_name].table, column,
                           tables.ENTITY_TABLES[parent_name].table, int(context.partition_key))
        return dg.AssetCheckResult(passed=orphans == 0, severity=dg.AssetCheckSeverity.WARN,
                                   metadata={metadata_key: orphans})

    return check


reservations_listing_exists = _reference_check(reservations, "listing_exists", "listing_id", "listings",
                                               "reservations_without_listing", additional_deps=[listings])
messages_conversation_exists = _reference_check(messages, "conversation_exists", "conversation_id",
                                                "conversations", "messages_without_conversation")

HOSTAWAY_CHECKS = [
    _row_count_check(listings, "listings"),
    _row_count_check(reservations, "reservations"),
    _row_count_check(conversations, "conversations"),
    messages_row_count_matches_api,
    reservations_listing_exists,
    messages_conversation_exists,
]
