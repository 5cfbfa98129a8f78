"""Command line for the Hostaway stand-in: ``simulator serve`` runs it in the foreground.

Mounted by the main CLI as ``hostaway-pipeline simulator serve ...`` (``add_arguments`` + ``run``) and
runnable alone as ``python -m hostaway_pipeline.simulator serve ...``.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from typing import TextIO

from hostaway_pipeline.simulator.queries import AFTER_ID_READINGS, AFTER_ID_UNKNOWN, COUNT_WITH_CURSOR
from hostaway_pipeline.simulator.server import SimulatorServer, parse_accounts_spec


def serve(
    port: int = 8089,
    accounts_spec: str = "10001:seed",
    seed: int = 7,
    time_scale: float = 1.0,
    host: str = "127.0.0.1",
    token_response_shape: str = "plain",
    *,
    ip_limit: int = 15,
    account_limit: int = 20,
    window_seconds: float = 10.0,
    after_id_reading: str = "keyset",
    after_id_unknown: str = "empty",
    count_with_cursor: str = "total",
    trust_forwarded_for: bool = False,
    verbose: bool = False,
    out: TextIO | None = None,
    stop_event: threading.Event | None = None,
) -> int:
    """Run the simulator until SIGINT/SIGTERM (or ``stop_event``); print base URL and client secrets."""
    out = out or sys.stdout
    accounts = parse_accounts_spec(accounts_spec)
    stop = stop_event or threading.Event()
    simulator = SimulatorServer(
        accounts=accounts,
        seed=seed,
        time_scale=time_scale,
        host=host,
        port=port,
        token_response_shape=token_response_shape,
        ip_limit=ip_limit,
        account_limit=account_limit,
        window_seconds=window_seconds,
        after_id_reading=after_id_reading,
        after_id_unknown=after_id_unknown,
        count_with_cursor=count_with_cursor,
        trust_forwarded_for=trust_forwarded_for,
        verbose=verbose,
    )
    installed: dict[signal.Signals, object] = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            installed[signum] = signal.signal(signum, lambda *_: stop.set())
    simulator.start()
    try:
        # A local dev stand-in: printing its client secrets here is the point of the banner.
        print(f"Hostaway simulator listening: base URL {simulator.base_url}", file=out)
        print(
            f"admin API {simulator.admin_url}  (seed {seed}, time scale {time_scale}x, "
            f"limits {ip_limit}/IP and {account_limit}/account per {window_seconds:g} s simulated)",
            file=out,
        )
        print(
            f"afterId reading {after_id_reading}, unknown afterId {after_id_unknown}, "
            f"count with a cursor {count_with_cursor}",
            file=out,
        )
        for account_id, size in accounts.items():
            print(
                f"account {account_id} ({size}): client_id={account_id} "
                f"client_secret={simulator.client_secret(account_id)}",
                file=out,
            )
        out.flush()
        while not stop.wait(0.5):
            pass
    finally:
        simulator.stop()
        for signum, previous in installed.items():
            signal.signal(signum, previous)  # type: ignore[arg-type]
        print("Hostaway simulator stopped", file=out)
        out.flush()
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``serve`` options (--port, --accounts, --seed, --time-scale, ...) to ``parser``.

    The caller owns the command structure: the main CLI gives its ``simulator serve`` parser, and
    ``main`` here gives the ``serve`` subparser of ``python -m hostaway_pipeline.simulator``.
    """
    serve_parser = parser
    serve_parser.add_argument("--port", type=int, default=8089, help="TCP port (0 picks a free one)")
    serve_parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    serve_parser.add_argument(
        "--accounts",
        default="10001:seed",
        metavar="ID:SIZE[,ID:SIZE...]",
        help="accounts to serve; SIZE is seed, empty or a number of reservations",
    )
    serve_parser.add_argument("--seed", type=int, default=7, help="seed of the generated data and secrets")
    serve_parser.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        help="simulated seconds per real second (also shrinks rate windows)",
    )
    serve_parser.add_argument(
        "--token-shape",
        choices=("plain", "wrapped"),
        default="plain",
        help="shape of the /accessTokens response",
    )
    serve_parser.add_argument("--ip-limit", type=int, default=15, help="calls per window per client IP")
    serve_parser.add_argument("--account-limit", type=int, default=20, help="calls per window per account")
    serve_parser.add_argument(
        "--window-seconds", type=float, default=10.0, help="rate-limit window in simulated seconds"
    )
    serve_parser.add_argument(
        "--after-id-reading",
        choices=AFTER_ID_READINGS,
        default="keyset",
        help="afterId on /v1/reservations: keyset = the rows after the cursor row in the request's sort "
        "order (documented, default); id_order = id > afterId in id order whatever sortOrder says; "
        "ignored = an old server that pages by offset only",
    )
    serve_parser.add_argument(
        "--after-id-unknown",
        choices=AFTER_ID_UNKNOWN,
        default="empty",
        help="answer to afterId=0 or an id matching no row: empty = empty result with the true count "
        "(default); first_page = as if no afterId; error = HTTP 400",
    )
    serve_parser.add_argument(
        "--count-with-cursor",
        choices=COUNT_WITH_CURSOR,
        default="total",
        help="count when afterId is given: total = all rows matching the filters (default); "
        "remaining = the rows from this page on",
    )
    serve_parser.add_argument(
        "--trust-forwarded-for",
        action="store_true",
        help="take the client IP from X-Forwarded-For (to simulate several IPs)",
    )
    serve_parser.add_argument("--verbose", action="store_true", help="log every request to stderr")


def run(namespace: argparse.Namespace) -> int:
    """Serve with options parsed by a parser that ``add_arguments`` filled; returns the exit code."""
    try:
        return serve(
            port=namespace.port,
            accounts_spec=namespace.accounts,
            seed=namespace.seed,
            time_scale=namespace.time_scale,
            host=namespace.host,
            token_response_shape=namespace.token_shape,
            ip_limit=namespace.ip_limit,
            account_limit=namespace.account_limit,
            window_seconds=namespace.window_seconds,
            after_id_reading=namespace.after_id_reading,
            after_id_unknown=namespace.after_id_unknown,
            count_with_cursor=namespace.count_with_cursor,
            trust_forwarded_for=namespace.trust_forwarded_for,
            verbose=namespace.verbose,
        )
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m hostaway_pipeline.simulator",
        description="Local Hostaway API stand-in for demos, tests and benchmarks.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    add_arguments(commands.add_parser("serve", help="run the local Hostaway API stand-in in the foreground"))
    return run(parser.parse_args(argv))
