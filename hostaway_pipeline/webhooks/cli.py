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
    address = listen_address()
    host = args.host or address.host
    port = address.port if args.port is None else args.port
    if not 0 <= port <= 65535:
        raise ValueError(f"--port {port} is not a TCP port (0-65535)")
    app = receiver_app(resolve_database_url(settings), credentials, Redactor(settings.redacted_fields))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    print(f"receiving Hostaway webhooks on http://{host}:{port}{WEBHOOK_PATH}", flush=True)
    serve(app, host, port)
