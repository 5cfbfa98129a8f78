"""The demo's UI checked in a real headless Chromium: assets, partitions of both accounts, webhook events.

Runs the live demo (small accounts), then ``ui_check`` against its webserver, then Ctrl-C. Skipped, with
the reason, where Chromium, chromedriver or selenium is missing (``.ci/run`` installs them).
"""

from __future__ import annotations

import re
import signal

import pytest

from hostaway_pipeline.ui_check import check_ui, unavailable_reason
from hostaway_pipeline_tests.local.demo_processes import free_port, start_demo, wait_for_live_phase, wait_none_left

REASON = unavailable_reason()


@pytest.mark.skipif(REASON is not None, reason=f"no real browser here: {REASON}")
def test_the_demo_ui_shows_every_asset_materialized_for_both_accounts_and_webhook_events(demo_environment,
                                                                                       tmp_path):
    port = free_port()
    demo = start_demo(demo_environment, port=port)
    try:
        seen = wait_for_live_phase(demo)
        accounts = sorted({int(found) for line in seen for found in re.findall(r"full read\s+account (\d+)", line)})
        assert len(accounts) == 2, "".join(seen)
        result = check_ui(f"http://127.0.0.1:{port}", accounts, tmp_path, timeout_seconds=300)
        assert not result.missing(accounts) and result.webhook_materializations > 0
        assert all(path.stat().st_size > 10_000 for path in result.screenshots)
    finally:
        demo.send_signal(signal.SIGINT)
        demo.communicate(timeout=120)
    assert wait_none_left(demo_environment["HOSTAWAY_DEMO_TEST_MARKER"]) == []
