"""Schema ``hostaway_analytics`` exists only through Alembic and matches ``analytics/tables.py``."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from hostaway_pipeline.analytics import tables
from hostaway_pipeline.storage.engine import get_engine
from hostaway_pipeline.storage.migrate import downgrade, upgrade


def _analytics_differences(engine: sa.Engine) -> list:
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection,
            opts={"include_schemas": True, "include_name": lambda name, kind, parents: kind != "schema"
                  or name == tables.SCHEMA, "compare_type": True},
        )
        return list(compare_metadata(context, tables.metadata))


def test_head_creates_the_analytics_schema_exactly_as_declared(make_database):
    engine = get_engine(make_database(), migrate=False)
    upgrade(engine, "head")
    assert set(sa.inspect(engine).get_table_names(schema=tables.SCHEMA)) == set(tables.ANALYTICS_TABLES)
    assert _analytics_differences(engine) == []


def test_every_analytics_table_and_column_has_a_comment(make_database):
    engine = get_engine(make_database())
    inspector = sa.inspect(engine)
    for table_name in tables.ANALYTICS_TABLES:
        assert inspector.get_table_comment(table_name, schema=tables.SCHEMA)["text"], table_name
        for column in inspector.get_columns(table_name, schema=tables.SCHEMA):
            assert column.get("comment"), f"{table_name}.{column['name']}"


def test_downgrading_below_the_analytics_revision_drops_the_schema_and_upgrade_restores_it(make_database):
    engine = get_engine(make_database(), migrate=False)
    upgrade(engine, "head")
    downgrade(engine, "0007")
    assert tables.SCHEMA not in sa.inspect(engine).get_schema_names()
    upgrade(engine, "head")
    assert set(sa.inspect(engine).get_table_names(schema=tables.SCHEMA)) == set(tables.ANALYTICS_TABLES)
