"""One Dagster partition per Hostaway account: a dynamic partitions definition keyed by account id.

Partitions are only ever added, never deleted: a backfill that targets a partition Dagster no longer
knows fails as a whole, so disabling or removing one account would kill a 2,000-account backfill.
A disabled or removed account keeps its partition; the schedule skips it and its runs are refused.
"""

from __future__ import annotations

from collections.abc import Iterable

import dagster as dg

ACCOUNT_PARTITIONS_NAME = "hostaway_accounts"
account_partitions = dg.DynamicPartitionsDefinition(name=ACCOUNT_PARTITIONS_NAME)


def partition_key(account_id: int) -> str:
    return str(account_id)


def registered_account_ids(instance: dg.DagsterInstance) -> set[int]:
    return {int(key) for key in instance.get_dynamic_partitions(ACCOUNT_PARTITIONS_NAME)}


def missing_partition_keys(instance: dg.DagsterInstance, account_ids: Iterable[int]) -> list[str]:
    """Keys of ``account_ids`` that have no partition yet, sorted by account id."""
    present = registered_account_ids(instance)
    return [partition_key(a) for a in sorted(set(account_ids) - present)]


def add_account_partitions(instance: dg.DagsterInstance, account_ids: Iterable[int]) -> list[str]:
    """Add the partitions ``account_ids`` lack (adding one twice is harmless); returns the keys added."""
    missing = missing_partition_keys(instance, account_ids)
    if missing:
        instance.add_dynamic_partitions(ACCOUNT_PARTITIONS_NAME, missing)
    return missing
