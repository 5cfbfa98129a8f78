"""The registry of Hostaway accounts (tenants): ids, names, encrypted client secrets, enabled flags, egress pools.

Each registered account is one Dagster partition, and belongs to one egress pool (``default`` unless told
otherwise): the pool names the IP its calls are sent from, whose budget they book, and the workers its runs
execute on. Secrets are encrypted before they reach SQL and are
never returned by listing; only :meth:`AccountRegistry.client_secret` decrypts one, for the API client.
Adding an account first proves the key decrypts every secret already stored: a wrong key would otherwise
store the new secret under a key nothing else is under, and the mix could never be read with one key.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from hostaway_pipeline.analytics.tables import ANALYTICS_TABLES
from hostaway_pipeline.settings import DEFAULT_EGRESS_POOL, EGRESS_POOL_PATTERN
from hostaway_pipeline.storage import tables
from hostaway_pipeline.storage.secret_box import SecretBox, WrongKeyError


class AccountError(ValueError):
    """Bad input for the registry (unknown or duplicate account, empty secret, malformed id)."""


@dataclass(frozen=True)
class Account:
    account_id: int
    name: str | None
    enabled: bool
    created_at: datetime
    updated_at: datetime
    egress_pool: str = DEFAULT_EGRESS_POOL


MAX_ACCOUNT_ID = 2**63 - 1  # the bigint column's upper bound


def parse_account_id(text: str | int) -> int:
    """Hostaway account ids are positive integers that fit a bigint; anything else is a clear error.

    Only ASCII digits count: ``str.isdigit`` also accepts e.g. ``'²'`` (which ``int`` rejects) and other
    scripts' digits (which ``int`` accepts), neither of which is an id anyone meant to type.
    """
    value = str(text).strip()
    if not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= MAX_ACCOUNT_ID:
        raise AccountError(
            f"account id must be a positive integer (at most {MAX_ACCOUNT_ID}), got {str(text)!r}"
        )
    return int(value)


def parse_egress_pool(text: str) -> str:
    """An egress pool id as ``HOSTAWAY_EGRESS_ID`` accepts it: 1 to 100 printable ASCII characters, no spaces."""
    value = str(text).strip()
    if not EGRESS_POOL_PATTERN.fullmatch(value):
        raise AccountError(f"egress pool must be 1 to 100 printable ASCII characters without spaces, got {text!r}")
    return value


def account_egress_pools(engine: Engine, account_ids: Iterable[int]) -> dict[int, str]:
    """The egress pool of each registered account among ``account_ids`` (unregistered ones are absent).

    Needs no key: run routing (the run coordinator, in the webserver and daemon) reads it, never a secret.
    """
    wanted = sorted(set(account_ids))
    if not wanted:
        return {}
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(tables.accounts.c.account_id, tables.accounts.c.egress_pool)
            .where(tables.accounts.c.account_id.in_(wanted))
        ).all()
    return {row.account_id: row.egress_pool for row in rows}


_PUBLIC_COLUMNS = (
    tables.accounts.c.account_id,
    tables.accounts.c.name,
    tables.accounts.c.enabled,
    tables.accounts.c.created_at,
    tables.accounts.c.updated_at,
    tables.accounts.c.egress_pool,
)


class AccountRegistry:
    def __init__(self, engine: Engine, secret_box: SecretBox) -> None:
        self.engine = engine
        self.secret_box = secret_box

    def add(self, account_id: int, client_secret: str, name: str | None = None,
            connection: Connection | None = None, egress_pool: str = DEFAULT_EGRESS_POOL) -> Account:
        if not client_secret or not client_secret.strip():
            raise AccountError("the client secret is empty")
        pool = parse_egress_pool(egress_pool)
        encrypted = self.secret_box.encrypt(client_secret.strip())
        statement = (
            sa.dialects.postgresql.insert(tables.accounts)
            .values(account_id=account_id, name=name, client_secret_encrypted=encrypted, egress_pool=pool)
            .on_conflict_do_nothing(index_elements=[tables.accounts.c.account_id])
            .returning(*_PUBLIC_COLUMNS)
        )
        with self._connection(connection) as conn:
            self._check_key_reads_stored_secrets(conn)
            row = conn.execute(statement).first()
        if row is None:
            raise AccountError(f"account {account_id} is already registered (use `accounts remove` first)")
        return Account(**row._mapping)

    def _check_key_reads_stored_secrets(self, connection: Connection) -> None:
        """Raise :class:`WrongKeyError` naming the accounts whose stored secret this key cannot decrypt.

        The rows stay share-locked until the caller's transaction ends, so a key rotation cannot commit
        between this check and the caller's insert.
        """
        rows = connection.execute(
            sa.select(tables.accounts.c.account_id, tables.accounts.c.client_secret_encrypted)
            .order_by(tables.accounts.c.account_id)
            .with_for_update(read=True)
        ).all()
        unreadable = [row.account_id for row in rows if not self.secret_box.can_decrypt(row.client_secret_encrypted)]
        if unreadable:
            shown = ", ".join(map(str, unreadable[:5])) + (f" and {len(unreadable) - 5} more" if len(unreadable) > 5
                                                           else "")
            raise WrongKeyError(
                f"{self.secret_box.source} cannot decrypt the client secrets already stored for accounts {shown}: "
                "it is not the key they were stored with; set that key (`secrets rotate-key` moves them to a new "
                "one). Nothing was added"
            )

    def get(self, account_id: int) -> Account:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(*_PUBLIC_COLUMNS).where(tables.accounts.c.account_id == account_id)
            ).first()
        if row is None:
            raise AccountError(f"account {account_id} is not registered")
        return Account(**row._mapping)

    def all(self) -> list[Account]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(*_PUBLIC_COLUMNS).order_by(tables.accounts.c.account_id)).all()
        return [Account(**row._mapping) for row in rows]

    def enabled_account_ids(self) -> list[int]:
        return [account.account_id for account in self.all() if account.enabled]

    def client_secret(self, account_id: int, connection: Connection | None = None, lock: bool = False) -> str:
        """The account's decrypted secret; ``lock`` holds its row until the caller's transaction ends."""
        statement = sa.select(tables.accounts.c.client_secret_encrypted).where(
            tables.accounts.c.account_id == account_id
        )
        if lock:
            statement = statement.with_for_update()
        with nullcontext(connection) if connection is not None else self.engine.connect() as conn:
            encrypted = conn.execute(statement).scalar()
        if encrypted is None:
            raise AccountError(f"account {account_id} is not registered")
        return self.secret_box.decrypt(encrypted)

    def set_enabled(self, account_id: int, enabled: bool, connection: Connection | None = None) -> Account:
        with self._connection(connection) as conn:
            row = conn.execute(
                sa.update(tables.accounts)
                .where(tables.accounts.c.account_id == account_id)
                .values(enabled=enabled, updated_at=sa.func.now())
                .returning(*_PUBLIC_COLUMNS)
            ).first()
        if row is None:
            raise AccountError(f"account {account_id} is not registered")
        return Account(**row._mapping)

    def set_egress_pool(self, account_id: int, egress_pool: str, connection: Connection | None = None) -> Account:
        """Move the account to another egress pool. Runs submitted from now on carry the new pool; a run
        already queued or running with the old one is refused by the old pool's workers (and its retry,
        submitted afresh, carries the new pool)."""
        pool = parse_egress_pool(egress_pool)
        with self._connection(connection) as conn:
            row = conn.execute(
                sa.update(tables.accounts)
                .where(tables.accounts.c.account_id == account_id)
                .values(egress_pool=pool, updated_at=sa.func.now())
                .returning(*_PUBLIC_COLUMNS)
            ).first()
        if row is None:
            raise AccountError(f"account {account_id} is not registered")
        return Account(**row._mapping)

    def remove(self, account_id: int, purge: bool = False, connection: Connection | None = None) -> dict[str, int]:
        """Unregister the account (and its cached token); with ``purge`` also delete its synced rows."""
        purged: dict[str, int] = {}
        with self._connection(connection) as conn:
            deleted = conn.execute(
                sa.delete(tables.accounts).where(tables.accounts.c.account_id == account_id)
            ).rowcount
            if not deleted:
                raise AccountError(f"account {account_id} is not registered")
            conn.execute(sa.delete(tables.access_tokens).where(tables.access_tokens.c.account_id == account_id))
            if purge:
                for name, entity in tables.ENTITY_TABLES.items():
                    purged[name] = conn.execute(
                        sa.delete(entity.table).where(entity.table.c.account_id == account_id)
                    ).rowcount
                conn.execute(sa.delete(tables.conversation_message_sync).where(
                    tables.conversation_message_sync.c.account_id == account_id))
                # What vouches for the rows (a re-added id must start with a full read, at once) and what
                # was computed from them (analysts must not keep a purged tenant's revenue).
                conn.execute(sa.delete(tables.sync_state).where(tables.sync_state.c.account_id == account_id))
                for name, table in ANALYTICS_TABLES.items():
                    purged[name] = conn.execute(sa.delete(table).where(table.c.account_id == account_id)).rowcount
                purged["webhook_events"] = conn.execute(
                    sa.delete(tables.webhook_events).where(tables.webhook_events.c.account_id == account_id)
                ).rowcount
        return purged

    def _connection(self, connection: Connection | None):
        """The caller's transaction when given one, else a new transaction committed on success."""
        if connection is not None:
            return nullcontext(connection)
        return self.engine.begin()
