"""The Dagster instance's storage: dagster-postgres on the database the pipeline resolves, env or not.

``dagster.yaml`` names this class instead of ``storage: postgres: postgres_url: env: ...`` so that every
way of starting Dagster lands on the same instance: ``hostaway-pipeline dev`` (which exports the URL),
a production daemon with ``HOSTAWAY_DAGSTER_DATABASE_URL`` set, and a bare ``dagster dev`` in the
repository root, which reads ``./dagster.yaml`` with nothing exported (Dagster's own ``env:`` source would
stop it with a traceback). The URL is ``HOSTAWAY_DAGSTER_DATABASE_URL`` when set, else the warehouse's
(``HOSTAWAY_DATABASE_URL``, or the embedded Postgres, started if needed), exactly as ``environment.py``
resolves it for the CLI. A setting that cannot be resolved stops with one line naming it.
"""

from __future__ import annotations

from typing import Any

from dagster_postgres import DagsterPostgresStorage


class HostawayDagsterStorage(DagsterPostgresStorage):
    """``DagsterPostgresStorage`` whose URL comes from the pipeline's settings, not from instance config."""

    @classmethod
    def config_type(cls) -> dict[str, Any]:
        return {}

    @classmethod
    def from_config_value(cls, inst_data: Any,  # Dagster's ConfigurableClassData (not a public name)
                          config_value: Any) -> HostawayDagsterStorage:
        return cls(postgres_url=dagster_database_url(), inst_data=inst_data)


def dagster_database_url() -> str:
    """The URL Dagster's storage uses; a ``ConfigurationError`` (one line) when settings are wrong."""
    from hostaway_pipeline.settings import load_settings
    from hostaway_pipeline.storage.engine import normalize_url, resolve_database_url

    settings = load_settings()
    return normalize_url(settings.dagster_database_url or resolve_database_url(settings))
