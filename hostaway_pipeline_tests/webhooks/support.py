"""Helpers for the webhook tests: the receiver served by uvicorn on a real socket, in a thread."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
import uvicorn
from sqlalchemy.engine import Engine
from starlette.applications import Starlette

from hostaway_pipeline.storage import tables
from hostaway_pipeline.webhooks.receiver import WEBHOOK_PATH

LOGIN = "hostaway-hook"
PASSWORD = "hook-Password-5e1f"


@contextmanager
def served(app: Starlette) -> Iterator[str]:
    """Serve ``app`` on 127.0.0.1 (a free port) until the block ends; yields the base URL."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    while not server.started:  # startup is a bind we already did: quick, but not instantaneous
        if not thread.is_alive():
            raise RuntimeError("the receiver did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        listener.close()


def webhook_url(base_url: str) -> str:
    return base_url + WEBHOOK_PATH


def stored_events(engine: Engine) -> list[sa.Row]:
    with engine.connect() as connection:
        return connection.execute(sa.select(tables.webhook_events).order_by("event_id")).all()


def register_account(engine: Engine, account_id: int) -> None:
    with engine.begin() as connection:
        connection.execute(sa.insert(tables.accounts).values(account_id=account_id, client_secret_encrypted=b"x"))
