"""The benchmark harness itself: its arithmetic, its targets, and one real scenario run end to end.

Only counts are asserted here (calls, 429s, completeness); speed figures are the benchmark's to report,
never a test's to assert.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from benchmarks.__main__ import main
from benchmarks.report import ScenarioResult, Target, render_table
from benchmarks.scenarios import webhook_receiver
from benchmarks.scenarios.multi_process import contention_shares
from benchmarks.scenarios.options import BenchOptions
from benchmarks.scenarios.webhook_receiver import (
    ACCOUNT_IDS,
    DUPLICATE_EVERY,
    DUPLICATE_LAG,
    lost_events,
    prepare_deliveries,
)
from benchmarks.webhook_senders import Outcome


def _call(time: float, account_id: int, accepted: bool = True) -> dict:
    return {"time": time, "account_id": account_id, "accepted": accepted}


def test_contention_window_ends_when_the_first_account_finishes():
    calls = [_call(0.0, 1), _call(0.1, 2), _call(0.2, 1), _call(0.3, 2), _call(0.35, 2, accepted=False),
             _call(0.4, 2), _call(0.5, 2), _call(0.6, 2)]
    shares, seconds = contention_shares(calls, (1, 2))
    # Account 1's last call is at 0.2: inside the window it made 2 of the 3 accepted calls.
    assert shares == {"1": pytest.approx(0.667, abs=1e-3), "2": pytest.approx(0.333, abs=1e-3)}
    assert seconds == pytest.approx(0.2)


def test_targets_decide_missed_figures_and_the_table_says_so():
    result = ScenarioResult("example", "two figures", figures={"served_429": 2, "utilization": 0.97},
                            targets=[Target("served_429", "==", 0), Target("utilization", ">=", 0.95)])
    assert [t.figure for t in result.missed] == ["served_429"]
    table = render_table(result)
    assert "MISSED" in table.splitlines()[2] and "ok" in table.splitlines()[3]


def test_unknown_scenario_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["no_such_scenario"])
    assert exit_info.value.code == 2
    assert "unknown scenario(s) no_such_scenario" in capsys.readouterr().err


@pytest.mark.slow
def test_full_read_scenario_runs_against_a_stand_in_process(postgres_server_url, tmp_path):
    main(["full_read", "--time-scale", "50", "--database-url", postgres_server_url, "--results-dir", str(tmp_path)])
    written = json.loads((tmp_path / "full_read.json").read_text())
    figures = written["figures"]
    assert figures["rows_missing"] == 0
    assert figures["rows_reservations"] == 787 and figures["rows_conversations"] == 787
    # At 50x a window lasts 0.2 s, so a loaded machine's scheduling jitter can still earn the odd 429
    # (the benchmark reports those at 10x); every call beyond the 807 (805 plus the reservations catch-up
    # and the conversations head re-read) must be the retry of one.
    assert figures["calls"] - figures["served_429"] <= 807
    assert figures["client_retries"] >= figures["served_429"]
    assert figures["max_calls_in_a_window_per_ip"] <= 15
    assert {t["figure"] for t in written["targets"]} >= {"calls", "served_429", "utilization"}


def test_webhook_lost_counts_each_acknowledged_event_without_a_row_once():
    first_version, second_version = datetime(2026, 6, 1, tzinfo=UTC), datetime(2026, 6, 1, 0, 0, 1, tzinfo=UTC)
    identities = [(1, "reservation.updated", 7, first_version), (1, "message.received", 8, second_version),
                  (1, "reservation.updated", 7, first_version), (1, "reservation.updated", 9, second_version)]
    outcomes = [Outcome(0, 200, 0.0, 0.01), Outcome(1, 200, 0.0, 0.01), Outcome(2, 200, 0.0, 0.01),
                Outcome(3, 503, 0.0, 0.01)]
    # Event 7 (sent twice) has no row: lost once. Event 9 was answered 503, so its missing row is no loss.
    assert lost_events(identities, outcomes, stored={identities[1]}) == [identities[0]]


def test_webhook_deliveries_resend_one_in_twenty_and_every_other_is_a_new_version():
    truth = {"reservations": [{"id": 1, "updatedOn": "2025-01-01 00:00:00"}],
             "messages": [{"id": 2, "updatedOn": "2025-01-01 00:00:00"}]}
    prepared = prepare_deliveries(dict.fromkeys(ACCOUNT_IDS, truth), 200)
    resent = len(prepared.bodies) - len(set(prepared.bodies))
    assert len(set(prepared.identities)) == 200
    assert resent == sum(1 for number in range(DUPLICATE_LAG, 200) if number % DUPLICATE_EVERY == 0)
    assert {json.loads(body).get("event") or json.loads(body).get("eventType") for body in prepared.bodies} == {
        "reservation.updated", "message.received"}


@pytest.mark.slow
def test_webhook_receiver_scenario_keeps_every_acknowledged_event(postgres_server_url):
    result = webhook_receiver.run(BenchOptions(database_server_url=postgres_server_url),
                                  webhook_receiver.Size(events=300, processes=1, connections_per_process=4))
    figures = result.figures
    resent = sum(1 for number in range(DUPLICATE_LAG, 300) if number % DUPLICATE_EVERY == 0)
    assert figures["acknowledged"] == figures["deliveries"] == 300 + resent
    assert (figures["lost"], figures["not_acknowledged"], figures["stored_not_pending"]) == (0, 0, 0)
    assert figures["stored_rows"] == 300


def test_a_result_carrying_dagster_metadata_values_is_written_as_json(tmp_path):
    """full_sync keeps each asset's materialization metadata, whose column schema is a tuple refusing iteration."""
    import json

    import dagster as dg

    from benchmarks.report import ScenarioResult, write_json

    result = ScenarioResult("probe", "metadata values")
    result.details = {"assets": {"listings": {"dagster/column_schema": dg.TableSchema(
        columns=[dg.TableColumn("id", "bigint")]), "api_calls": 1, "pages": (1, 2)}}}
    written = json.loads(write_json(result, tmp_path).read_text())["details"]["assets"]["listings"]
    assert written["api_calls"] == 1 and written["pages"] == [1, 2]
    assert written["dagster/column_schema"].startswith("TableSchema(columns=[TableColumn(name='id'")
