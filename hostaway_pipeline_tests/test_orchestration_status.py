"""``status``: failing checks from each check's latest evaluation however long the history grows, the
latest run of each account (a failed one with its run id and failed steps), in a number of queries that
does not grow with the number of accounts.

A real Dagster instance on Postgres; evaluations are reported as run events, as a run would store them.
The long history is made by copying one stored evaluation row in SQL (reporting thousands through the
API would take minutes). Runs are of stand-in assets with the real keys and partitions.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from types import SimpleNamespace

import dagster as dg
import pytest
import sqlalchemy as sa
from dagster._core.events import DagsterEvent, DagsterEventType

from hostaway_pipeline.defs.partitions import ACCOUNT_PARTITIONS_NAME, account_partitions, partition_key
from hostaway_pipeline.defs.run_tags import ACCOUNT_ID_TAG, TRIGGER_TAG
from hostaway_pipeline.orchestration import AccountStatus, account_statuses, asset_key

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


# Stand-ins with the real asset keys and partitions: ``status`` reads runs and events, not what the steps did.
SUCCEEDS, FAILS_NOW, NEVER_RUN = 52001, 52002, 52003


@dg.asset(key=asset_key("listings"), partitions_def=account_partitions)
def stand_in_listings(context) -> dg.MaterializeResult:  # no hint: the module's annotations are strings
    if context.run.tags.get("fail") == "yes":
        raise dg.Failure(description=f"account {context.partition_key} listings: read 0 of the 5 objects the API "
                                     "counted, so the read is incomplete")
    return dg.MaterializeResult()


@dg.asset(key=asset_key("reservations"), partitions_def=account_partitions, deps=[stand_in_listings])
def stand_in_reservations() -> dg.MaterializeResult:
    return dg.MaterializeResult()


@dg.asset(key=["hostaway_analytics", "reservation_nights"], partitions_def=account_partitions)
def stand_in_analytics() -> dg.MaterializeResult:
    return dg.MaterializeResult()


def run_for(instance: dg.DagsterInstance, account_id: int, fail: bool = False,
            trigger: str = "cli") -> dg.ExecuteInProcessResult:
    instance.add_dynamic_partitions(ACCOUNT_PARTITIONS_NAME, [partition_key(account_id)])
    return dg.materialize([stand_in_listings, stand_in_reservations], partition_key=partition_key(account_id),
                          instance=instance, raise_on_error=False,
                          tags={ACCOUNT_ID_TAG: str(account_id), TRIGGER_TAG: trigger, "fail": "yes" if fail else "no"})


def statuses(instance: dg.DagsterInstance, engine, account_ids) -> dict[int, AccountStatus]:
    accounts = [SimpleNamespace(account_id=account_id, enabled=True) for account_id in account_ids]
    return {status.account_id: status for status in account_statuses(instance, engine, accounts)}


def test_an_account_whose_latest_run_failed_is_reported_failed_with_its_run_and_failed_steps(postgres_instance,
                                                                                              engine):
    instance, _ = postgres_instance
    assert run_for(instance, FAILS_NOW).success
    failed = run_for(instance, FAILS_NOW, fail=True)
    assert not failed.success
    # Runs after it that reconcile nothing (the account's analytics, an intraday pass) hide no failure.
    for trigger in ("analytics", "intraday"):
        assert dg.materialize([stand_in_analytics], partition_key=partition_key(FAILS_NOW), instance=instance,
                              tags={ACCOUNT_ID_TAG: str(FAILS_NOW), TRIGGER_TAG: trigger}).success
    assert not run_for(instance, SUCCEEDS, fail=True).success
    succeeded = run_for(instance, SUCCEEDS)  # a later success supersedes the earlier failure

    found = statuses(instance, engine, [FAILS_NOW, SUCCEEDS, NEVER_RUN])
    latest = found[FAILS_NOW].latest_run
    assert latest is not None and latest.failed and latest.run_id == failed.run_id
    assert latest.status == "FAILURE"
    assert latest.not_materialized == ["listings", "reservations"]  # reservations never ran behind listings
    assert latest.failed_steps == [f"hostaway__listings: account {FAILS_NOW} listings: read 0 of the 5 objects the "
                                   "API counted, so the read is incomplete"]
    assert found[FAILS_NOW].last_sync["listings"] is not None  # the earlier success is still the last sync
    ok = found[SUCCEEDS].latest_run
    assert ok is not None and not ok.failed and ok.run_id == succeeded.run_id and ok.status == "SUCCESS"
    assert ok.not_materialized == [] and ok.failed_steps == []
    assert found[NEVER_RUN].latest_run is None and found[NEVER_RUN].last_sync["listings"] is None


@pytest.fixture
def statements_sent() -> Iterator[list[str]]:
    """Every statement any SQLAlchemy engine sends (the warehouse's and the Dagster instance's storages)."""
    sent: list[str] = []

    def record(connection, cursor, statement, *rest) -> None:
        sent.append(statement)

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", record)
    yield sent
    sa.event.remove(sa.engine.Engine, "before_cursor_execute", record)


def test_status_makes_as_many_queries_for_300_accounts_as_for_3(postgres_instance, engine, statements_sent):
    instance, _ = postgres_instance
    run_for(instance, SUCCEEDS)
    run_for(instance, FAILS_NOW, fail=True)
    evaluate(instance, SUCCEEDS, passed=False)
    few = [SUCCEEDS, FAILS_NOW, NEVER_RUN]
    many = few + list(range(60001, 60298))

    statuses(instance, engine, few)  # Dagster reflects a few storage tables once per instance
    statements_sent.clear()
    found_few = statuses(instance, engine, few)
    queries_for_few = len(statements_sent)
    statements_sent.clear()
    found_many = statuses(instance, engine, many)
    queries_for_many = len(statements_sent)

    # About 45: ours (live rows, sync states, latest runs, per asset and per check) plus Dagster's own lookups.
    assert queries_for_many == queries_for_few <= 60, statements_sent
    assert len(found_many) == 300
    assert found_many[FAILS_NOW].latest_run.failed and found_many[SUCCEEDS].failing_checks == [SHOWN]
    assert found_many[FAILS_NOW].latest_run == found_few[FAILS_NOW].latest_run
