"""``make demo``: the whole system on one machine, with nothing configured and no internet.

Starts the embedded Postgres, a local Hostaway stand-in (time-scaled, strict rate limits) with two
accounts (one seed-size), the webhook receiver and ``dagster dev`` (webserver and daemon: the local
stack of ``hostaway-pipeline dev``). It registers the accounts and their unified webhooks at the stand-in,
runs each account's first reconciliation as a run of the instance, then keeps the stand-in changing
(bookings, cancellations, guest and host messages) and sending webhooks, which the receiver stores and
the ``hostaway_webhook_events`` sensor applies: new webhook-sourced materializations keep appearing in
the UI. Ctrl-C stops every process it started. ``--once`` runs the first reconciliations and one burst
of webhooks, waits until the daemon has applied them, and exits (for tests and CI).

When the demo stops, its accounts are disabled: their Hostaway is the stand-in, which runs only under
the demo, so neither the daily schedule nor a ``make dev`` session may call the real API with them.
The next demo enables them again. The stand-in's own counters are the judge of calls and 429s.

The demo shares the warehouse with real accounts, so it only ever resets accounts it created: an account
is the demo's when its stored client secret is the stand-in's (derived from the demo's seed and the id).
Any other account on a demo id is left exactly as it is, and the demo takes the next free id instead.
"""

from __future__ import annotations

import enum
import os
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass

import dagster as dg
import sqlalchemy as sa

from hostaway_pipeline.defs.pools import ensure_api_pool_limit
from hostaway_pipeline.environment import prepare_environment
from hostaway_pipeline.orchestration import ASSET_NAMES, live_row_counts, materialization_metadata, run_account_sync
from hostaway_pipeline.settings import ConfigurationError
from hostaway_pipeline.simulator.data import SEED_RESERVATIONS, AccountSize
from hostaway_pipeline.simulator.server import SimulatorServer
from hostaway_pipeline.simulator.tokens import derive_client_secret
from hostaway_pipeline.storage.account_registry import AccountError, AccountRegistry
from hostaway_pipeline.storage.engine import get_engine
from hostaway_pipeline.storage.secret_box import secret_box_from_settings
from hostaway_pipeline.storage.tables import reservations

FIRST_DEMO_ACCOUNT = 90001
DEMO_SEED = 2026
MAX_IDS_TRIED = 1000
CHANGE_EVERY_SECONDS = 20.0
APPLY_TIMEOUT_SECONDS = 300.0
BURST = {"new_reservations": 1, "update_reservations": 2, "cancel_reservations": 1, "incoming_messages": 2,
         "outgoing_messages": 1}


class Claim(enum.Enum):
    NEW = "registered"
    RESET = "an earlier demo's, reset"
    FOREIGN = "registered by someone else"


# The demo's accounts and processes form their own egress pool: the stand-in's budget is not a real IP's, and
# a process of another pool (`dev`, a production worker) refuses to call the API for a demo account.
DEMO_EGRESS_POOL = "demo-stand-in"


def demo_account_name(account_id: int) -> str:
    return f"Demo account {account_id}"


def claim_demo_account(registry: AccountRegistry, account_id: int, seed: int = DEMO_SEED) -> Claim:
    """Register ``account_id`` for the demo, reset it if an earlier demo made it, or leave it alone.

    One transaction with the account's row locked: an account is reset (unregistered with its data, then
    registered again) only when its stored secret is the stand-in's for this id, i.e. a demo created it.
    A secret that differs or cannot be decrypted means someone else's account: nothing is touched.
    """
    secret = derive_client_secret(seed, account_id)
    with registry.engine.begin() as connection:
        try:
            stored: str | None = registry.client_secret(account_id, connection=connection, lock=True)
        except AccountError:
            stored = None  # not registered
        except ConfigurationError:
            return Claim.FOREIGN  # unreadable with this key: certainly not provably the demo's
        if stored is None:
            registry.add(account_id, secret, name=demo_account_name(account_id), connection=connection,
                         egress_pool=DEMO_EGRESS_POOL)
            return Claim.NEW
        if stored != secret:
            return Claim.FOREIGN
        registry.remove(account_id, purge=True, connection=connection)
        registry.add(account_id, secret, name=demo_account_name(account_id), connection=connection,
                     egress_pool=DEMO_EGRESS_POOL)
        return Claim.RESET


def claim_demo_accounts(registry: AccountRegistry, count: int, seed: int = DEMO_SEED) -> list[int]:
    """``count`` account ids for the demo from FIRST_DEMO_ACCOUNT up, skipping ids that are not the demo's."""
    claimed: list[int] = []
    for account_id in range(FIRST_DEMO_ACCOUNT, FIRST_DEMO_ACCOUNT + MAX_IDS_TRIED):
        if len(claimed) == count:
            break
        outcome = claim_demo_account(registry, account_id, seed)
        if outcome is Claim.FOREIGN:
            print(f"  account {account_id} is {outcome.value}: left untouched, the demo uses another id")
        else:
            claimed.append(account_id)
    if len(claimed) < count:
        raise SystemExit(f"the demo found no {count} free account ids from {FIRST_DEMO_ACCOUNT} on")
    return claimed


def demo_account_ids(registry: AccountRegistry, seed: int = DEMO_SEED) -> list[int]:
    """Registered accounts that are provably the demo's (their stored secret is the stand-in's)."""
    found = []
    for account in registry.all():
        if not FIRST_DEMO_ACCOUNT <= account.account_id < FIRST_DEMO_ACCOUNT + MAX_IDS_TRIED:
            continue
        try:
            if registry.client_secret(account.account_id) == derive_client_secret(seed, account.account_id):
                found.append(account.account_id)
        except (AccountError, ConfigurationError):
            continue
    return found


def idle_demo_accounts_hint(registry: AccountRegistry) -> str | None:
    """One line for ``dev``: the demo's accounts answer only at the demo's stand-in."""
    idle = [account_id for account_id in demo_account_ids(registry) if not registry.get(account_id).enabled]
    if not idle:
        return None
    return (f"accounts {', '.join(map(str, idle))} are the demo's: their Hostaway is the stand-in that runs only "
            "under `make demo` (which also opens this UI), so they stay disabled here")


def _configure_for_stand_in(simulator: SimulatorServer, time_scale: float) -> None:
    """Point this process and the children it starts at the stand-in, with its time-scaled limits."""
    window = 10.0 / time_scale
    os.environ["HOSTAWAY_API_BASE_URL"] = simulator.base_url
    os.environ["HOSTAWAY_RATE_LIMIT_PER_IP"] = f"15/{window:g}s"
    os.environ["HOSTAWAY_RATE_LIMIT_PER_ACCOUNT"] = f"20/{window:g}s"
    os.environ["HOSTAWAY_EGRESS_ID"] = DEMO_EGRESS_POOL


@dataclass
class DemoOutcome:
    """What ``--once`` proves: the runs were green and the daemon applied every webhook event."""

    first_pass_calls: int
    events_sent: int
    events_applied: int
    webhook_materializations: int


def run_demo(sizes: Sequence[AccountSize] = ("seed", 150), time_scale: float = 10.0, once: bool = False,
             ui_host: str = "127.0.0.1", ui_port: int = 3000) -> DemoOutcome:
    from hostaway_pipeline.local_stack import LocalStack, local_stack_children, wait_for_code_location
    from hostaway_pipeline.webhooks.config import credentials_environment, local_webhook_credentials
    from hostaway_pipeline.webhooks.receiver import WEBHOOK_PATH

    prepared = prepare_environment()
    settings = prepared.settings
    engine = get_engine(prepared.database_url)
    print(f"warehouse: {sa.engine.make_url(prepared.database_url).render_as_string(hide_password=True)}")
    print(f"dagster instance: {prepared.dagster_home}")
    registry = AccountRegistry(engine, secret_box_from_settings(settings))
    account_ids = claim_demo_accounts(registry, len(sizes))
    account_sizes = dict(zip(account_ids, sizes, strict=True))
    credentials, _ = local_webhook_credentials(settings)
    receiver_url = f"http://127.0.0.1:{settings.webhook_port}{WEBHOOK_PATH}"
    try:
        with SimulatorServer(accounts=account_sizes, seed=DEMO_SEED, time_scale=time_scale) as simulator:
            print(f"Hostaway stand-in: {simulator.base_url} (rate windows {10 / time_scale:g} s), accounts "
                  + ", ".join(f"{account_id} ({SEED_RESERVATIONS if size == 'seed' else size} reservations)"
                              for account_id, size in account_sizes.items()))
            _configure_for_stand_in(simulator, time_scale)
            instance = dg.DagsterInstance.get()
            ensure_api_pool_limit(instance, settings.api_pool_limit)
            _register_webhooks(account_ids, receiver_url, credentials.login, credentials.password)
            children = local_stack_children(ui_host, ui_port, settings.webhook_host, settings.webhook_port,
                                            credentials_environment(credentials))
            print("starting the webhook receiver and the Dagster webserver and daemon "
                  f"(logs in {settings.home / 'logs'}) ...", flush=True)
            with LocalStack(children, log_directory=settings.home / "logs") as stack:
                wait_for_code_location(f"http://{'127.0.0.1' if ui_host in ('0.0.0.0', '') else ui_host}:{ui_port}")
                _print_where_to_look(ui_host, ui_port, receiver_url, once)
                print("\n1. first reconciliation of each account (a full read; the seed-size one takes about a minute)")
                first_calls = sum(_timed_sync(instance, account_id, "full read") for account_id in account_ids)
                print("\n2. upstream changes, delivered as webhooks: bookings, cancellations, guest and host messages")
                since = _last_event_id(engine)
                sent = sum(_change(simulator, account_id, BURST) for account_id in account_ids)
                if once:
                    applied = _wait_applied(engine, stack, account_ids, since, sent)
                    materializations = _webhook_materializations(instance, account_ids)
                    print(f"   {applied} webhook events applied by the daemon; {materializations} webhook-sourced "
                          "materializations recorded")
                    _print_costs(simulator, engine, account_ids, first_calls)
                    return DemoOutcome(first_calls, sent, applied, materializations)
                print(f"   ... and a change every {CHANGE_EVERY_SECONDS:g} s from now on (Ctrl-C stops the demo)")
                rng = random.Random(DEMO_SEED)
                next_change = time.monotonic() + CHANGE_EVERY_SECONDS

                def keep_changing() -> None:
                    nonlocal next_change
                    if time.monotonic() >= next_change:
                        account_id = rng.choice(account_ids)
                        kind = rng.choice(sorted(BURST))
                        _change(simulator, account_id, {kind: 1})
                        next_change = time.monotonic() + CHANGE_EVERY_SECONDS

                stack.wait(tick=keep_changing, interval=1.0)
                print("\nstopping ...", flush=True)
                _print_costs(simulator, engine, account_ids, first_calls)
                return DemoOutcome(first_calls, sent, 0, _webhook_materializations(instance, account_ids))
    finally:
        for account_id in account_ids:  # their Hostaway is gone with the stand-in
            registry.set_enabled(account_id, False)
        print(f"demo accounts {', '.join(map(str, account_ids))} disabled until the next `make demo`; every process "
              "the demo started is stopped", flush=True)


def _register_webhooks(account_ids: list[int], url: str, login: str, password: str) -> None:
    from hostaway_pipeline.defs.resources import HostawayApiResource, HostawayRateLimiterResource, WarehouseResource
    from hostaway_pipeline.webhooks.registration import register

    warehouse = WarehouseResource()
    api = HostawayApiResource(warehouse=warehouse, rate_limiter=HostawayRateLimiterResource(warehouse=warehouse))
    for account_id in account_ids:
        registration = register(api.client_for(account_id), url, login, password)
        print(f"  account {account_id}: unified webhook {registration.action} -> {url}")


def _print_where_to_look(ui_host: str, ui_port: int, receiver_url: str, once: bool) -> None:
    ui = f"http://{'127.0.0.1' if ui_host in ('0.0.0.0', '') else ui_host}:{ui_port}"
    print(f"\nDagster UI: {ui}   (webhook receiver: {receiver_url})")
    if not once:
        print(f"  - {ui}/assets: the four hostaway assets and the hostaway_analytics ones, one partition per account")
        print(f"  - {ui}/runs: each account's reconciliation, then apply_hostaway_webhook_events runs every ~15 s")
        print("  - an asset's Events tab: materializations tagged hostaway/source=webhook come from webhooks")
    print(flush=True)


def _change(simulator: SimulatorServer, account_id: int, changes: dict[str, int]) -> int:
    """Apply ``changes`` at the stand-in, which delivers their webhooks; returns how many distinct events.

    Two changes of one object in a burst deliver its current state twice: the receiver stores that once.
    """
    outcome = simulator.mutate(account_id, changes, emit_webhooks_for_registered=True)
    deliveries = outcome["webhook_deliveries"]
    refused = [d for d in deliveries if d.get("status_code") != 200]
    if refused:
        raise SystemExit(f"the receiver refused {len(refused)} of {len(deliveries)} webhook deliveries "
                         f"(first: {refused[0]}); see its log in the pipeline home's logs/")
    line = ", ".join(f"{kind.replace('_', ' ')} {count}" for kind, count in changes.items())
    print(f"   account {account_id}: {line} -> {len(deliveries)} webhooks delivered", flush=True)
    return len({(delivery["event"], delivery["object_id"]) for delivery in deliveries})


def _last_event_id(engine: sa.Engine) -> int:
    from hostaway_pipeline.storage.tables import webhook_events

    with engine.connect() as connection:
        return connection.execute(sa.select(sa.func.coalesce(sa.func.max(webhook_events.c.event_id), 0))).scalar_one()


def _wait_applied(engine: sa.Engine, stack, account_ids: list[int], since: int, sent: int) -> int:
    """Wait until the daemon's sensor and apply runs leave no event of this burst pending."""
    from hostaway_pipeline.storage.tables import webhook_events

    deadline = time.monotonic() + APPLY_TIMEOUT_SECONDS
    print("   waiting for the sensor and its apply runs (a tick every 15 s) ...", flush=True)
    while True:
        stack.check()
        with engine.connect() as connection:
            statuses: dict[str, int] = dict(connection.execute(
                sa.select(webhook_events.c.status, sa.func.count())
                .where(webhook_events.c.event_id > since, webhook_events.c.account_id.in_(account_ids))
                .group_by(webhook_events.c.status)).all())
        stored = sum(statuses.values())
        if stored >= sent and not statuses.get("pending"):
            unapplied = {status: count for status, count in statuses.items() if status != "applied"}
            if unapplied:
                raise SystemExit(f"webhook events of the demo ended {unapplied}: "
                                 "see hostaway.webhook_events.last_error")
            return statuses.get("applied", 0)
        if time.monotonic() > deadline:
            raise SystemExit(f"after {APPLY_TIMEOUT_SECONDS:g} s the daemon had not applied the demo's webhook "
                             f"events ({statuses}, {sent} sent): see the runs in the Dagster UI")
        time.sleep(1.0)


def _webhook_materializations(instance: dg.DagsterInstance, account_ids: list[int]) -> int:
    from hostaway_pipeline.defs.assets import KEY_PREFIX
    from hostaway_pipeline.defs.partitions import partition_key
    from hostaway_pipeline.defs.webhook_jobs import SOURCE_TAG

    partitions = {partition_key(account_id) for account_id in account_ids}
    found = 0
    for name in ASSET_NAMES:
        records = instance.fetch_materializations(dg.AssetKey([KEY_PREFIX, name]), limit=1000).records
        for record in records:
            materialization = record.asset_materialization
            if materialization is not None and materialization.partition in partitions and \
                    (materialization.tags or {}).get(SOURCE_TAG) == "webhook":
                found += 1
    return found


def _print_costs(simulator: SimulatorServer, engine: sa.Engine, account_ids: list[int], first_calls: int) -> None:
    stats = simulator.stats()
    counts = live_row_counts(engine)
    with engine.connect() as connection:
        cancelled = connection.execute(
            sa.select(sa.func.count()).where(reservations.table.c.status == "cancelled",
                                             reservations.table.c.account_id.in_(account_ids))
        ).scalar_one()
    print("\nwarehouse tables (live rows):")
    print(f"  {'account':>8}  " + "  ".join(f"{name:>13}" for name in ASSET_NAMES))
    for account_id in account_ids:
        print(f"  {account_id:>8}  " + "  ".join(f"{counts.get((account_id, n), 0):>13}" for n in ASSET_NAMES))
    print(f"  cancelled reservations stored: {cancelled}")
    print("what the stand-in saw:")
    print(f"  calls served: {stats['total_calls']} (first reconciliations {first_calls}; webhooks cost none)")
    print(f"  429 answers for exceeding the rate limit: {stats['served_429']}")
    print(f"  most calls in any window: {stats['max_calls_in_any_window_by_ip']} per IP (limit 15), "
          f"{stats['max_calls_in_any_window_by_account']} per account (limit 20)")
    print("analysts: psql \"$(hostaway-pipeline db url | sed 's/+psycopg2//')\" "
          "-c 'select * from hostaway_analytics.revenue_monthly limit 5'", flush=True)


def _print_run(label: str, account_id: int, result: dg.ExecuteInProcessResult, seconds: float) -> int:
    metadata = materialization_metadata(result)
    calls = sum(int(m.get("api_calls", 0)) for m in metadata.values())
    changed = {name: (m.get("rows_inserted", 0), m.get("rows_updated", 0), m.get("rows_soft_deleted", 0))
               for name, m in metadata.items()}
    detail = "  ".join(f"{name} +{ins}/~{upd}/-{dele}" for name, (ins, upd, dele) in changed.items())
    print(f"  {label:13} account {account_id}: {'ok' if result.success else 'FAILED'} in {seconds:5.1f} s, "
          f"{calls:4} API calls   {detail}", flush=True)
    return calls


def _timed_sync(instance: dg.DagsterInstance, account_id: int, label: str) -> int:
    started = time.monotonic()
    print(f"  account {account_id}: reading listings, reservations, conversations, messages ...", flush=True)
    result = run_account_sync(instance, account_id)
    calls = _print_run(label, account_id, result, time.monotonic() - started)
    if not result.success:
        raise SystemExit(f"demo run for account {account_id} failed: open the run in the Dagster UI for its logs")
    return calls
