"""``make demo``: the main job end to end on one machine, with nothing configured.

Starts the embedded Postgres and a local Hostaway stand-in (time-scaled, strict rate limits), registers
its accounts, runs the per-account reconciliation job through the real Dagster instance (the runs are
in the UI afterwards: ``make dev``), changes data upstream, reconciles again, and prints what it cost
and what the tables hold. The stand-in's own counters are the judge of calls and 429s.

The demo shares the warehouse with real accounts, so it only ever resets accounts it created: an account
is the demo's when its stored client secret is the stand-in's (derived from the demo's seed and the id).
Any other account on a demo id is left exactly as it is, and the demo takes the next free id instead.
"""

from __future__ import annotations

import enum
import os
import time

import dagster as dg
import sqlalchemy as sa

from hostaway_pipeline.defs.pools import ensure_api_pool_limit
from hostaway_pipeline.environment import prepare_environment
from hostaway_pipeline.orchestration import ASSET_NAMES, live_row_counts, materialization_metadata, run_account_sync
from hostaway_pipeline.settings import ConfigurationError
from hostaway_pipeline.simulator.server import SimulatorServer
from hostaway_pipeline.simulator.tokens import derive_client_secret
from hostaway_pipeline.storage.account_registry import AccountError, AccountRegistry
from hostaway_pipeline.storage.engine import get_engine
from hostaway_pipeline.storage.secret_box import secret_box_from_settings
from hostaway_pipeline.storage.tables import reservations

FIRST_DEMO_ACCOUNT = 90001
DEMO_SEED = 2026
MAX_IDS_TRIED = 1000


class Claim(enum.Enum):
    NEW = "registered"
    RESET = "an earlier demo's, reset"
    FOREIGN = "registered by someone else"


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
            registry.add(account_id, secret, name=demo_account_name(account_id), connection=connection)
            return Claim.NEW
        if stored != secret:
            return Claim.FOREIGN
        registry.remove(account_id, purge=True, connection=connection)
        registry.add(account_id, secret, name=demo_account_name(account_id), connection=connection)
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


def _configure_for_stand_in(simulator: SimulatorServer, time_scale: float) -> None:
    """Point this process's resources at the stand-in, with its time-scaled limits and its own budget."""
    window = 10.0 / time_scale
    os.environ["HOSTAWAY_API_BASE_URL"] = simulator.base_url
    os.environ["HOSTAWAY_RATE_LIMIT_PER_IP"] = f"15/{window:g}s"
    os.environ["HOSTAWAY_RATE_LIMIT_PER_ACCOUNT"] = f"20/{window:g}s"
    os.environ["HOSTAWAY_EGRESS_ID"] = "demo-stand-in"


def _print_run(label: str, account_id: int, result: dg.ExecuteInProcessResult, seconds: float) -> int:
    metadata = materialization_metadata(result)
    calls = sum(int(m.get("api_calls", 0)) for m in metadata.values())
    changed = {name: (m.get("rows_inserted", 0), m.get("rows_updated", 0), m.get("rows_soft_deleted", 0))
               for name, m in metadata.items()}
    detail = "  ".join(f"{name} +{ins}/~{upd}/-{dele}" for name, (ins, upd, dele) in changed.items())
    print(f"  {label:13} account {account_id}: {'ok' if result.success else 'FAILED'} in {seconds:5.1f} s, "
          f"{calls:4} API calls   {detail}")
    return calls


def run_demo(accounts: int = 2, size: int = 150, time_scale: float = 10.0) -> None:
    prepared = prepare_environment()
    engine = get_engine(prepared.database_url)
    print(f"warehouse: {sa.engine.make_url(prepared.database_url).render_as_string(hide_password=True)}")
    print(f"dagster instance: {prepared.dagster_home}")
    registry = AccountRegistry(engine, secret_box_from_settings(prepared.settings))
    account_ids = claim_demo_accounts(registry, accounts)
    with SimulatorServer(accounts=dict.fromkeys(account_ids, size), seed=DEMO_SEED,
                         time_scale=time_scale) as simulator:
        print(f"Hostaway stand-in: {simulator.base_url} ({accounts} accounts x {size} reservations, "
              f"rate windows {10 / time_scale:g} s): accounts {', '.join(map(str, account_ids))}")
        _configure_for_stand_in(simulator, time_scale)
        instance = dg.DagsterInstance.get()
        ensure_api_pool_limit(instance, prepared.settings.api_pool_limit)

        print("\n1. first reconciliation (full read)")
        first_calls = sum(_timed_sync(instance, account_id, "full read") for account_id in account_ids)

        print("\n2. upstream changes: cancellations, updates, new bookings, guest and host messages")
        for account_id in account_ids:
            simulator.mutate(account_id, {"cancel_reservations": 2, "update_reservations": 3, "new_reservations": 2,
                                          "incoming_messages": 5, "outgoing_messages": 3})
        print("\n3. second reconciliation (only what moved is re-read)")
        second_calls = sum(_timed_sync(instance, account_id, "incremental") for account_id in account_ids)

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
        print("\nwhat the stand-in saw:")
        print(f"  calls served: {stats['total_calls']} (first pass {first_calls}, second pass {second_calls})")
        print(f"  429 answers for exceeding the rate limit: {stats['served_429']}")
        print(f"  most calls in any window: {stats['max_calls_in_any_window_by_ip']} per IP (limit 15), "
              f"{stats['max_calls_in_any_window_by_account']} per account (limit 20)")
    print("\nNext: `make dev` opens the Dagster UI with these runs; `hostaway-pipeline status` summarizes them;")
    print("analysts: psql \"$(hostaway-pipeline db url | sed 's/+psycopg2//')\" "
          "-c 'select * from hostaway.reservations limit 5'")


def _timed_sync(instance: dg.DagsterInstance, account_id: int, label: str) -> int:
    started = time.monotonic()
    result = run_account_sync(instance, account_id)
    calls = _print_run(label, account_id, result, time.monotonic() - started)
    if not result.success:
        raise SystemExit(f"demo run for account {account_id} failed: see `make dev` for the run's logs")
    return calls
