"""Encryption at rest for secrets stored in Postgres (client secrets, access tokens).

Fernet (AES-128-CBC + HMAC-SHA256) from ``cryptography``. The key comes from ``HOSTAWAY_SECRET_KEY``;
with the embedded default database and no key set, one is generated once into the pipeline home
(mode 0600), so a fresh machine works with no configuration. A deployment on its own Postgres must set
the key explicitly: generating one silently there would make secrets unreadable on the next machine.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from hostaway_pipeline.settings import ConfigurationError, Settings

KEY_FILE_NAME = "secret.key"


class SecretBox:
    """Encrypts and decrypts short secrets; never logs or repeats them in errors."""

    def __init__(self, key: str | bytes) -> None:
        try:
            self._fernet = Fernet(key)
        except (ValueError, TypeError):
            raise ConfigurationError(
                "HOSTAWAY_SECRET_KEY is not a valid Fernet key (32 url-safe base64 bytes); "
                "make one with: python -c "
                "'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
            ) from None

    def encrypt(self, plaintext: str) -> bytes:
        return self._fernet.encrypt(plaintext.encode("utf-8"))

    def decrypt(self, ciphertext: bytes) -> str:
        try:
            return self._fernet.decrypt(bytes(ciphertext)).decode("utf-8")
        except InvalidToken:
            raise ConfigurationError(
                "a stored secret cannot be decrypted with the current HOSTAWAY_SECRET_KEY "
                "(was the key changed? restore it, or re-add the account)"
            ) from None


def _generated_key(home: Path) -> bytes:
    path = home / KEY_FILE_NAME
    if path.exists():
        return path.read_bytes().strip()
    home.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key()
    # The whole key goes into a private temporary file first, which is then hard-linked into place:
    # link() is atomic and fails if the name exists, so no process ever reads a half-written (or empty)
    # key file, and processes racing on a fresh home all agree on the first key linked.
    descriptor, temporary = tempfile.mkstemp(prefix=f".{KEY_FILE_NAME}.", dir=home)  # mode 0600
    try:
        with os.fdopen(descriptor, "wb") as key_file:
            key_file.write(key)
            key_file.flush()
            os.fsync(key_file.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            return path.read_bytes().strip()
    finally:
        os.unlink(temporary)
    return key


def secret_box_from_settings(settings: Settings) -> SecretBox:
    if settings.secret_key:
        return SecretBox(settings.secret_key)
    if settings.uses_embedded_postgres:
        return SecretBox(_generated_key(settings.home))
    raise ConfigurationError(
        "HOSTAWAY_SECRET_KEY must be set when HOSTAWAY_DATABASE_URL points at your own Postgres "
        "(secrets are stored encrypted with it)"
    )
