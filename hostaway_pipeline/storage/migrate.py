"""Applying Alembic migrations to schema ``hostaway``: safe when many processes start at once.

Every schema change is an Alembic revision under ``storage/migrations/versions``. Upgrades take a
Postgres advisory lock so concurrent first uses (webserver, daemon, run workers) serialize instead of
racing, and the ones that come second find nothing left to do.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy.engine import Connection, Engine

from hostaway_pipeline.storage.tables import SCHEMA

MIGRATIONS_DIRECTORY = Path(__file__).with_name("migrations")
VERSION_TABLE = "alembic_version"
_ADVISORY_LOCK_KEY = "hostaway_pipeline.migrations"


class MigrationError(ValueError):
    """A revision Alembic cannot go to (unknown, or on the wrong side of the current one); nothing changed."""


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIRECTORY))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def known_revisions() -> list[str]:
    """Every revision id, oldest first."""
    scripts = ScriptDirectory.from_config(alembic_config()).walk_revisions()  # newest first
    return [script.revision for script in reversed(list(scripts))]


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"version_table_schema": SCHEMA, "version_table": VERSION_TABLE}
        )
        return context.get_current_revision()


def _run_locked(engine: Engine, action: str, revision: str) -> None:
    with engine.connect() as connection:
        connection.execute(sa.text("SELECT pg_advisory_lock(hashtext(:key))"), {"key": _ADVISORY_LOCK_KEY})
        try:
            # The version table lives in the schema, so the schema must exist before Alembic looks.
            connection.execute(sa.text(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}"))
            connection.commit()
            config = alembic_config(connection)
            try:
                if action == "upgrade":
                    command.upgrade(config, revision)
                else:
                    command.downgrade(config, revision)
            except CommandError as error:
                connection.rollback()
                known = known_revisions()
                raise MigrationError(f"cannot {action} schema {SCHEMA} to {revision!r}: {error} "
                                     f"(revisions {known[0]} to {known[-1]}, head, base)") from None
            connection.commit()
        finally:
            connection.execute(sa.text("SELECT pg_advisory_unlock(hashtext(:key))"), {"key": _ADVISORY_LOCK_KEY})
            connection.commit()


def upgrade_to_head(engine: Engine) -> None:
    """Bring the schema to the newest revision (no-op when already there)."""
    if current_revision(engine) == head_revision():
        return
    _run_locked(engine, "upgrade", "head")


def upgrade(engine: Engine, revision: str = "head") -> None:
    _run_locked(engine, "upgrade", revision)


def downgrade(engine: Engine, revision: str) -> None:
    _run_locked(engine, "downgrade", revision)
