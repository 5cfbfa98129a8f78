"""Analysts' helper for notebooks: ``read_table(name, account_ids=None)`` gives a typed pandas DataFrame.

Uses the database the CLI uses (``HOSTAWAY_DATABASE_URL``, else the embedded Postgres under the pipeline
home), migrated to head. Entity tables of schema ``hostaway`` give live rows only (soft-deleted rows are
left out); tables of ``hostaway_analytics`` are computed from live rows already. Timestamps are zone-aware
(UTC) ``datetime64``; calendar dates and local wall-clock times are naive ``datetime64``; integers and
booleans are nullable (``Int64``, ``boolean``), text is ``string``, money is ``float64``, ``raw`` holds dicts::

    from hostaway_pipeline.analysis import read_table
    revenue = read_table("revenue_monthly", account_ids=[12345])
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd
import sqlalchemy as sa

from hostaway_pipeline.analytics.frames import ENTITY_TABLES, read_live
from hostaway_pipeline.analytics.tables import ANALYTICS_TABLES
from hostaway_pipeline.analytics.tables import SCHEMA as ANALYTICS_SCHEMA
from hostaway_pipeline.storage.tables import SCHEMA as HOSTAWAY_SCHEMA

READABLE_TABLES: dict[str, sa.Table] = {
    **{f"{HOSTAWAY_SCHEMA}.{name}": table for name, table in ENTITY_TABLES.items()},
    **{f"{ANALYTICS_SCHEMA}.{name}": table for name, table in ANALYTICS_TABLES.items()},
}


class UnknownTableError(ValueError):
    """A table name ``read_table`` does not serve; the message lists those it does."""


def resolve_table(name: str) -> sa.Table:
    """``name`` bare (``reservations``) or schema-qualified (``hostaway.reservations``) -> its table."""
    if name in READABLE_TABLES:
        return READABLE_TABLES[name]
    matches = [table for qualified, table in READABLE_TABLES.items() if qualified.split(".", 1)[1] == name]
    if len(matches) == 1:
        return matches[0]
    known = ", ".join(sorted(qualified.split(".", 1)[1] for qualified in READABLE_TABLES))
    raise UnknownTableError(f"unknown table {name!r}: read_table serves {known} (schema-qualified names work "
                            f"too, e.g. {HOSTAWAY_SCHEMA}.reservations)")


def _engine() -> sa.Engine:
    # Imported here: a notebook that only resolves names never starts the embedded Postgres.
    from hostaway_pipeline.environment import prepare_environment
    from hostaway_pipeline.storage.engine import get_engine

    return get_engine(prepare_environment().database_url)


def read_table(name: str, account_ids: Iterable[int] | None = None, engine: sa.Engine | None = None) -> pd.DataFrame:
    """Live rows of one table (optionally of some accounts), typed; see the module docstring."""
    table = resolve_table(name)
    return read_live(engine or _engine(), table, None if account_ids is None else list(account_ids))
