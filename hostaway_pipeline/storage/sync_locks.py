"""One writer per (account, resource) at a time: a Postgres advisory lock held for a whole sync.

Every sync path (a queued run, ``hostaway-pipeline sync`` in-process, a backfill) takes the lock of the
resource it reconciles, so two reconciliations of one account's resource never interleave their reads
and writes, whoever started them and on whichever machine. The lock is session-level on a dedicated
autocommit connection (no transaction stays open while the sync talks to the API) and dies with that
connection, so a crashed worker never leaves it behind.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy.engine import Engine

# How long a sync waits for another sync of the same account and resource before it gives up.
DEFAULT_LOCK_WAIT_SECONDS = 3600.0
_POLL_SECONDS = 1.0


class SyncLockTimeout(Exception):
    """Another sync of the same account and resource held the lock for longer than we would wait."""


def sync_lock_key(account_id: int, resource: str) -> int:
    """A stable signed 64-bit advisory-lock key for (account, resource)."""
    digest = hashlib.blake2b(f"hostaway-sync:{int(account_id)}:{resource}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


@contextmanager
def sync_lock(
    engine: Engine, account_id: int, resource: str, wait_seconds: float = DEFAULT_LOCK_WAIT_SECONDS,
    on_wait: Callable[[str], None] | None = None, sleep: Callable[[float], None] = time.sleep,
) -> Iterator[None]:
    """Hold the (account, resource) sync lock for the block; wait up to ``wait_seconds`` for it."""
    key = sync_lock_key(account_id, resource)
    connection = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    try:
        deadline = time.monotonic() + wait_seconds
        told = False
        while not connection.execute(sa.select(sa.func.pg_try_advisory_lock(key))).scalar_one():
            if not told and on_wait is not None:
                on_wait(f"waiting for another sync of account {account_id} {resource} to finish")
                told = True
            if time.monotonic() >= deadline:
                raise SyncLockTimeout(
                    f"account {account_id} {resource}: another sync held the lock for over {wait_seconds:g} s"
                )
            sleep(_POLL_SECONDS)
        try:
            yield
        finally:
            connection.execute(sa.select(sa.func.pg_advisory_unlock(key)))
    finally:
        connection.close()
