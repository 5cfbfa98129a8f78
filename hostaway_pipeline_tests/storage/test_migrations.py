"""Schema ``hostaway`` exists only through Alembic: empty -> head -> base, and concurrent upgrades."""

from __future__ import annotations

import threading

import sqlalchemy as sa

from hostaway_pipeline.storage import tables
from hostaway_pipeline.storage.engine import get_engine
from hostaway_pipeline.storage.migrate import current_revision, downgrade, head_revision, upgrade, upgrade_to_head


def _table_names(engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names(schema=tables.SCHEMA))


def test_upgrade_from_empty_to_head_creates_every_declared_table_and_back_down_removes_them(make_database):
    engine = get_engine(make_database(), migrate=False)
    assert current_revision(engine) is None

    upgrade(engine, "head")
    assert current_revision(engine) == head_revision()
    assert _table_names(engine) == {table.name for table in tables.metadata.sorted_tables} | {"alembic_version"}

    downgrade(engine, "base")
    assert current_revision(engine) is None
    assert _table_names(engine) == {"alembic_version"}

    upgrade(engine, "head")
    assert current_revision(engine) == head_revision()


def test_head_schema_matches_the_declared_tables(make_database):
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    engine = get_engine(make_database())
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection,
            opts={"include_schemas": True, "include_name": lambda name, kind, parents: kind != "schema"
                  or name == tables.SCHEMA, "compare_type": True},
        )
        differences = [d for d in compare_metadata(context, tables.metadata) if "alembic_version" not in str(d)]
    assert differences == []


def test_every_table_and_column_has_a_comment(engine):
    inspector = sa.inspect(engine)
    for table_name in inspector.get_table_names(schema=tables.SCHEMA):
        if table_name == "alembic_version":
            continue
        assert inspector.get_table_comment(table_name, schema=tables.SCHEMA)["text"], table_name
        for column in inspector.get_columns(table_name, schema=tables.SCHEMA):
            assert column.get("comment"), f"{table_name}.{column['name']}"


def test_concurrent_first_uses_do_not_race(make_database):
    url = make_database()
    errors: list[BaseException] = []

    def first_use() -> None:
        try:
            engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
            upgrade_to_head(engine)
            engine.dispose()
        except BaseException as error:  # collected and asserted below
            errors.append(error)

    threads = [threading.Thread(target=first_use) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert current_revision(get_engine(url, migrate=False)) == head_revision()
