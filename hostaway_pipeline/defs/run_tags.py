"""The account tags every run of one account carries, whoever starts it (schedule, CLI, UI, backfill).

The schedule and the CLI set them on their run requests. A backfill or a Materialize click in the UI
creates runs of Dagster's implicit asset job, whose tags only Dagster chooses (the backfill's own tags
and ``dagster/partition``); :class:`AccountRunCoordinator`, the instance's run coordinator, adds the
account tags to such a run when it is submitted, before it is queued, so queue limits, run filters and
the run list see the same tags on every account run.
"""

from __future__ import annotations

from collections.abc import Mapping

import dagster as dg

ACCOUNT_ID_TAG = "hostaway/account_id"
TRIGGER_TAG = "hostaway/trigger"
PARTITION_TAG = "dagster/partition"
BACKFILL_TAG = "dagster/backfill"


def account_run_tags(account_id: int, trigger: str) -> dict[str, str]:
    """Tags of a run for one account; ``trigger`` says who started it (daily_reconciliation, cli, backfill, ui)."""
    return {ACCOUNT_ID_TAG: str(account_id), TRIGGER_TAG: trigger}


def missing_account_tags(run_tags: Mapping[str, str]) -> dict[str, str]:
    """The account tags a run of one account partition lacks (none for other runs, or when already set)."""
    key = run_tags.get(PARTITION_TAG)
    if key is None or ACCOUNT_ID_TAG in run_tags or not (key.isascii() and key.isdigit()):
        return {}
    return account_run_tags(int(key), "backfill" if BACKFILL_TAG in run_tags else "ui")


class AccountRunCoordinator(dg.QueuedRunCoordinator):
    """Dagster's queued run coordinator, giving each account run its account tags before it is queued.

    Configured like ``QueuedRunCoordinator`` (``run_coordinator:`` in ``dagster.yaml``, limits under
    ``concurrency:``).
    """

    def submit_run(self, context: dg.SubmitRunContext) -> dg.DagsterRun:
        run = context.dagster_run
        tags = missing_account_tags(run.tags)
        if tags:
            self._instance.add_run_tags(run.run_id, tags)
            run = self._instance.get_run_by_id(run.run_id) or run
            context = dg.SubmitRunContext(run, context.workspace)
        return super().submit_run(context)
