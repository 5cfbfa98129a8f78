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
        return list(connection.execute(sa.select(tables.webhook_events).order_by("event_id")).all())


def register_account(engine: Engine, account_id: int) -> None:
    with engine.begin() as connection:
        connection.execute(sa.insert(tables.accounts).values(account_id=account_id, client_secret_encrypted=b"x"))


@contextmanager
def refusing_object(engine: Engine, object_id: int) -> Iterator[None]:
    """A trigger makes Postgres refuse any event about ``object_id`` (as it would a value it cannot store)."""
    with engine.begin() as connection:
        connection.execute(sa.text(
            "CREATE FUNCTION hostaway.refuse_one_object() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            f"IF NEW.object_id = {int(object_id)} THEN RAISE EXCEPTION 'object {int(object_id)} refused'; END IF; "
            "RETURN NEW; END $$"))
        connection.execute(sa.text(
            "CREATE TRIGGER refuse_one_object BEFORE INSERT ON hostaway.webhook_events "
            "FOR EACH ROW EXECUTE FUNCTION hostaway.refuse_one_object()"))
    try:
        yield
    finally:
        with engine.begin() as connection:
            connection.execute(sa.text("DROP TRIGGER refuse_one_object ON hostaway.webhook_events"))
            connection.execute(sa.text("DROP FUNCTION hostaway.refuse_one_object()"))


@contextmanager
def commits_failing(engine: Engine) -> Iterator[None]:
    """A deferred constraint trigger: every transaction that inserts an event fails at its COMMIT."""
    with engine.begin() as connection:
        connection.execute(sa.text(
            "CREATE FUNCTION hostaway.fail_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "RAISE EXCEPTION 'commit refused'; END $$"))
        connection.execute(sa.text(
            "CREATE CONSTRAINT TRIGGER fail_at_commit AFTER INSERT ON hostaway.webhook_events "
            "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION hostaway.fail_at_commit()"))
    try:
        yield
    finally:
        with engine.begin() as connection:
            connection.execute(sa.text("DROP TRIGGER fail_at_commit ON hostaway.webhook_events"))
            connection.execute(sa.text("DROP FUNCTION hostaway.fail_at_commit()"))


def waiting_inserts(engine: Engine) -> int:
    """How many sessions wait for a lock on hostaway.webhook_events."""
    with engine.connect() as connection:
        return connection.execute(sa.text(
            "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
            "WHERE c.relname = 'webhook_events' AND NOT l.granted"
        )).scalar_one()


@contextmanager
def table_locked(engine: Engine) -> Iterator[None]:
    """Hold hostaway.webhook_events so inserts wait until the block ends."""
    with engine.connect() as blocker:
        blocker.execute(sa.text("LOCK TABLE hostaway.webhook_events IN EXCLUSIVE MODE"))
        try:
            yield
        finally:
            blocker.rollback()
