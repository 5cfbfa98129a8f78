"""The latest *reconciliation* of an account's asset partition, skipping webhook-sourced materializations.

Webhook apply runs record materializations too (tagged ``hostaway/source: webhook``): they say rows
changed, not that the account was read whole. Row-count checks need the API count of the last full read,
and freshness needs the time of the last reconciliation, so both look past webhook materializations,
newest first, page by page, up to a bound.
"""

from __future__ import annotations

import dagster as dg

WEBHOOK_SOURCE_TAG = ("hostaway/source", "webhook")
# How many newer webhook materializations may stand between now and the last reconciliation before we give
# up looking (a busy account gets one per apply run that touched it).
SCAN_LIMIT = 5000
_PAGE = 200


def is_webhook_sourced(materialization: dg.AssetMaterialization | None) -> bool:
    tags = (materialization.tags or {}) if materialization is not None else {}
    return tags.get(WEBHOOK_SOURCE_TAG[0]) == WEBHOOK_SOURCE_TAG[1]


def latest_reconciliation(instance: dg.DagsterInstance, asset_key: dg.AssetKey,
                          partition: str) -> dg.EventLogRecord | None:
    """The newest materialization of the partition that a reconciliation (not a webhook apply) recorded."""
    cursor: str | None = None
    scanned = 0
    while scanned < SCAN_LIMIT:
        result = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=asset_key, asset_partitions=[partition]), limit=_PAGE, cursor=cursor,
            ascending=False,
        )
        for record in result.records:
            if not is_webhook_sourced(record.asset_materialization):
                return record
        scanned += len(result.records)
        if not result.has_more or not result.records:
            return None
        cursor = result.cursor
    return None
