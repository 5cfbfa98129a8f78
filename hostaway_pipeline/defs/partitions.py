"""One Dagster partition per Hostaway account: a dynamic partitions definition keyed by account id."""

from __future__ import annotations

from collections.abc import Iterable

import dagster as dg

ACCOUNT_PARTITIONS_NAME = "hostaway_accounts"
account_partitions = dg.DynamicPartitionsDefinition(name=ACCOUNT_PARTITIONS_NAME)


def partition_key(account_id: int) -> str:
    return str(account_id)


def registered_account_ids(instance: dg.DagsterInstance) -> set[int]:
    return {int(key) for key in instance.get_dynamic_partitions(ACCOUNT_PARTITIONS_NAME)}


def reconcile_account_partitions(instance: dg.DagsterInstance, enabled_account_ids: Iterable[int]) -> tuple[
    list[int], list[int]
]:
    """Make the partitions equal to ``enabled_account_ids``; returns (added, removed)."""
    wanted = set(enabled_account_ids)
    present = registered_account_ids(instance)
    added = sorted(wanted - present)
    removed = sorted(present - wanted)
    if added:
        instance.add_dynamic_partitions(ACCOUNT_PARTITIONS_NAME, [partition_key(a) for a in added])
    for account_id in removed:
        instance.delete_dynamic_partition(ACCOUNT_PARTITIONS_NAME, partition_key(account_id))
    return added, removed
