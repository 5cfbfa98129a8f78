"""Egress pools: each pool sends from its own IP and books its own IP budget; runs carry and route by their pool.

Two pools side by side on one database, against one stand-in that limits per client IP: each pool's
resources bind their own loopback source address (Linux accepts any 127.x.y.z) and book their own
``ip:<pool>`` bucket, as two workers behind two NAT gateways would. The stand-in's own call log is the
judge: per IP within 15 calls per (scaled) 10 s, no 429, and together above one IP's limit.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import dagster as dg
import pytest
import sqlalchemy as sa

from hostaway_pipeline.defs.assets import HOSTAWAY_ASSETS
from hostaway_pipeline.defs.checks import HOSTAWAY_CHECKS
from hostaway_pipeline.defs.partitions import ACCOUNT_PARTITIONS_NAME, partition_key
from hostaway_pipeline.defs.resources import (
    EgressPoolMismatch,
    HostawayApiResource,
    HostawayRateLimiterResource,
    WarehouseResource,
)
from hostaway_pipeline.defs.run_tags import (
    EGRESS_TAG,
    PRIORITY_TAG,
    account_run_tags,
    egress_tags,
    missing_priority_tags,
)
from hostaway_pipeline.settings import RATE_LIMIT_GUARD_SECONDS_DEFAULT
from hostaway_pipeline.simulator.rate_limits import max_in_any_window
from hostaway_pipeline.simulator.server import SimulatorServer

TIME_SCALE = 10.0  # the stand-in's 10 s windows last 1 s
IP_LIMIT = 15
POOLS = {"pool-a": "127.0.0.2", "pool-b": "127.0.0.3"}  # egress pool -> the source address its workers send from
ACCOUNTS = {"pool-a": (61001, 61002), "pool-b": (62001, 62002)}
FOUR_ASSETS = [*HOSTAWAY_ASSETS, *HOSTAWAY_CHECKS]


@pytest.fixture
def simulator() -> Iterator[SimulatorServer]:
    sizes = {account_id: 12 for accounts in ACCOUNTS.values() for account_id in accounts}
    with SimulatorServer(accounts=sizes, seed=3, time_scale=TIME_SCALE, ip_limit=IP_LIMIT) as server:
        yield server


@pytest.fixture
def warehouse(engine, database_url, simulator, pipeline_settings_env) -> WarehouseResource:
    warehouse = WarehouseResource(database_url=database_url)
    for pool, accounts in ACCOUNTS.items():
        for account_id in accounts:
            warehouse.accounts.add(account_id, simulator.client_secret(account_id), egress_pool=pool)
    return warehouse


def pool_resources(warehouse: WarehouseResource, simulator: SimulatorServer, pool: str) -> dict:
    """What a worker of ``pool`` builds from HOSTAWAY_EGRESS_ID and HOSTAWAY_SOURCE_ADDRESS, time-scaled."""
    window = 10.0 / TIME_SCALE
    limiter = HostawayRateLimiterResource(
        warehouse=warehouse, per_ip=f"{IP_LIMIT}/{window:g}s", per_account=f"20/{window:g}s",
        guard_seconds=RATE_LIMIT_GUARD_SECONDS_DEFAULT / TIME_SCALE, egress_id=pool)
    api = HostawayApiResource(warehouse=warehouse, rate_limiter=limiter, base_url=simulator.base_url,
                              source_address=POOLS[pool], token_activation_delay_seconds=1.0 / TIME_SCALE)
    return {"warehouse": warehouse, "hostaway_rate_limiter": limiter, "hostaway_api": api}


def materialize(resources: dict, account_id: int) -> dg.ExecuteInProcessResult:
    """One account run as a worker executes it: the four assets and their checks for the account's partition."""
    with dg.DagsterInstance.ephemeral() as instance:  # disposed in the thread that made it (in-memory SQLite)
        instance.add_dynamic_partitions(ACCOUNT_PARTITIONS_NAME, [partition_key(account_id)])
        return dg.materialize(FOUR_ASSETS, partition_key=partition_key(account_id), resources=resources,
                              instance=instance, raise_on_error=False)


def test_two_egress_pools_each_stay_within_their_own_ip_limit_and_together_use_both_budgets(
        warehouse, simulator, engine):
    results: dict[int, dg.ExecuteInProcessResult] = {}
    start = threading.Barrier(sum(len(accounts) for accounts in ACCOUNTS.values()))

    def run(pool: str, account_id: int) -> None:
        resources = pool_resources(warehouse, simulator, pool)
        start.wait()
        results[account_id] = materialize(resources, account_id)

    workers = [threading.Thread(target=run, args=(pool, account_id))
               for pool, accounts in ACCOUNTS.items() for account_id in accounts]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=600)

    assert {account_id: result.success for account_id, result in results.items()} == dict.fromkeys(
        [a for accounts in ACCOUNTS.values() for a in accounts], True)
    stats = simulator.stats()
    assert stats["served_429"] == 0
    # Each pool's calls came from its own address, and only its own accounts' calls.
    records = [record for record in simulator.calls() if record["accepted"]]
    for pool, address in POOLS.items():
        assert {record["account_id"] for record in records if record["ip"] == address} <= set(ACCOUNTS[pool])
    assert set(stats["by_ip"]) == set(POOLS.values())
    # Each IP within its own limit, by the stand-in's exact sliding-window count ...
    per_ip = stats["max_calls_in_any_window_per_ip"]
    assert set(per_ip) == set(POOLS.values()) and max(per_ip.values()) <= IP_LIMIT, per_ip
    # ... and together above what one IP may send: both budgets were used at once.
    together = max_in_any_window([record["time"] for record in records], stats["window_seconds"])
    assert together > IP_LIMIT, (together, per_ip)
    # The shared limiter booked each pool's calls on that pool's own IP bucket (a slot given up by a caller
    # that woke too late is booked again, so a bucket may hold a grant or two more than its IP sent).
    with engine.connect() as connection:
        grants = dict(connection.execute(sa.text(
            "SELECT bucket_key, grants FROM hostaway.rate_limit_buckets WHERE bucket_key LIKE 'ip:%'")).all())
    assert set(grants) == {f"ip:{pool}" for pool in POOLS}
    for pool, address in POOLS.items():
        assert grants[f"ip:{pool}"] >= stats["by_ip"][address], (pool, grants, stats["by_ip"])


def test_a_worker_of_another_pool_refuses_the_account_in_one_line_and_sends_nothing(warehouse, simulator, engine):
    resources = pool_resources(warehouse, simulator, "pool-a")
    account_of_b = ACCOUNTS["pool-b"][0]

    with pytest.raises(EgressPoolMismatch) as refused:
        resources["hostaway_api"].client_for(account_of_b)
    message = str(refused.value)
    assert "\n" not in message
    assert f"account {account_of_b} is in egress pool 'pool-b' but this process sends as pool 'pool-a'" in message

    result = materialize(resources, account_of_b)  # a run misrouted to a pool-a worker
    assert not result.success
    failures = {event.step_failure_data.user_failure_data.description for event in result.get_step_failure_events()
                if event.step_failure_data.user_failure_data is not None}
    assert failures == {message}
    assert simulator.stats()["total_calls"] == 0
    with engine.connect() as connection:  # and no budget of any IP was booked
        assert connection.execute(sa.text("SELECT count(*) FROM hostaway.rate_limit_buckets")).scalar() == 0


def test_a_process_takes_its_pool_and_source_address_from_the_environment(warehouse, monkeypatch):
    monkeypatch.setenv("HOSTAWAY_EGRESS_ID", "pool-b")
    monkeypatch.setenv("HOSTAWAY_SOURCE_ADDRESS", "127.0.0.3")
    fresh = WarehouseResource(database_url=warehouse.database_url)  # settings are read once per resource
    api = HostawayApiResource(warehouse=fresh, rate_limiter=HostawayRateLimiterResource(warehouse=fresh))
    assert api.rate_limiter.egress_pool == "pool-b" and api.rate_limiter.limiter.egress_id == "pool-b"
    assert api.transport.source_address == "127.0.0.3"
    api.client_for(ACCOUNTS["pool-b"][0])  # its own pool's account: accepted
    with pytest.raises(EgressPoolMismatch):
        api.client_for(ACCOUNTS["pool-a"][0])


def test_no_run_config_can_name_another_pool_or_source_address():
    from hostaway_pipeline.definitions import defs
    from hostaway_pipeline.defs.jobs import reconcile_account_job

    job = defs.resolve_job_def(reconcile_account_job.name)
    for resource, field in (("hostaway_rate_limiter", "egress_id"), ("hostaway_api", "source_address")):
        with pytest.raises(dg.DagsterInvalidConfigError, match=f'unexpected config entry "{field}"'):
            dg.validate_run_config(job, {"resources": {resource: {"config": {field: "pool-b"}}}})


# ---- run tags ---------------------------------------------------------------------------------------------


def test_account_run_tags_carry_the_egress_pool_when_given():
    assert account_run_tags(7, "cli", "pool-a") == {
        "hostaway/account_id": "7", "hostaway/trigger": "cli", "hostaway/egress": "pool-a"}
    assert EGRESS_TAG not in account_run_tags(7, "cli")


@pytest.mark.parametrize(("tags", "added"), [
    ({"dagster/partition": "7", "dagster/backfill": "bf1"}, {PRIORITY_TAG: "-2"}),
    ({"dagster/backfill": "bf1"}, {PRIORITY_TAG: "-2"}),  # a backfill of unpartitioned work too
    ({"dagster/partition": "7", "dagster/backfill": "bf1", PRIORITY_TAG: "5"}, {}),  # its own priority stays
    ({"dagster/partition": "7"}, {}),  # an interactive run keeps the default 0
    ({"dagster/partition": "7", PRIORITY_TAG: "-1"}, {}),  # a reconciliation keeps its -1
])
def test_backfill_runs_without_a_priority_go_after_reconciliations(tags, added):
    assert missing_priority_tags(tags) == added


def test_egress_tags_follow_the_registry_and_add_the_pools_own_tags():
    pool_tags = {"pool-a": {"dagster-k8s/config": '{"pod_spec_config": {}}'}}
    assert egress_tags({}, "pool-a", pool_tags) == {EGRESS_TAG: "pool-a",
                                                    "dagster-k8s/config": '{"pod_spec_config": {}}'}
    # A re-execution of a run queued before the account moved: the old pool's tags are replaced.
    assert egress_tags({EGRESS_TAG: "pool-a", "dagster-k8s/config": "old"}, "pool-b", pool_tags) == {
        EGRESS_TAG: "pool-b"}
    assert egress_tags({EGRESS_TAG: "pool-b"}, "pool-b", pool_tags) == {}
    assert egress_tags({}, None, pool_tags) == {}  # unregistered: the assets refuse the run anyway


K8S_POOL_A = {"pod_spec_config": {"node_selector": {"hostaway/egress-pool": "pool-a"}},
              "container_config": {"env": [{"name": "HOSTAWAY_EGRESS_ID", "value": "pool-a"}]}}


def submit(instance: dg.DagsterInstance, tags: dict[str, str]) -> dg.DagsterRun:
    """Submit a run as the UI, a schedule or the backfill daemon does: through the instance's run coordinator."""
    from dagster._core.remote_origin import InProcessCodeLocationOrigin, RemoteJobOrigin, RemoteRepositoryOrigin
    from dagster._core.test_utils import create_run_for_test
    from dagster._core.types.loadable_target_origin import LoadableTargetOrigin

    location = InProcessCodeLocationOrigin(
        LoadableTargetOrigin(module_name="hostaway_pipeline.definitions", attribute="defs"),
        location_name="hostaway_pipeline")
    origin = RemoteJobOrigin(RemoteRepositoryOrigin(location, "__repository__"), "reconcile_account")
    run = create_run_for_test(instance, job_name="reconcile_account", tags=tags, remote_job_origin=origin)
    instance.run_coordinator.submit_run(dg.SubmitRunContext(run, workspace=None))  # type: ignore[arg-type]
    stored = instance.get_run_by_id(run.run_id)
    assert stored is not None and stored.status == dg.DagsterRunStatus.QUEUED
    return stored


def test_the_run_coordinator_tags_every_account_run_with_its_pool_before_it_queues(warehouse):
    overrides = {"run_coordinator": {
        "module": "hostaway_pipeline.defs.run_tags", "class": "AccountRunCoordinator",
        "config": {"egress_pool_run_tags": {"pool-a": {"dagster-k8s/config": K8S_POOL_A}}}}}
    submitted = {
        "backfill": {"dagster/partition": "61001", "dagster/backfill": "bf1"},
        "ui": {"dagster/partition": "62001"},
        "schedule": {"dagster/partition": "61002", **account_run_tags(61002, "daily_reconciliation"),
                     PRIORITY_TAG: "-1"},
        "moved": {"dagster/partition": "62002", **account_run_tags(62002, "cli", "pool-a")},
        "unregistered": {"dagster/partition": "99"},
        "not an account run": {},
    }
    with dg.instance_for_test(overrides=overrides) as instance:
        tags = {name: submit(instance, run_tags).tags for name, run_tags in submitted.items()}

    k8s = json.dumps(K8S_POOL_A, sort_keys=True)
    assert {key: tags["backfill"].get(key) for key in ("hostaway/account_id", "hostaway/trigger", EGRESS_TAG,
                                                       "dagster-k8s/config", PRIORITY_TAG)} == {
        "hostaway/account_id": "61001", "hostaway/trigger": "backfill", EGRESS_TAG: "pool-a",
        "dagster-k8s/config": k8s, PRIORITY_TAG: "-2"}
    assert (tags["ui"]["hostaway/trigger"], tags["ui"][EGRESS_TAG]) == ("ui", "pool-b")
    assert "dagster-k8s/config" not in tags["ui"] and PRIORITY_TAG not in tags["ui"]
    assert (tags["schedule"][EGRESS_TAG], tags["schedule"][PRIORITY_TAG]) == ("pool-a", "-1")
    assert tags["moved"][EGRESS_TAG] == "pool-b"  # the registry's pool, not the stale one the caller gave
    assert EGRESS_TAG not in tags["unregistered"] and EGRESS_TAG not in tags["not an account run"]
