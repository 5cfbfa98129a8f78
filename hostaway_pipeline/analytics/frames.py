"""Postgres rows <-> typed pandas DataFrames: the one place analytics code reads and writes the database.

Reading gives each column the pandas type of its SQL type: zone-aware UTC timestamps for ``timestamptz``,
naive timestamps for ``timestamp`` and ``date`` (calendar values), nullable ``Int64``/``boolean``/``string``,
``float64`` for money and ``jsonb`` as Python objects. Entity tables give live rows only (``deleted_at IS
NULL``). Writing replaces one account's rows of an analytics table in one transaction, so readers see
either the old rows or the new ones, never a mix or an empty table.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from hostaway_pipeline.storage import tables as hostaway_tables


def _pandas_column(values: list[Any], type_: sa.types.TypeEngine) -> pd.Series:
    if isinstance(type_, sa.DateTime):
        if type_.timezone:
            return pd.Series(pd.to_datetime(values, utc=True), dtype="datetime64[us, UTC]")
        return pd.Series(pd.to_datetime(values), dtype="datetime64[us]")
    if isinstance(type_, sa.Date):
        return pd.Series(pd.to_datetime(values), dtype="datetime64[us]")
    if isinstance(type_, sa.Boolean):
        return pd.Series(values, dtype="boolean")
    if isinstance(type_, sa.Integer):
        return pd.Series(values, dtype="Int64")
    if isinstance(type_, (sa.Numeric, sa.Float)):
        return pd.Series([None if value is None else float(value) for value in values], dtype="float64")
    if isinstance(type_, (sa.String, sa.Text)):
        return pd.Series(values, dtype="string")
    return pd.Series(values, dtype="object")


def frame_from_select(connection: Connection, statement: sa.Select) -> pd.DataFrame:
    """Run ``statement`` and type each column from its SQL type (see the module docstring)."""
    result = connection.execute(statement)
    rows = result.fetchall()
    columns = list(statement.selected_columns)
    return pd.DataFrame({
        column.name: _pandas_column([row[index] for row in rows], column.type)
        for index, column in enumerate(columns)
    })


def live_rows_select(table: sa.Table, account_ids: Iterable[int] | None = None,
                     columns: Sequence[str] | None = None) -> sa.Select:
    """SELECT of ``table`` (live rows only when it has ``deleted_at``), optionally some accounts and columns."""
    chosen = [table.c[name] for name in columns] if columns else list(table.c)
    statement = sa.select(*chosen)
    if "deleted_at" in table.c:
        statement = statement.where(table.c.deleted_at.is_(None))
    if account_ids is not None:
        statement = statement.where(table.c.account_id.in_([int(a) for a in account_ids]))
    primary_key = [column for column in table.primary_key.columns]
    return statement.order_by(*primary_key)


def read_live(engine: Engine | Connection, table: sa.Table, account_ids: Iterable[int] | None = None,
              columns: Sequence[str] | None = None) -> pd.DataFrame:
    statement = live_rows_select(table, account_ids, columns)
    if isinstance(engine, Connection):
        return frame_from_select(engine, statement)
    with engine.connect() as connection:
        return frame_from_select(connection, statement)


def _python_value(value: Any, type_: sa.types.TypeEngine) -> Any:
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(type_, sa.DateTime):
        stamp = pd.Timestamp(value)
        if type_.timezone:
            if stamp.tzinfo is None:
                raise ValueError(f"naive timestamp {stamp} for a timestamptz column")
            return stamp.tz_convert("UTC").to_pydatetime()
        if stamp.tzinfo is not None:
            raise ValueError(f"zoned timestamp {stamp} for a timestamp-without-zone column")
        return stamp.to_pydatetime()
    if isinstance(type_, sa.Date):
        return value if isinstance(value, dt.date) and not isinstance(value, dt.datetime) \
            else pd.Timestamp(value).date()
    if isinstance(type_, sa.Boolean):
        return bool(value)
    if isinstance(type_, sa.Integer):
        return int(value)
    if isinstance(type_, sa.Numeric) and type_.asdecimal and type_.scale is not None:
        return Decimal(f"{float(value):.{type_.scale}f}")
    if isinstance(type_, sa.Float):
        return float(value)
    if isinstance(type_, (sa.String, sa.Text)):
        return str(value)
    return value


def records(frame: pd.DataFrame, table: sa.Table) -> list[dict[str, Any]]:
    """The frame's rows as Python values ready for ``table``; a table column missing from the frame is an error."""
    missing = [column.name for column in table.columns if column.name not in frame.columns]
    if missing:
        raise ValueError(f"{table.fullname}: the computed frame lacks columns {missing}")
    columns = [(column.name, column.type) for column in table.columns]
    values = {name: frame[name].tolist() for name, _ in columns}
    return [{name: _python_value(values[name][row], type_) for name, type_ in columns}
            for row in range(len(frame))]


def replace_account_rows(engine: Engine, table: sa.Table, account_id: int, frame: pd.DataFrame) -> int:
    """Delete the account's rows of ``table`` and insert ``frame``'s, in one transaction; returns rows written."""
    rows = records(frame, table)
    foreign = {row["account_id"] for row in rows} - {account_id}
    if foreign:
        raise ValueError(f"{table.fullname}: rows of accounts {sorted(foreign)} in account {account_id}'s refresh")
    with engine.begin() as connection:
        # Two refreshes of the same account and table queue here instead of interleaving delete and insert.
        connection.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:key))"),
                           {"key": f"{table.fullname}:{account_id}"})
        connection.execute(sa.delete(table).where(table.c.account_id == account_id))
        if rows:
            connection.execute(sa.insert(table), rows)
    return len(rows)


ENTITY_TABLES: dict[str, sa.Table] = {name: entity.table for name, entity in hostaway_tables.ENTITY_TABLES.items()}
