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


def stand_in_environment(tmp_path: Path, database_url: str, secret_key: str, base_url: str,
                         client_secret: str) -> dict[str, str]:
    """An isolated environment whose API is the local stand-in (time scale 50: 0.2 s windows)."""
    environment = isolated_environment(tmp_path, database_url, secret_key)
    environment.update({
        "HOSTAWAY_API_BASE_URL": base_url,
        "HOSTAWAY_RATE_LIMIT_PER_IP": "15/0.2s",
        "HOSTAWAY_RATE_LIMIT_PER_ACCOUNT": "20/0.2s",
        "HOSTAWAY_CLIENT_SECRET": client_secret,
    })
    return environment


def run_cli(*arguments: str, environment: dict[str, str], stdin: str | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "hostaway_pipeline.cli", *arguments],
        env=environment, input=stdin, capture_output=True, text=True, timeout=timeout,
    )
