"""The whole Definitions loads and validates: a broken import or wiring fails here first."""

from __future__ import annotations

import dagster as dg
from dagster._utils.tags import TagConcurrencyLimitsCounter

from hostaway_pipeline.definitions import defs
from hostaway_pipeline.defs.webhook_jobs import apply_webhook_events_job
from hostaway_pipeline_tests.conftest import REPOSITORY_ROOT


def test_the_definitions_load_and_validate():
    dg.Definitions.validate_loadable(defs)
    repository = defs.get_repository_def()
    asset_keys = {key.to_user_string() for key in repository.asset_graph.materializable_asset_keys}
    assert asset_keys == {"hostaway/listings", "hostaway/reservations", "hostaway/conversations", "hostaway/messages",
                          "hostaway_analytics/reservation_nights", "hostaway_analytics/listing_occupancy_monthly",
                          "hostaway_analytics/revenue_monthly", "hostaway_analytics/guest_response_times"}
    # The all-accounts freshness checks' check-only asset: nothing materializes it.
    external = {key.to_user_string() for key in repository.asset_graph.external_asset_keys}
    assert external == {"hostaway/account_freshness"}
    assert "hostaway_account_freshness" in {s.name for s in repository.schedule_defs}
    assert {"hostaway_account_partitions", "hostaway_reconciliation_pacing"} <= {s.name for s in repository.sensor_defs}
    assert set(defs.resources) == {"warehouse", "hostaway_rate_limiter", "hostaway_api"}


def test_api_calling_assets_share_one_pool_and_messages_follow_conversations():
    repository = defs.get_repository_def()
    graph = repository.asset_graph
    for name in ("listings", "reservations", "conversations", "messages"):
        node = graph.get(dg.AssetKey(["hostaway", name]))
        assert node.pools == {"hostaway_api"}
    assert dg.AssetKey(["hostaway", "conversations"]) in graph.get(dg.AssetKey(["hostaway", "messages"])).parent_keys


def test_the_production_instance_queues_runs_with_one_run_per_account_at_a_time(tmp_path, monkeypatch, database_url):
    """dagster.yaml on real Postgres storage: run queue limit, and runs of one account partition serialized."""
    (tmp_path / "dagster.yaml").write_text((REPOSITORY_ROOT / "dagster.yaml").read_text())
    monkeypatch.setenv("HOSTAWAY_DAGSTER_DATABASE_URL", database_url)
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        assert type(instance.run_coordinator).__name__ == "AccountRunCoordinator"
        assert isinstance(instance.run_coordinator, dg.QueuedRunCoordinator)
        assert instance.run_coordinator.dequeue_interval_seconds == 1
        config = instance.get_concurrency_config()
        assert config.run_queue_config.max_concurrent_runs == 4
        limits = config.run_queue_config.tag_concurrency_limits
        assert config.pool_config.pool_granularity.value == "op"
        assert instance.run_monitoring_enabled and instance.run_retries_enabled
        assert instance.run_retries_max_retries == 1
    account_run = {"dagster/partition": "101"}
    three_accounts = [_Tagged({"dagster/partition": str(account_id)}) for account_id in (1, 2, 3)]
    assert TagConcurrencyLimitsCounter(limits, [_Tagged(account_run)]).is_blocked(_Tagged(account_run))
    assert not TagConcurrencyLimitsCounter(limits, [_Tagged({"dagster/partition": "7"})]).is_blocked(
        _Tagged(account_run))
    # Three account runs in flight: a fourth waits, the webhook apply run takes the kept slot.
    assert TagConcurrencyLimitsCounter(limits, three_accounts).is_blocked(_Tagged(account_run))
    apply_run = _Tagged(dict(apply_webhook_events_job.tags))
    assert not TagConcurrencyLimitsCounter(limits, three_accounts).is_blocked(apply_run)


class _Tagged:
    """What the run queue looks at: a run's tags."""

    def __init__(self, tags: dict[str, str]) -> None:
        self.tags = tags


def test_the_instance_yaml_repeats_no_key_and_no_limit():
    """YAML keeps only the last of two equal keys: a repeated block would silently hide the first."""
    import yaml

    class StrictLoader(yaml.SafeLoader):
        pass

    def mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict:
        keys = [loader.construct_object(key) for key, _ in node.value]
        assert len(keys) == len(set(keys)), f"repeated keys {sorted(k for k in keys if keys.count(k) > 1)}"
        return loader.construct_mapping(node)

    StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    config = yaml.load((REPOSITORY_ROOT / "dagster.yaml").read_text(), Loader=StrictLoader)
    limits = [repr(limit) for limit in config["concurrency"]["runs"]["tag_concurrency_limits"]]
    assert len(limits) == len(set(limits))


def test_the_code_location_module_holds_exactly_one_definitions_object():
    """Dagster refuses to load a module with two Definitions at module scope (e.g. an imported one to merge)."""
    import hostaway_pipeline.definitions as module

    found = [name for name, value in vars(module).items() if isinstance(value, dg.Definitions)]
    assert found == ["defs"]


def test_the_instance_needs_no_exported_dagster_url(tmp_path, monkeypatch, database_url):
    """A bare `dagster dev` in the repository root reads ./dagster.yaml with nothing exported."""
    (tmp_path / "dagster.yaml").write_text((REPOSITORY_ROOT / "dagster.yaml").read_text())
    monkeypatch.delenv("HOSTAWAY_DAGSTER_DATABASE_URL", raising=False)
    monkeypatch.setenv("HOSTAWAY_DATABASE_URL", database_url)
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        assert instance.run_storage.postgres_url.endswith("/" + database_url.rsplit("/", 1)[1])
        assert instance.get_runs(limit=1) == []  # the storage answers
