"""Prepares a process (CLI, `dagster dev`, tests) to share one database and one Dagster instance.

Resolves the warehouse (starting the embedded Postgres when ``HOSTAWAY_DATABASE_URL`` is unset), and
exports what child processes need so the webserver, the daemon, code servers and run workers all land
on the same database and instance: ``HOSTAWAY_PIPELINE_HOME`` (absolute, so children find the same
embedded server), ``HOSTAWAY_DAGSTER_DATABASE_URL`` (defaults to the warehouse database) and
``DAGSTER_HOME`` (defaults to ``<home>/dagster`` holding a copy of the packaged ``dagster.yaml``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from hostaway_pipeline.settings import ConfigurationError, Settings, load_settings
from hostaway_pipeline.storage.engine import normalize_url, resolve_database_url

INSTANCE_TEMPLATE = Path(__file__).with_name("dagster_instance.yaml")


@dataclass(frozen=True)
class PreparedEnvironment:
    settings: Settings
    database_url: str = field(repr=False)  # may carry a password
    dagster_home: Path


def prepare_environment(settings: Settings | None = None) -> PreparedEnvironment:
    settings = settings or load_settings()
    configured_dagster_home = _configured_dagster_home()  # checked before anything starts
    database_url = resolve_database_url(settings)
    os.environ["HOSTAWAY_PIPELINE_HOME"] = str(settings.home)
    # dagster-postgres hands the URL to SQLAlchemy, whose bare postgresql:// means psycopg 3 since 2.1:
    # pin the one driver we ship.
    os.environ["HOSTAWAY_DAGSTER_DATABASE_URL"] = normalize_url(settings.dagster_database_url or database_url)
    dagster_home = configured_dagster_home or settings.dagster_home
    if configured_dagster_home is None:
        write_instance_config(dagster_home)
    os.environ["DAGSTER_HOME"] = str(dagster_home)
    return PreparedEnvironment(load_settings(), database_url, dagster_home)


def _configured_dagster_home() -> Path | None:
    """``DAGSTER_HOME`` when set (empty means unset, as for every variable): an existing absolute directory."""
    configured = (os.environ.get("DAGSTER_HOME") or "").strip()
    if not configured:
        return None
    if not Path(configured).is_absolute() or not Path(configured).is_dir():
        raise ConfigurationError(
            f"DAGSTER_HOME={configured!r} must be the absolute path of an existing directory holding "
            "dagster.yaml (or unset, for <home>/dagster)"
        )
    return Path(configured)


def write_instance_config(dagster_home: Path) -> None:
    """Keep ``<dagster_home>/dagster.yaml`` equal to the packaged template."""
    dagster_home.mkdir(parents=True, exist_ok=True)
    target = dagster_home / "dagster.yaml"
    template = INSTANCE_TEMPLATE.read_text()
    if not target.exists() or target.read_text() != template:
        temporary = target.with_suffix(f".tmp{os.getpid()}")
        temporary.write_text(template)
        temporary.replace(target)
