"""Hostaway access tokens, cached encrypted in Postgres and shared by every process.

A token is minted at most once at a time per account (a transaction-scoped advisory lock), is used only
once Hostaway considers it live (about 1 s after issue, measured on the database clock), and is
replaced only when the token that failed is still the stored one, so a crowd of threads hitting one
expired token triggers one refresh, not one each.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Engine

from hostaway_pipeline.storage.secret_box import SecretBox, WrongKeyError
from hostaway_pipeline.storage.tables import access_tokens

# Refresh a little before Hostaway's expiry rather than have a request fail on it.
EXPIRY_MARGIN_SECONDS = 300
# Wait this much longer than the documented activation delay (about 1 s) before a new token's first use:
# clocks and Hostaway's own propagation are not exact, and a 403 on a new token costs a refresh cascade.
ACTIVATION_MARGIN_FACTOR = 1.25


@dataclass(frozen=True)
class AccessToken:
    account_id: int
    token: str
    issued_at: datetime
    usable_in_seconds: float  # by the database clock, when read

    def __repr__(self) -> str:  # never show the token
        return f"AccessToken(account_id={self.account_id}, issued_at={self.issued_at:%Y-%m-%d %H:%M:%S})"


MintFunction = Callable[[], tuple[str, float]]  # -> (token, expires_in seconds)


class AccessTokenStore:
    def __init__(self, engine: Engine, secret_box: SecretBox, activation_delay_seconds: float = 1.0) -> None:
        self.engine = engine
        self.secret_box = secret_box
        self.activation_delay_seconds = activation_delay_seconds

    def _select(self, account_id: int) -> sa.Select:
        return sa.select(
            access_tokens.c.token_encrypted,
            access_tokens.c.issued_at,
            sa.func.extract("epoch", access_tokens.c.usable_after - sa.func.clock_timestamp()).label("usable_in"),
        ).where(
            access_tokens.c.account_id == account_id,
            access_tokens.c.expires_at
            > sa.func.clock_timestamp() + sa.func.make_interval(0, 0, 0, 0, 0, 0, EXPIRY_MARGIN_SECONDS),
        )

    def _token(self, account_id: int, row: sa.Row) -> AccessToken:
        return AccessToken(
            account_id, self.secret_box.decrypt(row.token_encrypted), row.issued_at, max(float(row.usable_in), 0.0)
        )

    def _readable(self, account_id: int, row: sa.Row | None) -> AccessToken | None:
        """The stored token, or None when there is none or it was encrypted under a key we no longer hold
        (a process that started before a key rotation): a cached token is only a cache, mint another."""
        if row is None:
            return None
        try:
            return self._token(account_id, row)
        except WrongKeyError:
            return None

    def current(self, account_id: int) -> AccessToken | None:
        with self.engine.connect() as connection:
            row = connection.execute(self._select(account_id)).first()
        return self._readable(account_id, row)

    def refresh(self, account_id: int, mint: MintFunction, failed_issued_at: datetime | None = None) -> AccessToken:
        """Return a live token, minting one only if none is stored or the stored one is the one that failed."""
        with self.engine.begin() as connection:
            connection.execute(
                sa.text("SELECT pg_advisory_xact_lock(hashtext('hostaway_pipeline.token'), CAST(:account AS int))"),
                {"account": account_id % 2_000_000_000},
            )
            row = connection.execute(self._select(account_id)).first()
            if row is not None and (failed_issued_at is None or row.issued_at != failed_issued_at):
                stored = self._readable(account_id, row)
                if stored is not None:
                    return stored
            token, expires_in = mint()
            row = connection.execute(
                pg_insert(access_tokens)
                .values(
                    account_id=account_id,
                    token_encrypted=self.secret_box.encrypt(token),
                    issued_at=sa.func.clock_timestamp(),
                    usable_after=sa.func.clock_timestamp()
                    + sa.func.make_interval(0, 0, 0, 0, 0, 0,
                                            self.activation_delay_seconds * ACTIVATION_MARGIN_FACTOR),
                    expires_at=sa.func.clock_timestamp() + sa.func.make_interval(0, 0, 0, 0, 0, 0, expires_in),
                )
                .on_conflict_do_update(
                    index_elements=[access_tokens.c.account_id],
                    set_={
                        name: sa.literal_column(f"excluded.{name}")
                        for name in ("token_encrypted", "issued_at", "usable_after", "expires_at")
                    },
                )
                .returning(
                    access_tokens.c.token_encrypted,
                    access_tokens.c.issued_at,
                    sa.func.extract("epoch", access_tokens.c.usable_after - sa.func.clock_timestamp()).label(
                        "usable_in"
                    ),
                )
            ).one()
            return self._token(account_id, row)

    def forget(self, account_id: int) -> None:
        with self.engine.begin() as connection:
            connection.execute(sa.delete(access_tokens).where(access_tokens.c.account_id == account_id))
