"""Wiring a benchmark: a fresh database on the warehouse server and the pipeline's real resources.

Each benchmark run gets its own database (``hostaway_bench_<random>``, dropped afterwards) on the
server ``--database-url`` / ``HOSTAWAY_BENCH_DATABASE_URL`` names, else on the embedded Postgres, so
the limiter's buckets and the token cache start empty and the demo's data is never touched. The
resources are the same Dagster resources the assets use, with the stand-in's time-scaled limits; the
limiter's absolute jitter guard is time-scaled with them (0.1 s / K), so its spacing keeps the
production proportions (the jitter of this machine is of course not scaled: at K = 10 the bench holds
the pacing to a tolerance 10x tighter, relative to the window, than the real API needs).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import sqlalchemy as sa
from cryptography.fernet import Fernet
from sqlalchemy.engine import make_url

from hostaway_pipeline.defs.resources import HostawayApiResource, HostawayRateLimiterResource, WarehouseResource
from hostaway_pipeline.settings import RATE_LIMIT_GUARD_SECONDS_DEFAULT, load_settings
from hostaway_pipeline.storage.embedded_postgres import create_database_if_missing
from hostaway_pipeline.storage.engine import forget_engines, normalize_url, resolve_database_url


@dataclass(frozen=True)
class BenchTarget:
    """Where a benchmark's pipeline points: one database, one stand-in, one time scale."""

    database_url: str
    base_url: str
    time_scale: float

    @property
    def window_seconds(self) -> float:
        return 10.0 / self.time_scale

    @property
    def guard_seconds(self) -> float:
        return RATE_LIMIT_GUARD_SECONDS_DEFAULT / self.time_scale

    def api_resource(self, message_workers: int = 4) -> HostawayApiResource:
        warehouse = WarehouseResource(database_url=self.database_url)
        limiter = HostawayRateLimiterResource(
            warehouse=warehouse, per_ip=f"15/{self.window_seconds:g}s", per_account=f"20/{self.window_seconds:g}s",
            guard_seconds=self.guard_seconds,
        )
        return HostawayApiResource(warehouse=warehouse, rate_limiter=limiter, base_url=self.base_url,
                                   message_workers=message_workers,
                                   token_activation_delay_seconds=1.0 / self.time_scale)


def server_url(explicit: str | None) -> str:
    configured = explicit or os.environ.get("HOSTAWAY_BENCH_DATABASE_URL")
    return normalize_url(configured) if configured else resolve_database_url(load_settings())


@contextmanager
def fresh_database(server: str) -> Iterator[str]:
    """A new empty database on ``server`` (migrated on first use by ``get_engine``), dropped on exit."""
    name = f"hostaway_bench_{uuid.uuid4().hex[:10]}"
    admin_url = make_url(server).set(database="postgres").render_as_string(hide_password=False)
    create_database_if_missing(admin_url, name)
    # Secrets of the throwaway accounts are encrypted with a throwaway key, never the home's key.
    os.environ.setdefault("HOSTAWAY_SECRET_KEY", Fernet.generate_key().decode())
    try:
        yield make_url(server).set(database=name).render_as_string(hide_password=False)
    finally:
        forget_engines()
        engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
        with engine.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()
