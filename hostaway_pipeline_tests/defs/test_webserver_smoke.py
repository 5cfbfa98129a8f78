"""Smoke test: the real dagster-webserver loads workspace.yaml and shows our assets, schedule and sensors."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

from hostaway_pipeline_tests.cli_runner import isolated_environment

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
QUERY = """
{
  assetNodes { assetKey { path } }
  repositoriesOrError {
    ... on RepositoryConnection { nodes { name schedules { name cronSchedule } sensors { name } } }
  }
}
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_the_webserver_serves_the_four_assets_the_schedule_and_the_sensors(tmp_path, make_database, secret_key):
    environment = isolated_environment(tmp_path, make_database("hostaway_web"), secret_key)
    port = free_port()
    webserver = subprocess.Popen(
        [str(Path(sys.executable).with_name("dagster-webserver")), "-w", "workspace.yaml", "-h", "127.0.0.1",
         "-p", str(port)],
        cwd=REPOSITORY_ROOT, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 180
        body = None
        while time.monotonic() < deadline:
            assert webserver.poll() is None, webserver.stderr.read().decode()[-2000:]
            try:
                response = requests.post(f"http://127.0.0.1:{port}/graphql", json={"query": QUERY}, timeout=10)
                body = response.json()["data"]
                if body["assetNodes"]:
                    break
            except (requests.ConnectionError, ValueError, KeyError, TypeError):
                pass
            time.sleep(1)
        assert body is not None, "the webserver never answered"
        asset_paths = {"/".join(node["assetKey"]["path"]) for node in body["assetNodes"]}
        # The four synced assets and the all-accounts freshness checks' check-only asset (analyst tables too).
        assert asset_paths >= {"hostaway/listings", "hostaway/reservations", "hostaway/conversations",
                               "hostaway/messages", "hostaway/account_freshness"}
        repository = body["repositoriesOrError"]["nodes"][0]
        assert {s["name"]: s["cronSchedule"] for s in repository["schedules"]}["hostaway_account_freshness"] == (
            "30 */6 * * *")
        assert {s["name"] for s in repository["sensors"]} >= {"hostaway_account_partitions",
                                                              "hostaway_reconciliation_pacing"}
    finally:
        webserver.terminate()
        webserver.wait(timeout=30)
