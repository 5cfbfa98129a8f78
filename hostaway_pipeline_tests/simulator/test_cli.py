"""The ``simulator serve`` command: mounting in a parent CLI, banner, serving, clean stop on a signal."""

from __future__ import annotations

import argparse
import io
import os
import re
import signal
import subprocess
import sys
import threading
import time

import pytest
import requests

from hostaway_pipeline.simulator import cli


def test_add_arguments_fills_the_parent_clis_serve_parser() -> None:
    parser = argparse.ArgumentParser(prog="hostaway-pipeline simulator serve")
    cli.add_arguments(parser)
    namespace = parser.parse_args(
        ["--port", "0", "--accounts", "1:seed,2:5", "--seed", "3", "--time-scale", "50"]
        + ["--token-shape", "wrapped", "--host", "127.0.0.1"]
    )
    assert (namespace.port, namespace.accounts, namespace.seed) == (0, "1:seed,2:5", 3)
    assert (namespace.time_scale, namespace.token_shape, namespace.host) == (50.0, "wrapped", "127.0.0.1")
    assert (namespace.after_id_reading, namespace.after_id_unknown, namespace.count_with_cursor) == (
        "keyset",
        "empty",
        "total",
    )


def test_after_id_switches_parse_and_reject_unknown_readings() -> None:
    parser = argparse.ArgumentParser(prog="serve")
    cli.add_arguments(parser)
    namespace = parser.parse_args(
        ["--after-id-reading", "id_order", "--after-id-unknown", "error", "--count-with-cursor", "remaining"]
    )
    assert (namespace.after_id_reading, namespace.after_id_unknown, namespace.count_with_cursor) == (
        "id_order",
        "error",
        "remaining",
    )
    with pytest.raises(SystemExit):
        parser.parse_args(["--after-id-reading", "sideways"])


def test_serve_prints_base_url_and_secrets_then_serves_until_stopped() -> None:
    out = io.StringIO()
    stop = threading.Event()
    thread = threading.Thread(
        target=cli.serve,
        kwargs={
            "port": 0,
            "accounts_spec": "61001:5,61002:empty",
            "seed": 4,
            "time_scale": 50.0,
            "after_id_reading": "ignored",
            "after_id_unknown": "first_page",
            "count_with_cursor": "remaining",
            "out": out,
            "stop_event": stop,
        },
    )
    thread.start()
    deadline = time.monotonic() + 10
    while "61002" not in out.getvalue() and time.monotonic() < deadline:
        time.sleep(0.02)
    banner = out.getvalue()
    base_url = re.search(r"base URL (\S+)", banner).group(1)  # type: ignore[union-attr]
    secret = re.search(r"account 61001 .*client_secret=(\w+)", banner).group(1)  # type: ignore[union-attr]
    token = requests.post(
        f"{base_url}/accessTokens",
        timeout=10,
        data={
            "grant_type": "client_credentials",
            "client_id": "61001",
            "client_secret": secret,
            "scope": "general",
        },
    )
    config = requests.get(base_url.replace("/v1", "/__admin/config"), timeout=10).json()
    stop.set()
    thread.join(timeout=10)
    assert token.status_code == 200
    assert (config["after_id_reading"], config["after_id_unknown"], config["count_with_cursor"]) == (
        "ignored",
        "first_page",
        "remaining",
    )
    assert not thread.is_alive() and "stopped" in out.getvalue()


def test_module_entry_point_serves_and_exits_cleanly_on_sigterm() -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hostaway_pipeline.simulator",
            "serve",
            "--port",
            "0",
            "--accounts",
            "62001:empty",
            "--after-id-reading",
            "id_order",
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        first_line = process.stdout.readline()
        base_url = first_line.rsplit(" ", 1)[-1].strip()
        health = requests.get(base_url.replace("/v1", "/__admin/health"), timeout=10)
        config = requests.get(base_url.replace("/v1", "/__admin/config"), timeout=10).json()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
    assert health.json()["status"] == "ok"
    assert config["after_id_reading"] == "id_order"  # the option reaches the server through run()


def test_bad_accounts_spec_exits_with_status_2() -> None:
    assert cli.main(["serve", "--accounts", "nonsense"]) == 2
