"""Dagster's standard table metadata for the entity tables, and a run's preview of what it changed.

The column schema is built from the tables as declared (``storage/tables.py``): each column's Postgres
type, nullability and comment, so the UI shows the same meanings an analyst's SQL client shows. A
materialization is one account's slice of its table, so its row count is the account's live rows.
"""

from __future__ import annotations

from typing import Any

import dagster as dg
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Engine

from hostaway_pipeline.storage.entity_writer import CHANGED_IDS_KEPT, WriteCounts
from hostaway_pipeline.storage.tables import ENTITY_TABLES, SCHEMA

TABLE_NAME_KEY = "dagster/table_name"
ROW_COUNT_KEY = "dagster/row_count"
PARTITION_ROW_COUNT_KEY = "dagster/partition_row_count"
COLUMN_SCHEMA_KEY = "dagster/column_schema"
CHANGES_KEY = "changes"

_POSTGRES = postgresql.dialect()
_CHANGES_SCHEMA = dg.TableSchema(columns=[
    dg.TableColumn("change", "string", description="inserted, updated or soft_deleted"),
    dg.TableColumn("rows", "int", description="How many rows this materialization changed so"),
    dg.TableColumn("ids", "string",
                   description=f"Their ids (the first {CHANGED_IDS_KEPT} written; all when there are no more)"),
])


def table_name(resource: str) -> str:
    return f"{SCHEMA}.{ENTITY_TABLES[resource].name}"


def column_schema(resource: str) -> dg.TableSchema:
    """Every column of the resource's table: Postgres type, nullability, primary key, comment."""
    return dg.TableSchema(columns=[
        dg.TableColumn(
            column.name,
            column.type.compile(dialect=_POSTGRES).lower(),
            description=column.comment,
            constraints=dg.TableColumnConstraints(nullable=bool(column.nullable),
                                                  other=["primary key"] if column.primary_key else None),
        )
        for column in ENTITY_TABLES[resource].table.columns
    ])


COLUMN_SCHEMAS = {resource: column_schema(resource) for resource in ENTITY_TABLES}


def definition_metadata(resource: str) -> dict[str, Any]:
    """What the asset definition shows before any run: its table and columns."""
    return {TABLE_NAME_KEY: table_name(resource), COLUMN_SCHEMA_KEY: COLUMN_SCHEMAS[resource]}


def live_rows(engine: Engine, resource: str, account_id: int) -> int:
    table = ENTITY_TABLES[resource].table
    with engine.connect() as connection:
        return connection.execute(
            sa.select(sa.func.count()).select_from(table).where(table.c.account_id == account_id,
                                                                table.c.deleted_at.is_(None))
        ).scalar_one()


def materialization_metadata(resource: str, account_rows: int, counts: WriteCounts) -> dict[str, Any]:
    """The standard keys (table, the account's live rows, columns) and the preview of what changed."""
    return {
        TABLE_NAME_KEY: table_name(resource),
        ROW_COUNT_KEY: dg.MetadataValue.int(account_rows),
        PARTITION_ROW_COUNT_KEY: dg.MetadataValue.int(account_rows),
        COLUMN_SCHEMA_KEY: COLUMN_SCHEMAS[resource],
        CHANGES_KEY: changes_table(counts),
    }


def changes_table(counts: WriteCounts) -> dg.TableMetadataValue:
    """One row per kind of change: how many rows, and their ids (capped at ``CHANGED_IDS_KEPT``)."""
    kinds = (("inserted", counts.inserted, counts.inserted_ids), ("updated", counts.updated, counts.updated_ids),
             ("soft_deleted", counts.soft_deleted, counts.soft_deleted_ids))
    return dg.MetadataValue.table(
        records=[dg.TableRecord({"change": kind, "rows": total, "ids": _ids_shown(total, ids)})
                 for kind, total, ids in kinds],
        schema=_CHANGES_SCHEMA,
    )


def _ids_shown(total: int, ids: tuple[int, ...]) -> str:
    shown = ", ".join(map(str, ids))
    if total > len(ids):
        return f"{shown} (first {len(ids)} of {total})" if ids else f"(ids of {total} not kept)"
    return shown
