"""The Dagster concurrency pool for API-calling steps, and setting its limit on an instance.

``dagster.yaml`` can only give pools a default limit (``pools.default_limit``), and on Postgres that path
has open upstream bugs (dagster-io/dagster#33552: initializing a default limit aborts the transaction;
#33054: connections exhausted). So the explicit limit for ``hostaway_api`` is set on the instance by
``hostaway-pipeline`` commands and, in a deployment that runs only the webserver and the daemon, by the
``hostaway_reconciliation_pacing`` sensor on every tick before it queues a run (``HOSTAWAY_API_POOL_LIMIT``,
default 4), or by hand with ``dagster instance concurrency set hostaway_api N``. An explicit limit already
set is left alone (one read per call).
"""

from __future__ import annotations

import dagster as dg

API_POOL = "hostaway_api"


def ensure_api_pool_limit(instance: dg.DagsterInstance, limit: int) -> int:
    """Set the pool's slot count unless one is already configured; returns the limit in force."""
    storage = instance.event_log_storage
    if API_POOL in storage.get_concurrency_keys():
        current = storage.get_concurrency_info(API_POOL).slot_count
        if current:
            return current
    storage.set_concurrency_slots(API_POOL, limit)
    return limit
