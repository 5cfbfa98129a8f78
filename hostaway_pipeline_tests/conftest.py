"""Test fixtures: a real Postgres for every database test, never a mock.

``HOSTAWAY_TEST_DATABASE_URL`` (a server the tests may create databases on) when set, else the embedded
server under the pipeline home, started once and reused by later runs. Each test session works in a
fresh database of its own, dropped at the end, so it never touches the demo's data.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet
from sqlalchemy.engine import Engine, make_url

from hostaway_pipeline.settings import pipeline_home
from hostaway_pipeline.storage import tables
from hostaway_pipeline.storage.embedded_postgres import create_database_if_missing, ensure_embedded_postgres
from hostaway_pipeline.storage.engine import forget_engines, get_engine, normalize_url

REPOSITORY_ROOT = Path(__file__).resolve().parents[1]


def _server_url() -> str:
    configured = os.environ.get("HOSTAWAY_TEST_DATABASE_URL")
    if configured:
        return normalize_url(configured)
    return ensure_embedded_postgres(pipeline_home())  # HOSTAWAY_PIPELINE_HOME or the default, as the CLI


def _drop_database(admin_url: str, name: str) -> None:
    engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with engine.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


@pytest.fixture(scope="session")
def postgres_server_url() -> str:
    return _server_url()


@pytest.fixture(scope="session")
def make_database(postgres_server_url: str) -> Iterator:
    """Factory for fresh empty databases on the test server; all are dropped at session end."""
    created: list[str] = []
    admin_url = make_url(postgres_server_url).set(database="postgres").render_as_string(hide_password=False)

    def make(prefix: str = "hostaway_test") -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        create_database_if_missing(admin_url, name)
        created.append(name)
        return make_url(postgres_server_url).set(database=name).render_as_string(hide_password=False)

    yield make
    forget_engines()
    for name in created:
        _drop_database(admin_url, name)


@pytest.fixture(scope="session")
def database_url(make_database) -> str:
    """The session's database, migrated to head on first use."""
    return make_database()


@pytest.fixture
def engine(database_url: str) -> Engine:
    """A migrated engine whose hostaway tables are empty at the start of each test."""
    engine = get_engine(database_url)
    with engine.begin() as connection:
        names = ", ".join(f"{tables.SCHEMA}.{table.name}" for table in tables.metadata.sorted_tables)
        connection.execute(sa.text(f"TRUNCATE {names}"))
    return engine


@pytest.fixture(scope="session")
def secret_key() -> str:
    return Fernet.generate_key().decode()


@pytest.fixture
def pipeline_settings_env(monkeypatch, database_url: str, secret_key: str) -> None:
    """Settings as in production: explicit database and key (never the developer's embedded home)."""
    monkeypatch.setenv("HOSTAWAY_DATABASE_URL", database_url)
    monkeypatch.setenv("HOSTAWAY_SECRET_KEY", secret_key)
