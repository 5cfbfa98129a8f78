"""The whole Definitions loads and validates: a broken import or wiring fails here first."""

from __future__ import annotations

import dagster as dg

from hostaway_pipeline.definitions import defs


def test_the_definitions_load_and_validate():
    dg.Definitions.validate_loadable(defs)
    repository = defs.get_repository_def()
    asset_keys = {key.to_user_string() for key in repository.asset_graph.get_all_asset_keys()}
    assert asset_keys == {"hostaway/listings", "hostaway/reservations", "hostaway/conversations", "hostaway/messages"}
    assert {s.name for s in repository.schedule_defs} == {"daily_hostaway_reconciliation"}
    assert "hostaway_account_partitions" in {s.name for s in repository.sensor_defs}
    assert set(defs.resources) == {"warehouse", "hostaway_rate_limiter", "hostaway_api"}


def test_api_calling_assets_share_one_pool_and_messages_follow_conversations():
    repository = defs.get_repository_def()
    graph = repository.asset_graph
    for name in ("listings", "reservations", "conversations", "messages"):
        node = graph.get(dg.AssetKey(["hostaway", name]))
        assert node.pools == {"hostaway_api"}
    assert dg.AssetKey(["hostaway", "conversations"]) in graph.get(dg.AssetKey(["hostaway", "messages"])).parent_keys
