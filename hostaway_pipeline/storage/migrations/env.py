"""Alembic environment: runs on the connection handed over by ``storage.migrate`` (or a URL for autogenerate)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import context

from hostaway_pipeline.storage.tables import SCHEMA, metadata

VERSION_TABLE = "alembic_version"


def _include_name(name: str | None, type_: Any, parent_names: Any) -> bool:
    if type_ == "schema":
        return name == SCHEMA
    return True


def _configure(connection: sa.engine.Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table_schema=SCHEMA,
        version_table=VERSION_TABLE,
        include_schemas=True,
        include_name=_include_name,
        compare_type=True,
    )


connection = context.config.attributes.get("connection")
if connection is not None:
    _configure(connection)
    with context.begin_transaction():
        context.run_migrations()
else:  # `alembic revision --autogenerate` from a developer's shell: sqlalchemy.url in the ini / -x url=
    url = context.get_x_argument(as_dictionary=True).get("url") or context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit("pass the database to autogenerate against: alembic -x url=postgresql+psycopg2://...")
    engine = sa.create_engine(url)
    with engine.connect() as own_connection:
        own_connection.execute(sa.text(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}"))
        _configure(own_connection)
        with context.begin_transaction():
            context.run_migrations()
        own_connection.commit()
