"""The ``hostaway-pipeline`` command: database, accounts, the local Hostaway stand-in, the demo.

Each sub-command is a thin shell over plain modules. Every ``HOSTAWAY_*`` variable is checked before a
command starts, and every failure ends with one line on stderr naming its cause (``hostaway-pipeline:
error: ...``) and a non-zero exit: bad input, a bad setting, an unreachable database, a port in use or
Ctrl-C/Ctrl-D never print a traceback; only a bug does, above that line. A failed ``sync`` keeps its
traceback in the run's event log (the Dagster UI), not on the terminal.

Secrets are never taken from argv: ``accounts add`` reads ``HOSTAWAY_CLIENT_SECRET`` or a no-echo prompt,
``secrets rotate-key`` reads ``HOSTAWAY_NEW_SECRET_KEY`` or a no-echo prompt (typed twice).
"""

from __future__ import annotations

import argparse
import getpass
import math
import os
import sys
import traceback
import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from hostaway_pipeline.local_stack import StackError
from hostaway_pipeline.settings import DEFAULT_EGRESS_POOL, ConfigurationError, load_settings
from hostaway_pipeline.storage.account_registry import (
    AccountError,
    AccountRegistry,
    parse_account_id,
    parse_egress_pool,
)

if TYPE_CHECKING:
    from hostaway_pipeline.orchestration import LatestRun


class CommandError(Exception):
    """A user-facing failure: printed as one line, exit status 2."""


def _registry_and_environment():
    from hostaway_pipeline.environment import prepare_environment
    from hostaway_pipeline.storage.engine import get_engine
    from hostaway_pipeline.storage.secret_box import secret_box_from_settings

    prepared = prepare_environment()
    engine = get_engine(prepared.database_url)
    return AccountRegistry(engine, secret_box_from_settings(prepared.settings)), prepared


def _dagster_instance():
    import dagster as dg

    from hostaway_pipeline.defs.pools import ensure_api_pool_limit

    instance = dg.DagsterInstance.get()
    ensure_api_pool_limit(instance, load_settings().api_pool_limit)
    return instance


def _abandoned_prompt(message: str) -> CommandError:
    """The error for Ctrl-D/Ctrl-C at a no-echo prompt, which echo no newline: the error gets a line of its own."""
    if sys.stderr.isatty():
        print(file=sys.stderr)
    return CommandError(message)


def _read_client_secret() -> str:
    secret = os.environ.get("HOSTAWAY_CLIENT_SECRET") or None  # empty means unset, as for every variable
    if secret is None:
        if not sys.stdin.isatty():
            raise CommandError(
                "set HOSTAWAY_CLIENT_SECRET or run in a terminal to be prompted (never pass it as an argument)"
            )
        try:
            secret = getpass.getpass("Hostaway client secret (API key): ")
        except (EOFError, KeyboardInterrupt):  # Ctrl-D or Ctrl-C at the prompt
            raise _abandoned_prompt("no client secret was typed; nothing changed") from None
    if not secret.strip():
        raise AccountError("the client secret is empty")
    return secret


# --- db -------------------------------------------------------------------------------------------


def _migrate(args: argparse.Namespace, action: str) -> None:
    from hostaway_pipeline.environment import prepare_environment
    from hostaway_pipeline.storage import migrate
    from hostaway_pipeline.storage.engine import get_engine

    engine = get_engine(prepare_environment().database_url, migrate=False)
    try:
        (migrate.upgrade if action == "upgrade" else migrate.downgrade)(engine, args.revision)
    except migrate.MigrationError as error:
        raise CommandError(str(error)) from None
    print(f"schema hostaway at revision {migrate.current_revision(engine)}")


def cmd_db_upgrade(args: argparse.Namespace) -> None:
    _migrate(args, "upgrade")


def cmd_db_downgrade(args: argparse.Namespace) -> None:
    _migrate(args, "downgrade")


def cmd_db_url(args: argparse.Namespace) -> None:
    from sqlalchemy.engine import make_url

    from hostaway_pipeline.environment import prepare_environment

    print(make_url(prepare_environment().database_url).render_as_string(hide_password=True))


def cmd_db_stop(args: argparse.Namespace) -> None:
    from hostaway_pipeline.storage.embedded_postgres import stop_embedded_postgres

    settings = load_settings()
    if not settings.uses_embedded_postgres:
        raise CommandError("HOSTAWAY_DATABASE_URL is set: there is no embedded Postgres to stop")
    stopped = stop_embedded_postgres(settings.home)
    print(f"embedded Postgres in {settings.home} {'stopped' if stopped else 'was not running'}")


# --- accounts -------------------------------------------------------------------------------------


def cmd_accounts_add(args: argparse.Namespace) -> None:
    from hostaway_pipeline.defs.partitions import add_account_partitions

    account_id = parse_account_id(args.account_id)
    egress_pool = parse_egress_pool(args.egress)
    secret = _read_client_secret()
    registry, _ = _registry_and_environment()
    instance = _dagster_instance()
    account = registry.add(account_id, secret, name=args.name, egress_pool=egress_pool)  # committed here
    # Only after the row commits: a partition never names an account the registry does not hold yet. If
    # this step fails, the partition sensor adds the partition within a minute.
    add_account_partitions(instance, [account_id])
    print(f"added account {account.account_id}" + (f" ({account.name})" if account.name else "")
          + f" in egress pool {account.egress_pool}")


def cmd_accounts_list(args: argparse.Namespace) -> None:
    registry, _ = _registry_and_environment()
    accounts = registry.all()
    if not accounts:
        print("no accounts registered (add one with: hostaway-pipeline accounts add ACCOUNT_ID)")
        return
    pool_width = max(len("egress"), *(len(account.egress_pool) for account in accounts))
    print(f"{'account_id':>12}  {'enabled':7}  {'egress':{pool_width}}  {'added (UTC)':19}  name")
    for account in accounts:
        print(
            f"{account.account_id:>12}  {'yes' if account.enabled else 'no':7}  "
            f"{account.egress_pool:{pool_width}}  {account.created_at:%Y-%m-%d %H:%M:%S}  {account.name or ''}"
        )


def cmd_accounts_set_egress(args: argparse.Namespace) -> None:
    account_id = parse_account_id(args.account_id)
    egress_pool = parse_egress_pool(args.egress_pool)
    registry, _ = _registry_and_environment()
    before = registry.get(account_id).egress_pool
    account = registry.set_egress_pool(account_id, egress_pool)
    if before == account.egress_pool:
        print(f"account {account_id} is already in egress pool {account.egress_pool}")
        return
    # Runs submitted from now on carry the new pool; one already queued is refused by the old pool's workers.
    print(f"account {account_id} moved from egress pool {before} to {account.egress_pool}: runs submitted from now "
          f"on execute on {account.egress_pool} workers; one queued before is refused by {before} workers")


def _set_enabled(args: argparse.Namespace, enabled: bool) -> None:
    from hostaway_pipeline.defs.partitions import add_account_partitions

    account_id = parse_account_id(args.account_id)
    registry, _ = _registry_and_environment()
    instance = _dagster_instance()
    registry.set_enabled(account_id, enabled)
    if enabled:
        add_account_partitions(instance, [account_id])  # an account added disabled in SQL has none yet
    # Disabling keeps the partition: backfills that target it run their other accounts; its run is refused.
    print(f"account {account_id} {'enabled' if enabled else 'disabled'}"
          + ("" if enabled else f" (its partition stays; runs for it are refused until: "
                                f"hostaway-pipeline accounts enable {account_id})"))


def cmd_accounts_remove(args: argparse.Namespace) -> None:
    account_id = parse_account_id(args.account_id)
    registry, _ = _registry_and_environment()
    purged = registry.remove(account_id, purge=args.purge)
    # The partition stays (with its run history): deleting it would fail every backfill that targets it.
    detail = ", ".join(f"{count} {name}" for name, count in purged.items()) if args.purge else "data kept"
    print(f"removed account {account_id} ({detail})")


# --- secrets --------------------------------------------------------------------------------------


def _read_new_secret_key(generated_in_home: bool) -> str | None:
    """The new key from HOSTAWAY_NEW_SECRET_KEY or a no-echo prompt; None lets the home's key file get a new one."""
    key = os.environ.get("HOSTAWAY_NEW_SECRET_KEY")
    if key:
        return key
    if generated_in_home:
        return None
    if not sys.stdin.isatty():
        raise CommandError(
            "set HOSTAWAY_NEW_SECRET_KEY or run in a terminal to be prompted (never pass a key as an argument)"
        )
    try:
        first = getpass.getpass("New secret key (Fernet; keep it in your secret store): ")
        second = getpass.getpass("The same key again: ")
    except (EOFError, KeyboardInterrupt):
        raise _abandoned_prompt("no new key was typed; nothing changed") from None
    if first.strip() != second.strip():
        raise CommandError("the two keys typed differ; nothing changed")
    return first.strip()


def cmd_secrets_rotate_key(args: argparse.Namespace) -> None:
    import sqlalchemy as sa

    from hostaway_pipeline.environment import prepare_environment
    from hostaway_pipeline.storage.engine import get_engine
    from hostaway_pipeline.storage.key_rotation import rotate_secret_key

    try:
        prepared = prepare_environment()
        settings = prepared.settings
        new_key = _read_new_secret_key(not settings.secret_key and settings.uses_embedded_postgres)
        result = rotate_secret_key(get_engine(prepared.database_url), settings, new_key)
    except (ConfigurationError, CommandError):
        raise
    except sa.exc.SQLAlchemyError as error:
        cause = (str(getattr(error, "orig", None) or error).strip().splitlines() or [type(error).__name__])[0]
        raise CommandError(f"database error, the rotation did not finish (it is safe to run again): {cause}") from None
    except OSError as error:
        where = f" ({error.filename})" if error.filename else ""
        raise CommandError(f"{error.strerror or error}{where}; the rotation did not finish "
                           "(it is safe to run again)") from None
    except ValueError as error:  # e.g. a HOSTAWAY_DATABASE_URL that is not PostgreSQL
        raise CommandError(str(error)) from None
    except KeyboardInterrupt:
        raise CommandError("interrupted; the rotation did not finish (it is safe to run again)") from None
    tokens = f"{result.tokens} cached access tokens" + (
        f" ({result.tokens_dropped} unreadable cached tokens dropped: they are minted again)"
        if result.tokens_dropped else "")
    print(f"re-encrypted {result.client_secrets} client secrets and {tokens} under the new key")
    if result.key_file is not None:
        print(f"the new key is in {result.key_file}; the old one is gone")
    else:
        print("now set HOSTAWAY_SECRET_KEY to the new key wherever the pipeline runs (the old key no longer "
              "decrypts what is stored; HOSTAWAY_SECRET_KEY=NEW,OLD bridges running processes meanwhile)")


# --- runs -----------------------------------------------------------------------------------------


def cmd_sync(args: argparse.Namespace) -> None:
    from hostaway_pipeline.orchestration import ASSET_NAMES, materialization_metadata, run_account_sync, run_verdict

    account_id = parse_account_id(args.account_id)
    asset_names = [name.strip() for name in args.assets.split(",") if name.strip()] if args.assets else None
    unknown = set(asset_names or ()) - set(ASSET_NAMES)
    if unknown:
        raise CommandError(f"unknown assets {', '.join(sorted(unknown))}; choose from {', '.join(ASSET_NAMES)}")
    registry, _ = _registry_and_environment()
    account = registry.get(account_id)
    if not account.enabled:
        raise CommandError(f"account {account_id} is disabled (hostaway-pipeline accounts enable {account_id})")
    # The console logger would print each failed step's Dagster traceback (about 220 lines); the run's event
    # log keeps it (the Dagster UI), and the last line below names the cause. The steps' progress lines (the
    # same as in the run's log) are printed as they come.
    result = run_account_sync(_dagster_instance(), account_id, asset_names, args.full_refresh_messages,
                              allow_mass_delete=args.allow_mass_delete, log_level="CRITICAL",
                              on_progress=lambda line: print(line, flush=True))
    for name, metadata in materialization_metadata(result).items():
        print(f"{name:14} calls={metadata.get('api_calls', 0):<5} inserted={metadata.get('rows_inserted', 0):<6} "
              f"updated={metadata.get('rows_updated', 0):<6} unchanged={metadata.get('rows_unchanged', 0):<6} "
              f"deleted={metadata.get('rows_soft_deleted', 0):<5} waited={metadata.get('rate_limit_wait_seconds', 0)}s")
    verdict = run_verdict(result)
    if not result.success or not verdict.green:
        raise CommandError(f"run {result.run_id} failed: " + (verdict.summary() or "see the run in the Dagster UI"))
    print(f"run {result.run_id} succeeded (see it in the Dagster UI: make dev)")


def cmd_status(args: argparse.Namespace) -> None:
    from hostaway_pipeline.orchestration import ASSET_NAMES, account_statuses, sync_state_summary

    registry, _ = _registry_and_environment()
    accounts = registry.all()
    if not accounts:
        print("no accounts registered (add one with: hostaway-pipeline accounts add ACCOUNT_ID)")
        return
    for status in account_statuses(_dagster_instance(), registry.engine, accounts):
        print(f"account {status.account_id}{'' if status.enabled else ' (disabled)'}")
        for name in ASSET_NAMES:
            synced = status.last_sync[name]
            when = f"{synced:%Y-%m-%d %H:%M:%S %Z}" if synced else "never"
            print(f"  {name:14} last materialized {when:25} live rows {status.live_rows[name]}")
            if name in status.sync_states:
                print(f"  {'':14} {sync_state_summary(status.sync_states[name])}")
        print("  failing checks: " + (", ".join(status.failing_checks) or "none"))
        print("  latest run: " + _latest_run_line(status.latest_run))
        for step in status.latest_run.failed_steps if status.latest_run else ():
            print(f"    failed step {step}")


def _latest_run_line(run: LatestRun | None) -> str:
    """Status, end and id of the account's latest run; when it failed, the assets it left unmaterialized."""
    if run is None:
        return "none"
    ended = f" at {run.ended_at:%Y-%m-%d %H:%M:%S %Z}" if run.ended_at else ""
    line = f"{run.status.lower()}{ended} (run {run.run_id})"
    if run.failed:
        line += "; not materialized: " + (", ".join(run.not_materialized) or "none")
        if not run.failed_steps:
            line += "; its failed steps are in the run's log (Dagster UI)"
    return line


def cmd_dev(args: argparse.Namespace) -> None:
    from hostaway_pipeline.local_stack import run_dev

    run_dev(args.host, args.port)


def cmd_demo(args: argparse.Namespace) -> None:
    from hostaway_pipeline.demo import run_demo

    run_demo(sizes=args.sizes, time_scale=args.time_scale, once=args.once, ui_host=args.host, ui_port=args.port)


# --- simulator ------------------------------------------------------------------------------------


def cmd_simulator_serve(args: argparse.Namespace) -> None:
    from hostaway_pipeline.simulator import cli as simulator_cli

    try:
        status = simulator_cli.run(args)
    except (OSError, OverflowError) as error:  # a port in use or out of range, an unknown host
        cause = getattr(error, "strerror", None) or str(error)
        raise CommandError(f"cannot listen on {args.host}:{args.port}: {cause}") from None
    if status:
        raise SystemExit(status)


# --- parser ---------------------------------------------------------------------------------------


def _bounded(kind: Callable[[str], float], low: float, high: float, what: str) -> Callable[[str], float]:
    """An argparse type: a finite ``kind`` number in ``[low, high]``, else a one-line usage error."""
    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            value = math.nan
        if not low <= value <= high:  # False for NaN too
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}")
        return value
    return parse


_port = _bounded(int, 1, 65535, "a TCP port (1-65535)")
DEMO_ACCOUNT_SIZES = ("seed", 150)
DEMO_MAX_ACCOUNTS = 20
DEMO_MAX_RESERVATIONS = 100_000


def _account_sizes(text: str) -> list[str | int]:
    """``seed,150``: one stand-in account per item, 'seed' (787 reservations) or a number of reservations."""
    sizes: list[str | int] = []
    for item in (part.strip() for part in text.split(",")):
        if item == "seed":
            sizes.append(item)
        elif item.isascii() and item.isdigit() and 0 <= int(item) <= DEMO_MAX_RESERVATIONS:
            sizes.append(int(item))
        else:
            raise argparse.ArgumentTypeError(
                f"{item!r} is not an account size ('seed' or 0 to {DEMO_MAX_RESERVATIONS} reservations)")
    if not 1 <= len(sizes) <= DEMO_MAX_ACCOUNTS:
        raise argparse.ArgumentTypeError(f"give 1 to {DEMO_MAX_ACCOUNTS} account sizes, got {len(sizes)}")
    return sizes


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hostaway-pipeline", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    def add(group, name: str, handler: Callable[[argparse.Namespace], None], help_text: str):
        sub = group.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(handler=handler)
        return sub

    db = commands.add_parser("db", help="the warehouse database").add_subparsers(dest="db_command", required=True)
    add(db, "upgrade", cmd_db_upgrade, "apply Alembic migrations").add_argument("revision", nargs="?", default="head")
    add(db, "downgrade", cmd_db_downgrade, "revert Alembic migrations").add_argument("revision")
    add(db, "url", cmd_db_url, "print the database URL (password hidden)")
    add(db, "stop", cmd_db_stop, "stop the embedded Postgres")

    accounts = commands.add_parser("accounts", help="registered Hostaway accounts").add_subparsers(
        dest="accounts_command", required=True
    )
    account_add = add(accounts, "add", cmd_accounts_add,
                      "register an account; the secret comes from HOSTAWAY_CLIENT_SECRET or a prompt")
    account_add.add_argument("account_id")
    account_add.add_argument("--name")
    account_add.add_argument("--egress", default=DEFAULT_EGRESS_POOL, metavar="POOL",
                             help=f"egress pool whose IP sends its calls (default: {DEFAULT_EGRESS_POOL}, the pool "
                                  "of workers without HOSTAWAY_EGRESS_ID)")
    add(accounts, "list", cmd_accounts_list, "list accounts (secrets are never shown)")
    account_set_egress = add(accounts, "set-egress", cmd_accounts_set_egress,
                             "move an account to another egress pool (the IP its calls leave from)")
    account_set_egress.add_argument("account_id")
    account_set_egress.add_argument("egress_pool")
    add(accounts, "disable", lambda a: _set_enabled(a, False), "stop syncing an account").add_argument("account_id")
    add(accounts, "enable", lambda a: _set_enabled(a, True), "resume syncing an account").add_argument("account_id")
    account_remove = add(accounts, "remove", cmd_accounts_remove, "unregister an account (data kept unless --purge)")
    account_remove.add_argument("account_id")
    account_remove.add_argument("--purge", action="store_true", help="also delete the account's synced rows")

    secrets = commands.add_parser("secrets", help="the key encrypting stored secrets").add_subparsers(
        dest="secrets_command", required=True
    )
    add(secrets, "rotate-key", cmd_secrets_rotate_key,
        "re-encrypt every stored client secret and token under a new key (from HOSTAWAY_NEW_SECRET_KEY, a "
        "prompt, or generated into the home for the embedded default); safe to run again after a failure")

    sync = add(commands, "sync", cmd_sync, "materialize an account's assets as a run of the Dagster instance")
    sync.add_argument("account_id")
    sync.add_argument("--assets", help="comma-separated subset of listings,reservations,conversations,messages")
    sync.add_argument("--allow-mass-delete", action="store_true",
                      help="let this run soft-delete more than 10%% (and more than 5) of an asset's live rows")
    sync.add_argument("--full-refresh-messages", action="store_true",
                      help="re-read every conversation's messages, not only those whose markers moved")
    add(commands, "status", cmd_status,
        "per account: last sync per asset, live row counts, failing checks, the latest run and why it failed")
    dev = add(commands, "dev", cmd_dev, "run the whole system locally: the Dagster UI and daemon (dagster dev) and "
              "the webhook receiver, on this instance, until Ctrl-C")
    dev.add_argument("--host", default="127.0.0.1", help="address the UI listens on (default 127.0.0.1)")
    dev.add_argument("--port", type=_port, default=3000, help="UI port (default 3000)")
    demo = add(commands, "demo", cmd_demo,
               "the whole system locally: a Hostaway stand-in with two accounts (one seed-size), webhooks, the "
               "Dagster UI and daemon, first reconciliations, then live upstream changes until Ctrl-C")
    demo.add_argument("--once", action="store_true",
                      help="run the first reconciliations and one burst of webhooks, wait until they are applied, exit")
    demo.add_argument("--sizes", type=_account_sizes, default=list(DEMO_ACCOUNT_SIZES),
                      help="reservations per stand-in account, comma-separated: numbers or 'seed' (787); one account "
                           "each (default seed,150)")
    demo.add_argument("--time-scale", type=_bounded(float, 0.1, 1000, "a speed from 0.1 to 1000"), default=10.0,
                      help="stand-in speed: 10 means Hostaway's 10 s rate windows last 1 s (default 10)")
    demo.add_argument("--host", default="127.0.0.1", help="address the UI listens on (default 127.0.0.1)")
    demo.add_argument("--port", type=_port, default=3000, help="UI port (default 3000)")

    simulator = commands.add_parser("simulator", help="the local Hostaway API stand-in").add_subparsers(
        dest="simulator_command", required=True
    )
    serve = add(simulator, "serve", cmd_simulator_serve, "serve the Hostaway API stand-in")
    serve.set_defaults(reads_settings=False)  # the stand-in uses no HOSTAWAY_* variable
    from hostaway_pipeline.simulator import cli as simulator_cli

    simulator_cli.add_arguments(serve)
    from hostaway_pipeline.webhooks.cli import add_webhooks_commands

    add_webhooks_commands(commands)
    return parser


def _fail(message: str, status: int) -> int:
    """Print the failure as the one last line on stderr; returns the exit status."""
    line = " ".join(part.strip() for part in message.splitlines() if part.strip())
    print(f"hostaway-pipeline: error: {line or 'failed'}", file=sys.stderr)
    return status


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0].strip() if lines else type(error).__name__


def _unexpected(error: Exception) -> str:
    """One line for a failure no command anticipated; only a bug also gets its traceback (above it)."""
    import sqlalchemy as sa

    if isinstance(error, sa.exc.OperationalError | sa.exc.InterfaceError):  # the database is unreachable
        return f"database error: {_first_line(getattr(error, 'orig', None) or error)}"
    if isinstance(error, OSError):
        where = f" ({error.filename})" if error.filename else ""
        return f"{error.strerror or _first_line(error)}{where}"
    traceback.print_exc()
    return f"unexpected {type(error).__name__}: {_first_line(error)} (a bug: please report it with the traceback above)"


def main(argv: Sequence[str] | None = None) -> int:
    # Partitioned asset checks are a Dagster preview feature we rely on knowingly; say it once in the
    # docs, not on every command. Dagster's beta and preview notices likewise: on a failure stderr holds
    # only the line naming its cause.
    warnings.filterwarnings("ignore", message="Specifying a partitions_def on an AssetCheckSpec")
    warnings.filterwarnings("ignore", message=r".* is currently in (beta|preview)")
    # A retired setting is one line on stderr, like every other message of this command.
    warnings.formatwarning = lambda message, category, *rest: f"hostaway-pipeline: warning: {message}\n"
    args = build_parser().parse_args(argv)
    try:
        if getattr(args, "reads_settings", True):
            load_settings()  # every HOSTAWAY_* variable is checked before anything starts
        args.handler(args)
    except (AccountError, ConfigurationError, CommandError, StackError) as error:
        return _fail(str(error), 2)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    except Exception as error:  # every failure ends with one line naming its cause
        return _fail(_unexpected(error), 1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
