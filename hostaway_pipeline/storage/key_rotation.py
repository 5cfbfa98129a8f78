"""``hostaway-pipeline secrets rotate-key``: every stored secret re-encrypted under a new key.

What is stored encrypted: each account's client secret (``hostaway.accounts``) and each cached access
token (``hostaway.access_tokens``). Both are re-encrypted in one transaction, with both tables locked
against writers, by a ``MultiFernet`` holding the new key first and the current keys after it: a row
under any of them ends up under the new one, so the rotation is safe to run again whatever it was
interrupted by. A client secret that no key decrypts stops the rotation, naming the accounts, and
nothing changes. A cached token that no key decrypts is dropped: it is only a cache, the next call mints
a new one.

Where the new key lives depends on where the current one does:

* ``HOSTAWAY_SECRET_KEY`` (your own secret store): the new key is given by the operator, who sets
  ``HOSTAWAY_SECRET_KEY`` to it afterwards. Until then the old key no longer decrypts what is stored;
  ``HOSTAWAY_SECRET_KEY=NEW,OLD`` on running processes bridges the change.
* The key generated into the home (embedded default): the key file first gets the new key in front of
  the current ones (written atomically and synced) before any row changes, and is cut down to the new
  key only after the transaction commits. A crash at any point leaves a file that decrypts every row;
  run again, the rotation resumes with the key already at the front of the file.

Rotations never overlap: each holds a Postgres advisory lock from its first read of the key file to its
last write of it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from cryptography.fernet import Fernet
from sqlalchemy.engine import Connection, Engine

from hostaway_pipeline.settings import ConfigurationError, Settings
from hostaway_pipeline.storage import tables
from hostaway_pipeline.storage.secret_box import (
    KeyMaterial,
    SecretBox,
    WrongKeyError,
    key_file_keys,
    key_file_path,
    key_file_source,
    split_keys,
    write_key_file,
)

NEW_KEY_VARIABLE = "HOSTAWAY_NEW_SECRET_KEY"
_LOCK_KEY = "hostaway_pipeline.rotate_key"


@dataclass(frozen=True)
class RotationResult:
    client_secrets: int  # re-encrypted
    tokens: int  # re-encrypted
    tokens_dropped: int  # no key decrypted them
    key_file: Path | None  # where the new key was written (embedded default); None when the operator holds it


def rotate_secret_key(engine: Engine, settings: Settings, new_key: KeyMaterial | None) -> RotationResult:
    """Re-encrypt every stored secret under ``new_key``.

    ``new_key`` may be None only with the key generated into the home: a new one is then generated (or,
    after an interrupted rotation, the one it had already put in front of the file is used).
    """
    new_keys = None if new_key is None else split_keys(new_key)
    if new_keys is not None:
        if len(new_keys) != 1:
            raise ConfigurationError(f"{NEW_KEY_VARIABLE} must hold exactly one key")
        SecretBox(new_keys, NEW_KEY_VARIABLE)  # a clear error for a malformed key, before anything changes
    with _rotation_lock(engine) as connection:
        if settings.secret_key:
            if new_keys is None:
                raise ConfigurationError(f"give the new key in {NEW_KEY_VARIABLE} (never as an argument)")
            current = split_keys(settings.secret_key)
            SecretBox(current, "HOSTAWAY_SECRET_KEY")
            box = SecretBox([*new_keys, *current], f"{NEW_KEY_VARIABLE} or HOSTAWAY_SECRET_KEY")
            return _reencrypt_everything(connection, box, key_file=None)
        if not settings.uses_embedded_postgres:
            raise ConfigurationError(
                "HOSTAWAY_SECRET_KEY must be set when HOSTAWAY_DATABASE_URL points at your own Postgres "
                "(secrets are stored encrypted with it)"
            )
        home = settings.home
        on_file = key_file_keys(home)
        if new_keys is not None:
            new = new_keys[0]
        elif len(on_file) > 1:
            new = on_file[0]  # an interrupted rotation had already put it first: finish that one
        else:
            new = Fernet.generate_key()
        keys = [new, *(key for key in on_file if key != new)]
        write_key_file(home, keys)  # durable before any row changes: every row stays readable from here on
        result = _reencrypt_everything(connection, SecretBox(keys, key_file_source(home)), key_file_path(home))
        write_key_file(home, [new])
        return result


@contextlib.contextmanager
def _rotation_lock(engine: Engine) -> Iterator[Connection]:
    """A connection holding the session-level rotation lock (released explicitly: pooled connections live on)."""
    lock = sa.select(sa.func.pg_advisory_lock(sa.func.hashtext(_LOCK_KEY), 0))
    unlock = sa.select(sa.func.pg_advisory_unlock(sa.func.hashtext(_LOCK_KEY), 0))
    with engine.connect() as connection:
        connection.execute(lock)
        connection.commit()
        try:
            yield connection
        finally:
            try:
                connection.rollback()
                connection.execute(unlock)
                connection.commit()
            except sa.exc.DBAPIError:
                connection.invalidate()  # a dead connection's session (and lock) is gone with it


def _reencrypt_everything(connection: Connection, box: SecretBox, key_file: Path | None) -> RotationResult:
    """One transaction: every client secret and token under the box's first key, or nothing changed."""
    accounts, tokens = tables.accounts, tables.access_tokens
    try:
        connection.execute(sa.text(
            f"LOCK TABLE {tables.SCHEMA}.{accounts.name}, {tables.SCHEMA}.{tokens.name} IN EXCLUSIVE MODE"
        ))
        secrets = connection.execute(
            sa.select(accounts.c.account_id, accounts.c.client_secret_encrypted).order_by(accounts.c.account_id)
        ).all()
        unreadable = [row.account_id for row in secrets if not box.can_decrypt(row.client_secret_encrypted)]
        if unreadable:
            shown = ", ".join(map(str, unreadable[:5])) + (f" and {len(unreadable) - 5} more"
                                                           if len(unreadable) > 5 else "")
            raise WrongKeyError(
                f"the client secrets of accounts {shown} decrypt with neither the current nor the new key: "
                "set HOSTAWAY_SECRET_KEY to the key they were stored with (or re-add those accounts); "
                "nothing was re-encrypted"
            )
        for row in secrets:
            connection.execute(
                sa.update(accounts).where(accounts.c.account_id == row.account_id)
                .values(client_secret_encrypted=box.reencrypt(row.client_secret_encrypted))
            )
        cached = connection.execute(sa.select(tokens.c.account_id, tokens.c.token_encrypted)).all()
        dropped = 0
        for row in cached:
            if box.can_decrypt(row.token_encrypted):
                connection.execute(
                    sa.update(tokens).where(tokens.c.account_id == row.account_id)
                    .values(token_encrypted=box.reencrypt(row.token_encrypted))
                )
            else:
                connection.execute(sa.delete(tokens).where(tokens.c.account_id == row.account_id))
                dropped += 1
        connection.commit()
    except BaseException:
        connection.rollback()
        raise
    return RotationResult(len(secrets), len(cached) - dropped, dropped, key_file)
