"""Per-account freshness: an enabled account whose last reconciliation is over a day old fails a check.

Dagster's ``FreshnessPolicy`` (on the assets) judges an asset as a whole, so one account syncing every
day hides another that has failed for a week. These checks, one per synced asset and not partitioned,
read the latest materialization of every enabled account's partition from the run history (no API
call) and fail naming the stale accounts. A small job runs only these checks, every few hours on a
schedule; they also run whenever someone selects them in the UI.

They span all accounts, so they must never run inside one account's run. Dagster runs every check of a
materialized asset with it (a backfill's runs select ``get_check_keys_for_assets``, the UI's Materialize
selects the asset's checks), so the checks are not on the four assets: they are on
``hostaway/account_freshness``, a check-only asset nothing materializes, downstream of the four.
"""


from datetime import UTC, datetime, timedelta

import dagster as dg

from hostaway_pipeline.defs.assets import HOSTAWAY_ASSETS
from hostaway_pipeline.defs.partitions import partition_key
from hostaway_pipeline.defs.reconciliation_history import latest_reconciliation
from hostaway_pipeline.defs.resources import WarehouseResource
from hostaway_pipeline.storage.account_registry import Account

STALE_AFTER = timedelta(hours=26)  # the daily reconciliation plus slack for a queue behind the limiter

ACCOUNT_FRESHNESS_KEY = dg.AssetKey(["hostaway", "account_freshness"])

account_freshness = dg.AssetSpec(
    ACCOUNT_FRESHNESS_KEY,
    deps=HOSTAWAY_ASSETS,
    group_name="hostaway_monitoring",
    description="Check-only: whether every enabled account's listings, reservations, conversations and messages "
                f"were reconciled in the last {STALE_AFTER.total_seconds() / 3600:g} h. Nothing materializes it; its "
                "checks run on the hostaway_account_freshness schedule (every 6 h), never in an account's run.",
)


def last_materialized(instance: dg.DagsterInstance, asset_key: dg.AssetKey, account_id: int) -> datetime | None:
    """When the account's partition was last reconciled (webhook applies do not count: they read nothing whole)."""
    record = latest_reconciliation(instance, asset_key, partition_key(account_id))
    return datetime.fromtimestamp(record.timestamp, UTC) if record else None


def stale_accounts(instance: dg.DagsterInstance, asset_key: dg.AssetKey, accounts: list[Account],
                   now: datetime) -> dict[int, datetime | None]:
    """Enabled accounts registered over ``STALE_AFTER`` ago whose partition was not materialized since then."""
    stale: dict[int, datetime | None] = {}
    for account in accounts:
        if not account.enabled or now - account.created_at < STALE_AFTER:
            continue
        last = last_materialized(instance, asset_key, account.account_id)
        if last is None or now - last > STALE_AFTER:
            stale[account.account_id] = last
    return stale


def describe_stale(stale: dict[int, datetime | None], enabled: int, shown: int = 20) -> str:
    """One line naming the accounts that missed the promise, stalest first (never reconciled before all)."""
    order = sorted(stale.items(), key=lambda item: (item[1] is not None, item[1] or datetime.min, item[0]))
    listed = ", ".join(f"{account_id} (last {last:%Y-%m-%d %H:%M} UTC)" if last else f"{account_id} (never)"
                       for account_id, last in order[:shown])
    more = f" and {len(stale) - shown} more (metadata stale_account_ids)" if len(stale) > shown else ""
    return (f"{len(stale)} of {enabled} enabled accounts not reconciled in the last "
            f"{STALE_AFTER.total_seconds() / 3600:g} h, stalest first: {listed}{more}")


def _freshness_check(asset: dg.AssetsDefinition) -> dg.AssetChecksDefinition:
    name = asset.key.path[-1]

    @dg.asset_check(asset=ACCOUNT_FRESHNESS_KEY, name=f"{name}_every_account_reconciled_within_a_day",
                    description=f"Every enabled account's {name} partition was materialized in the last "
                                f"{STALE_AFTER.total_seconds() / 3600:g} h (per account, unlike the asset's "
                                "freshness policy)")
    def check(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource) -> dg.AssetCheckResult:
        accounts = warehouse.accounts.all()
        stale = stale_accounts(context.instance, asset.key, accounts, datetime.now(UTC))
        enabled = sum(1 for a in accounts if a.enabled)
        return dg.AssetCheckResult(
            passed=not stale,
            metadata={"enabled_accounts": enabled, "stale_accounts": len(stale),
                      "stale_account_ids": dg.MetadataValue.json(sorted(stale))},
            description=describe_stale(stale, enabled) if stale else None,
        )

    return check


ACCOUNT_FRESHNESS_CHECKS = [_freshness_check(asset) for asset in HOSTAWAY_ASSETS]

account_freshness_job = dg.define_asset_job(
    name="hostaway_account_freshness",
    selection=dg.AssetSelection.checks(*ACCOUNT_FRESHNESS_CHECKS),
    description="Runs only the per-account freshness checks (run history and registry; no API calls).",
    executor_def=dg.in_process_executor,
)

account_freshness_schedule = dg.ScheduleDefinition(
    name="hostaway_account_freshness",
    job=account_freshness_job,
    cron_schedule="30 */6 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Every 6 hours: fail the freshness checks for any enabled account not reconciled in 26 h.",
)
