"""``hostaway-pipeline simulator serve`` starts the stand-in as its own process."""

from __future__ import annotations

import subprocess
import sys

import requests

from hostaway_pipeline_tests.defs.test_webserver_smoke import free_port


def test_simulator_serve_answers_on_the_given_port_until_terminated():
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "hostaway_pipeline.cli", "simulator", "serve", "--port", str(port),
         "--accounts", "10001:5,10002:empty", "--seed", "3", "--time-scale", "10"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        banner = process.stdout.readline()
        assert f"http://127.0.0.1:{port}/v1" in banner
        health = requests.get(f"http://127.0.0.1:{port}/__admin/health", timeout=5)
        assert health.json()["status"] == "ok"
        accounts = requests.get(f"http://127.0.0.1:{port}/__admin/accounts", timeout=5).json()
        assert {int(a["account_id"]) for a in accounts} == {10001, 10002}
    finally:
        process.terminate()
        assert process.wait(timeout=30) == 0


def test_simulator_serve_rejects_a_bad_accounts_spec():
    result = subprocess.run([sys.executable, "-m", "hostaway_pipeline.cli", "simulator", "serve", "--accounts",
                             "abc:seed"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "bad account id" in result.stderr
