"""Key rotation against real Postgres: every stored secret and token moves to the new key, atomically, and a
rotation interrupted anywhere leaves everything readable and finishes when run again."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet

from hostaway_pipeline.hostaway.access_tokens import AccessTokenStore
from hostaway_pipeline.settings import Settings, load_settings
from hostaway_pipeline.storage import tables
from hostaway_pipeline.storage.account_registry import AccountRegistry
from hostaway_pipeline.storage.key_rotation import rotate_secret_key
from hostaway_pipeline.storage.secret_box import (
    KEY_FILE_NAME,
    SecretBox,
    WrongKeyError,
    key_file_keys,
    secret_box_from_settings,
    write_key_file,
)

SECRETS = {101: "secret-of-101", 102: "secret-of-102"}
TOKEN = "bearer-token-of-101"


def _env_settings(tmp_path: Path, key: bytes) -> Settings:
    """Your own Postgres and HOSTAWAY_SECRET_KEY (the engine is passed separately)."""
    return load_settings({"HOSTAWAY_PIPELINE_HOME": str(tmp_path / "home"), "HOSTAWAY_SECRET_KEY": key.decode(),
                          "HOSTAWAY_DATABASE_URL": "postgresql://unused/unused"})


def _embedded_settings(tmp_path: Path) -> Settings:
    """The embedded default: the key is generated into the home (the engine is passed separately)."""
    return load_settings({"HOSTAWAY_PIPELINE_HOME": str(tmp_path / "home")})


def _store(engine, box: SecretBox) -> None:
    registry = AccountRegistry(engine, box)
    for account_id, secret in SECRETS.items():
        registry.add(account_id, secret)
    AccessTokenStore(engine, box, activation_delay_seconds=0).refresh(101, lambda: (TOKEN, 86400))


def _ciphertexts(engine) -> list[bytes]:
    with engine.connect() as connection:
        secrets = connection.execute(sa.select(tables.accounts.c.client_secret_encrypted)
                                     .order_by(tables.accounts.c.account_id)).scalars().all()
        tokens = connection.execute(sa.select(tables.access_tokens.c.token_encrypted)
                                    .order_by(tables.access_tokens.c.account_id)).scalars().all()
    return [bytes(value) for value in (*secrets, *tokens)]


def _readable_with(engine, box: SecretBox) -> bool:
    """Every stored secret and token decrypts with ``box`` to what was stored."""
    registry = AccountRegistry(engine, box)
    token = AccessTokenStore(engine, box).current(101)
    return ({account_id: registry.client_secret(account_id) for account_id in SECRETS} == SECRETS
            and token is not None and token.token == TOKEN)


def _nothing_readable_with(engine, key: bytes) -> bool:
    box = SecretBox(key)
    return not any(box.can_decrypt(ciphertext) for ciphertext in _ciphertexts(engine))


def test_with_hostaway_secret_key_everything_moves_to_the_new_key_and_running_again_is_harmless(engine, tmp_path):
    old, new = Fernet.generate_key(), Fernet.generate_key()
    _store(engine, SecretBox(old))

    result = rotate_secret_key(engine, _env_settings(tmp_path, old), new.decode())
    assert (result.client_secrets, result.tokens, result.tokens_dropped, result.key_file) == (2, 1, 0, None)
    assert _readable_with(engine, SecretBox(new))
    assert _nothing_readable_with(engine, old)

    # Run again as after a crash that followed the commit (the environment still names the old key).
    assert rotate_secret_key(engine, _env_settings(tmp_path, old), new.decode()).client_secrets == 2
    assert _readable_with(engine, SecretBox(new))
    # And once HOSTAWAY_SECRET_KEY is the new key.
    rotate_secret_key(engine, _env_settings(tmp_path, new), new.decode())
    assert _readable_with(engine, SecretBox(new))


def test_a_secret_no_key_decrypts_stops_the_rotation_and_changes_nothing(engine, tmp_path):
    old, new, unknown = Fernet.generate_key(), Fernet.generate_key(), Fernet.generate_key()
    _store(engine, SecretBox(old))
    AccountRegistry(engine, SecretBox([unknown, old])).add(103, "stored-under-an-unknown-key")
    before = _ciphertexts(engine)

    with pytest.raises(WrongKeyError, match="accounts 103 decrypt with neither"):
        rotate_secret_key(engine, _env_settings(tmp_path, old), new.decode())
    assert _ciphertexts(engine) == before


def test_a_cached_token_no_key_decrypts_is_dropped_since_it_is_only_a_cache(engine, tmp_path):
    old, new = Fernet.generate_key(), Fernet.generate_key()
    _store(engine, SecretBox(old))
    with engine.begin() as connection:
        connection.execute(sa.update(tables.access_tokens).values(
            token_encrypted=SecretBox(Fernet.generate_key()).encrypt(TOKEN)))

    result = rotate_secret_key(engine, _env_settings(tmp_path, old), new.decode())
    assert (result.client_secrets, result.tokens, result.tokens_dropped) == (2, 0, 1)
    assert AccessTokenStore(engine, SecretBox(new)).current(101) is None


def test_a_malformed_new_key_is_refused_before_anything_changes(engine, tmp_path):
    old = Fernet.generate_key()
    _store(engine, SecretBox(old))
    before = _ciphertexts(engine)
    with pytest.raises(Exception, match="HOSTAWAY_NEW_SECRET_KEY is not a valid Fernet key") as raised:
        rotate_secret_key(engine, _env_settings(tmp_path, old), "not-a-key")
    assert "not-a-key" not in str(raised.value)
    assert _ciphertexts(engine) == before


def test_the_embedded_default_generates_the_new_key_into_the_home(engine, tmp_path):
    settings = _embedded_settings(tmp_path)
    _store(engine, secret_box_from_settings(settings))
    [old] = key_file_keys(settings.home)

    result = rotate_secret_key(engine, settings, None)
    assert result.key_file == settings.home / KEY_FILE_NAME
    [new] = key_file_keys(settings.home)
    assert new != old
    assert (settings.home / KEY_FILE_NAME).stat().st_mode & 0o777 == 0o600
    assert sorted(path.name for path in settings.home.iterdir()) == [KEY_FILE_NAME]  # no temporary file left
    assert _readable_with(engine, secret_box_from_settings(settings))
    assert _nothing_readable_with(engine, old)


def test_a_rotation_that_crashes_halfway_leaves_everything_readable_and_finishes_when_run_again(
        engine, tmp_path, monkeypatch):
    settings = _embedded_settings(tmp_path)
    _store(engine, secret_box_from_settings(settings))
    [old] = key_file_keys(settings.home)
    before = _ciphertexts(engine)

    calls = 0
    reencrypt = SecretBox.reencrypt

    def crash_on_the_second_row(self, ciphertext):
        nonlocal calls
        calls += 1
        if calls == 2:
            raise KeyboardInterrupt  # the process dies between two rows
        return reencrypt(self, ciphertext)

    monkeypatch.setattr(SecretBox, "reencrypt", crash_on_the_second_row)
    with pytest.raises(KeyboardInterrupt):
        rotate_secret_key(engine, settings, None)
    monkeypatch.undo()

    assert _ciphertexts(engine) == before  # one transaction: no row moved
    pending, kept = key_file_keys(settings.home)  # the new key is already durable, in front of the old one
    assert kept == old
    assert _readable_with(engine, secret_box_from_settings(settings))  # nothing unreadable meanwhile

    rotate_secret_key(engine, settings, None)
    assert key_file_keys(settings.home) == [pending]  # finished the interrupted rotation, no third key
    assert _readable_with(engine, SecretBox(pending))
    assert _nothing_readable_with(engine, old)


def test_a_rotation_that_crashed_after_its_commit_finishes_when_run_again(engine, tmp_path):
    settings = _embedded_settings(tmp_path)
    [old] = key_file_keys(settings.home)
    new = Fernet.generate_key()
    _store(engine, SecretBox(new))  # the rows already moved to the new key...
    write_key_file(settings.home, [new, old])  # ...and the file was never cut down to it

    rotate_secret_key(engine, settings, None)
    assert key_file_keys(settings.home) == [new]
    assert _readable_with(engine, secret_box_from_settings(settings))
