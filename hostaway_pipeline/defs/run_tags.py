"""The tags every run of one account carries, whoever starts it (schedule, CLI, UI, backfill), and run priorities.

The schedule and the CLI set them on their run requests. A backfill or a Materialize click in the UI
creates runs of Dagster's implicit asset job, whose tags only Dagster chooses (the backfill's own tags
and ``dagster/partition``); :class:`AccountRunCoordinator`, the instance's run coordinator, completes
every account run's tags when it is submitted, before it is queued, so queue limits, run filters, the run
list and the run launcher see the same tags on every account run:

- ``hostaway/account_id`` and ``hostaway/trigger`` (backfill, ui) when missing;
- ``hostaway/egress``: the account's egress pool as the registry holds it at submission (a re-execution or
  retry of a run queued before the account moved gets the new pool); queue limits per pool are
  ``tag_concurrency_limits`` on it, and the coordinator's ``egress_pool_run_tags`` config adds per-pool run
  tags (e.g. ``dagster-k8s/config`` with the node selector of the pool's worker nodes, docs/production.md);
- ``dagster/priority`` -2 on backfill runs that carry none: webhook apply runs go first (10), then
  interactive runs (0), then reconciliations (-1), then backfills, so a backfill never starves the daily
  reconciliation.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import dagster as dg
from sqlalchemy.engine import Engine

ACCOUNT_ID_TAG = "hostaway/account_id"
TRIGGER_TAG = "hostaway/trigger"
EGRESS_TAG = "hostaway/egress"
PARTITION_TAG = "dagster/partition"
BACKFILL_TAG = "dagster/backfill"
PRIORITY_TAG = "dagster/priority"
BACKFILL_PRIORITY = -2


def account_run_tags(account_id: int, trigger: str, egress_pool: str | None = None) -> dict[str, str]:
    """Tags of a run for one account; ``trigger`` says who started it (daily_reconciliation, cli, backfill, ui).

    ``egress_pool`` when the caller knows it; the run coordinator sets it from the registry either way.
    """
    tags = {ACCOUNT_ID_TAG: str(account_id), TRIGGER_TAG: trigger}
    if egress_pool is not None:
        tags[EGRESS_TAG] = egress_pool
    return tags


def missing_account_tags(run_tags: Mapping[str, str]) -> dict[str, str]:
    """The account tags a run of one account partition lacks (none for other runs, or when already set)."""
    key = run_tags.get(PARTITION_TAG)
    if key is None or ACCOUNT_ID_TAG in run_tags or not (key.isascii() and key.isdigit()):
        return {}
    trigger = run_tags.get(TRIGGER_TAG) or ("backfill" if BACKFILL_TAG in run_tags else "ui")
    return account_run_tags(int(key), trigger)


def run_account_id(run_tags: Mapping[str, str]) -> int | None:
    """The account a run is for (its account tag, else its account partition); None for other runs."""
    key = run_tags.get(ACCOUNT_ID_TAG, run_tags.get(PARTITION_TAG))
    return int(key) if key is not None and key.isascii() and key.isdigit() else None


def missing_priority_tags(run_tags: Mapping[str, str]) -> dict[str, str]:
    """``dagster/priority`` -2 for a backfill run that carries no priority of its own."""
    if BACKFILL_TAG in run_tags and PRIORITY_TAG not in run_tags:
        return {PRIORITY_TAG: str(BACKFILL_PRIORITY)}
    return {}


def egress_tags(run_tags: Mapping[str, str], egress_pool: str | None,
                pool_run_tags: Mapping[str, Mapping[str, str]]) -> dict[str, str]:
    """The tags to set so an account run of ``egress_pool`` (None: unregistered, left alone) is routed to it:
    ``hostaway/egress`` and the pool's configured run tags, where they differ from the run's."""
    if egress_pool is None:
        return {}
    wanted = {EGRESS_TAG: egress_pool, **pool_run_tags.get(egress_pool, {})}
    return {key: value for key, value in wanted.items() if run_tags.get(key) != value}


def _tag_value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def parse_pool_run_tags(config: Mapping[str, Any] | None) -> dict[str, dict[str, str]]:
    """``egress_pool_run_tags`` config (pool -> tag -> string, or a mapping written as YAML, stored as JSON
    the way Dagster stores ``dagster-k8s/config`` given as a dict)."""
    return {str(pool): {str(tag): _tag_value(value) for tag, value in tags.items()}
            for pool, tags in (config or {}).items()}


class AccountRunCoordinator(dg.QueuedRunCoordinator):
    """Dagster's queued run coordinator, completing each account run's tags before it is queued.

    Configured like ``QueuedRunCoordinator`` (``run_coordinator:`` in ``dagster.yaml``, limits under
    ``concurrency:``), plus ``egress_pool_run_tags``: per egress pool, run tags its account runs get. Reads
    the accounts' pools from the warehouse (``HOSTAWAY_DATABASE_URL``), so the webserver and the daemon,
    which submit runs, need that variable; a submission whose pool cannot be read fails rather than queue a
    run that would go to the wrong workers.
    """

    # Set by from_config_value (Dagster's own builds the base class's fields only); never mutated.
    _pool_run_tags: Mapping[str, Mapping[str, str]] = {}
    _engine: Engine | None = None

    @classmethod
    def config_type(cls) -> dict[str, Any]:  # type: ignore[override]
        return {
            **super().config_type(),  # type: ignore[dict-item]
            "egress_pool_run_tags": dg.Field(
                dg.Map(str, dg.Permissive()), is_required=False,
                description="Per egress pool, tags set on its account runs (e.g. dagster-k8s/config routing them "
                            "to the workers behind the pool's IP).",
            ),
        }

    @classmethod
    def from_config_value(cls, inst_data: Any, config_value: Mapping[str, Any]) -> AccountRunCoordinator:
        own = {key: value for key, value in config_value.items() if key != "egress_pool_run_tags"}
        coordinator = super().from_config_value(inst_data, own)
        coordinator._pool_run_tags = parse_pool_run_tags(config_value.get("egress_pool_run_tags"))
        return coordinator

    def _egress_pool_of(self, account_id: int) -> str | None:
        from hostaway_pipeline.storage.account_registry import account_egress_pools
        from hostaway_pipeline.storage.engine import warehouse_engine

        if self._engine is None:
            self._engine = warehouse_engine()
        return account_egress_pools(self._engine, [account_id]).get(account_id)

    def tags_to_add(self, run_tags: Mapping[str, str]) -> dict[str, str]:
        """Every tag the coordinator sets on a run with these tags (see the module docstring)."""
        tags = {**missing_account_tags(run_tags), **missing_priority_tags(run_tags)}
        account_id = run_account_id(run_tags)
        if account_id is not None:
            tags.update(egress_tags(run_tags, self._egress_pool_of(account_id), self._pool_run_tags))
        return tags

    def submit_run(self, context: dg.SubmitRunContext) -> dg.DagsterRun:
        run = context.dagster_run
        tags = self.tags_to_add(run.tags)
        if tags:
            self._instance.add_run_tags(run.run_id, tags)
            run = self._instance.get_run_by_id(run.run_id) or run
            context = dg.SubmitRunContext(run, context.workspace)
        return super().submit_run(context)
