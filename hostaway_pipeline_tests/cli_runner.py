"""Runs the real ``hostaway-pipeline`` command in a subprocess, as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from hostaway_pipeline.environment import write_instance_config


def isolated_environment(tmp_path: Path, database_url: str | None, secret_key: str) -> dict[str, str]:
    """An environment pointing the CLI at ``database_url`` (or the embedded default under tmp_path)."""
    environment = {
        key: value for key, value in os.environ.items()
        if not key.startswith(("HOSTAWAY_", "DAGSTER_"))
    }
    environment["HOSTAWAY_PIPELINE_HOME"] = str(tmp_path / "home")
    environment["HOSTAWAY_SECRET_KEY"] = secret_key
    if database_url is not None:
        environment["HOSTAWAY_DATABASE_URL"] = database_url
        environment["HOSTAWAY_DAGSTER_DATABASE_URL"] = database_url
        write_instance_config(tmp_path / "dagster")
        environment["DAGSTER_HOME"] = str(tmp_path / "dagster")
    return environment


def run_cli(*arguments: str, environment: dict[str, str], stdin: str | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "hostaway_pipeline.cli", *arguments],
        env=environment, input=stdin, capture_output=True, text=True, timeout=timeout,
    )
