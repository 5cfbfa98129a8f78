"""SQLAlchemy engines for the warehouse: which database, one engine per URL per process, migrated on first use."""

from __future__ import annotations

import threading

import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url

from hostaway_pipeline.settings import Settings, load_settings
from hostaway_pipeline.storage.embedded_postgres import ensure_embedded_postgres
from hostaway_pipeline.storage.migrate import upgrade_to_head

_engines: dict[str, Engine] = {}
_migrated: set[str] = set()
_lock = threading.Lock()


def resolve_database_url(settings: Settings) -> str:
    """``HOSTAWAY_DATABASE_URL`` when set, else the embedded server (started if needed)."""
    if settings.database_url:
        return normalize_url(settings.database_url)
    return ensure_embedded_postgres(settings.home)


def normalize_url(url: str) -> str:
    """Accept ``postgres://`` and ``postgresql://`` URLs; always use the psycopg2 driver."""
    parsed = make_url(url.replace("postgres://", "postgresql://", 1) if url.startswith("postgres://") else url)
    if parsed.get_backend_name() != "postgresql":
        raise ValueError(f"the warehouse must be PostgreSQL, got a {parsed.get_backend_name()!r} URL")
    return parsed.set(drivername="postgresql+psycopg2").render_as_string(hide_password=False)


def get_engine(url: str, *, migrate: bool = True) -> Engine:
    """One pooled engine per URL in this process; the schema is upgraded to head once per process."""
    url = normalize_url(url)
    with _lock:
        engine = _engines.get(url)
        if engine is None:
            # hide_parameters: a database error's text never carries row values (guest names, messages).
            engine = sa.create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10, hide_parameters=True)
            _engines[url] = engine
        if migrate and url not in _migrated:
            upgrade_to_head(engine)
            _migrated.add(url)
    return engine


def warehouse_engine(settings: Settings | None = None) -> Engine:
    """The engine for the configured warehouse, migrated to head."""
    return get_engine(resolve_database_url(settings or load_settings()))


def forget_engines() -> None:
    """Dispose every cached engine (tests, and after a fork)."""
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()
        _migrated.clear()
