"""``hostaway-pipeline webhooks ...``: serve the receiver; register, unregister and list accounts' webhooks.

Added to the main parser by :func:`add_webhooks_commands`. Every failure prints one line and exits 2,
never a traceback; the webhook password comes from ``HOSTAWAY_WEBHOOK_PASSWORD`` only, never argv.
"""

from __future__ import annotations

import argparse
import functools
import logging
import sys
from collections.abc import Callable
from typing import Any

EXIT_FAILURE = 2


def add_webhooks_commands(commands: Any) -> None:
    """Add the ``webhooks`` command group to the main parser's sub-commands."""
    group = commands.add_parser("webhooks", help="receive Hostaway webhooks; register them per account")
    webhooks = group.add_subparsers(dest="webhooks_command", required=True)

    def add(name: str, handler: Callable[[argparse.Namespace], None], help_text: str) -> argparse.ArgumentParser:
        sub: argparse.ArgumentParser = webhooks.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(handler=_one_line_errors(handler))
        return sub

    serve = add("serve", cmd_serve, "serve the webhook receiver (POST /webhooks/hostaway, GET /healthz); "
                "credentials from HOSTAWAY_WEBHOOK_LOGIN and HOSTAWAY_WEBHOOK_PASSWORD")
    serve.add_argument("--host", help="address to listen on (default HOSTAWAY_WEBHOOK_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default HOSTAWAY_WEBHOOK_PORT or 8787)")
    register = add("register", cmd_register, "create or update the account's unified webhook (never a second one) "
                   "with this deployment's HOSTAWAY_WEBHOOK_LOGIN and HOSTAWAY_WEBHOOK_PASSWORD")
    register.add_argument("account_id")
    register.add_argument("--url", required=True, help="the receiver's public URL, ending in /webhooks/hostaway")
    register.add_argument("--alerting-email", help="where Hostaway writes when deliveries keep failing")
    unregister = add("unregister", cmd_unregister, "delete this deployment's unified webhook of the account")
    unregister.add_argument("account_id")
    unregister.add_argument("--url", help="also delete a webhook with this URL whatever its login")
    listing = add("list", cmd_list, "list the unified webhooks of one account, or of every registered account")
    listing.add_argument("account_id", nargs="?")


def _one_line_errors(handler: Callable[[argparse.Namespace], None]) -> Callable[[argparse.Namespace], None]:
    """Any failure becomes one line on stderr and exit status 2."""

    @functools.wraps(handler)
    def run(args: argparse.Namespace) -> None:
        try:
            handler(args)
        except KeyboardInterrupt:
            _fail("interrupted")
        except Exception as error:  # the user sees one line; the cause is named, never a traceback
            _fail(_describe(error))

    return run


def _describe(error: Exception) -> str:
    import sqlalchemy as sa

    if isinstance(error, sa.exc.SQLAlchemyError):
        cause = getattr(error, "orig", None) or error
        return "database error: " + (str(cause).strip().splitlines() or [type(cause).__name__])[0]
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def _fail(message: str) -> None:
    print(f"hostaway-pipeline: error: {message}", file=sys.stderr)
    raise SystemExit(EXIT_FAILURE)


# --- serve ----------------------------------------------------------------------------------------


def cmd_serve(args: argparse.Namespace) -> None:
    from hostaway_pipeline.settings import load_settings
    from hostaway_pipeline.storage.engine import resolve_database_url
    from hostaway_pipeline.storage.redaction import Redactor
    from hostaway_pipeline.webhooks.config import listen_address, webhook_credentials
    from hostaway_pipeline.webhooks.receiver import WEBHOOK_PATH, receiver_app, serve

    settings = load_settings()
    credentials = webhook_credentials(settings)  # refuse to start before anything else happens
    address = listen_address(settings)
    host = args.host or address.host
    port = address.port if args.port is None else args.port
    if not 0 <= port <= 65535:
        raise ValueError(f"--port {port} is not a TCP port (0-65535)")
    app = receiver_app(resolve_database_url(settings), credentials, Redactor(settings.redacted_fields))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    print(f"receiving Hostaway webhooks on http://{host}:{port}{WEBHOOK_PATH}", flush=True)
    serve(app, host, port)


# --- registration ---------------------------------------------------------------------------------


def _api_client(account_id: int) -> Any:
    """A Hostaway client for a registered account, paced by the shared limiter like every other caller."""
    from hostaway_pipeline.defs.resources import HostawayApiResource, HostawayRateLimiterResource, WarehouseResource
    from hostaway_pipeline.environment import prepare_environment

    warehouse = WarehouseResource(database_url=prepare_environment().database_url)
    warehouse.accounts.get(account_id)  # a one-line error when the account is not registered
    api = HostawayApiResource(warehouse=warehouse, rate_limiter=HostawayRateLimiterResource(warehouse=warehouse))
    return api.client_for(account_id)


def _registered_account_ids() -> list[int]:
    from hostaway_pipeline.defs.resources import WarehouseResource
    from hostaway_pipeline.environment import prepare_environment

    return [account.account_id
            for account in WarehouseResource(database_url=prepare_environment().database_url).accounts.all()]


def cmd_register(args: argparse.Namespace) -> None:
    from hostaway_pipeline.settings import load_settings
    from hostaway_pipeline.storage.account_registry import parse_account_id
    from hostaway_pipeline.webhooks.config import webhook_credentials
    from hostaway_pipeline.webhooks.registration import register

    account_id = parse_account_id(args.account_id)
    if not args.url.startswith(("https://", "http://")):
        raise ValueError(f"--url must be an http(s) URL, got {args.url!r}")
    credentials = webhook_credentials(load_settings())
    registration = register(_api_client(account_id), args.url, credentials.login, credentials.password,
                            args.alerting_email)
    print(f"{registration.action} unified webhook {registration.webhook.webhook_id} of account {account_id}: "
          f"{registration.webhook.url} (login {registration.webhook.login})")


def cmd_unregister(args: argparse.Namespace) -> None:
    from hostaway_pipeline.settings import load_settings
    from hostaway_pipeline.storage.account_registry import parse_account_id
    from hostaway_pipeline.webhooks.registration import unregister

    account_id = parse_account_id(args.account_id)
    login = load_settings().webhook_login
    if not login and not args.url:
        raise ValueError("set HOSTAWAY_WEBHOOK_LOGIN (or give --url) to say which webhook is this deployment's")
    deleted = unregister(_api_client(account_id), login or "", args.url)
    if not deleted:
        print(f"account {account_id} has no unified webhook of this deployment; nothing deleted")
    for webhook in deleted:
        print(f"deleted unified webhook {webhook.webhook_id} of account {account_id}: {webhook.url}")


def cmd_list(args: argparse.Namespace) -> None:
    from hostaway_pipeline.storage.account_registry import parse_account_id
    from hostaway_pipeline.webhooks.registration import list_webhooks

    account_ids = [parse_account_id(args.account_id)] if args.account_id else _registered_account_ids()
    if not account_ids:
        print("no accounts registered (add one with: hostaway-pipeline accounts add ACCOUNT_ID)")
        return
    print(f"{'account_id':>12}  {'webhook':>8}  {'enabled':7}  {'login':20}  url")
    for account_id in account_ids:
        webhooks = list_webhooks(_api_client(account_id))
        if not webhooks:
            print(f"{account_id:>12}  {'-':>8}  {'-':7}  {'-':20}  (none)")
        for webhook in webhooks:
            print(f"{account_id:>12}  {webhook.webhook_id:>8}  {'yes' if webhook.enabled else 'no':7}  "
                  f"{webhook.login or '':20}  {webhook.url or ''}")
