"""``status``'s failing checks come from each check's latest evaluation, however long the history grows.

A real Dagster instance on Postgres; evaluations are reported as run events, as a run would store them.
The long history is made by copying one stored evaluation row in SQL (reporting thousands through the
API would take minutes).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from types import SimpleNamespace

import dagster as dg
import pytest
import sqlalchemy as sa
from dagster._core.events import DagsterEvent, DagsterEventType

from hostaway_pipeline.defs.partitions import partition_key
from hostaway_pipeline.orchestration import account_statuses, asset_key

CHECK = "row_count_matches_api"
SHOWN = f"hostaway/listings:{CHECK}"
EARLY_FAILING, LATER_FAILING, FILLER = 51001, 51002, 51003


@pytest.fixture
def postgres_instance(make_database) -> Iterator[tuple[dg.DagsterInstance, str]]:
    url = make_database("hostaway_dagster_status")
    with dg.instance_for_test(overrides={"storage": {"postgres": {"postgres_url": url}}}) as instance:
        yield instance, url


def evaluate(instance: dg.DagsterInstance, account_id: int, passed: bool) -> None:
    evaluation = dg.AssetCheckEvaluation(asset_key=asset_key("listings"), check_name=CHECK, passed=passed,
                                         partition=partition_key(account_id))
    instance.report_dagster_event(
        DagsterEvent(event_type_value=DagsterEventType.ASSET_CHECK_EVALUATION.value,
                     event_specific_data=evaluation, job_name="reconcile_hostaway_account"),
        run_id=uuid.uuid4().hex,
    )


def failing(instance: dg.DagsterInstance, engine, *account_ids: int) -> dict[int, list[str]]:
    accounts = [SimpleNamespace(account_id=account_id, enabled=True) for account_id in account_ids]
    return {status.account_id: status.failing_checks for status in account_statuses(instance, engine, accounts)}


def test_a_later_passing_evaluation_supersedes_an_earlier_failing_one(postgres_instance, engine):
    instance, _ = postgres_instance
    evaluate(instance, EARLY_FAILING, passed=False)
    evaluate(instance, LATER_FAILING, passed=True)
    assert failing(instance, engine, EARLY_FAILING, LATER_FAILING) == {EARLY_FAILING: [SHOWN], LATER_FAILING: []}
    evaluate(instance, EARLY_FAILING, passed=True)
    evaluate(instance, LATER_FAILING, passed=False)
    assert failing(instance, engine, EARLY_FAILING, LATER_FAILING) == {EARLY_FAILING: [], LATER_FAILING: [SHOWN]}


def test_the_latest_evaluations_count_after_thousands_of_older_ones(postgres_instance, engine):
    instance, url = postgres_instance
    evaluate(instance, EARLY_FAILING, passed=False)
    evaluate(instance, FILLER, passed=True)
    dagster_db = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with dagster_db.begin() as connection:
        copied = connection.execute(sa.text(
            "INSERT INTO event_logs (run_id, event, dagster_event_type, timestamp, step_key, asset_key, partition) "
            "SELECT run_id, event, dagster_event_type, timestamp, step_key, asset_key, partition "
            "FROM event_logs, generate_series(1, 6000) "
            "WHERE id = (SELECT max(id) FROM event_logs WHERE dagster_event_type = 'ASSET_CHECK_EVALUATION')"
        )).rowcount
    dagster_db.dispose()
    assert copied == 6000
    evaluate(instance, EARLY_FAILING, passed=True)
    evaluate(instance, LATER_FAILING, passed=False)
    assert failing(instance, engine, EARLY_FAILING, LATER_FAILING, FILLER) == {
        EARLY_FAILING: [], LATER_FAILING: [SHOWN], FILLER: [],
    }
