"""Encryption at rest for secrets stored in Postgres (client secrets, access tokens).

Fernet (AES-128-CBC + HMAC-SHA256) from ``cryptography``. The key comes from ``HOSTAWAY_SECRET_KEY``;
with the embedded default database and no key set, one is generated once into the pipeline home
(mode 0600), so a fresh machine works with no configuration. A deployment on its own Postgres must set
the key explicitly: generating one silently there would make secrets unreadable on the next machine.

Several keys may be in use at once (``MultiFernet``): ``HOSTAWAY_SECRET_KEY`` may list them separated by
commas, and the key file holds one per line. The first key encrypts; every key decrypts. That is how
``hostaway-pipeline secrets rotate-key`` moves every stored secret to a new key without a moment in which
something stored cannot be read (see ``key_rotation.py``).
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from hostaway_pipeline.settings import ConfigurationError, Settings

KEY_FILE_NAME = "secret.key"

KeyMaterial = str | bytes | Sequence[str | bytes]


class WrongKeyError(ConfigurationError):
    """Something stored was encrypted with a key this box does not hold."""


def split_keys(material: KeyMaterial) -> list[bytes]:
    """Keys from one string (several separated by commas or whitespace) or a sequence of them, in order."""
    items = [material] if isinstance(material, str | bytes) else list(material)
    keys: list[bytes] = []
    for item in items:
        text = item.decode("ascii", "replace") if isinstance(item, bytes) else item
        keys.extend(part.encode("ascii", "replace") for part in re.split(r"[\s,]+", text) if part)
    return keys


class SecretBox:
    """Encrypts and decrypts short secrets; never logs or repeats them (or a key) in errors.

    ``source`` names where the keys came from, for error messages (e.g. ``HOSTAWAY_SECRET_KEY``).
    """

    def __init__(self, keys: KeyMaterial, source: str = "HOSTAWAY_SECRET_KEY") -> None:
        self.source = source
        try:
            fernets = [Fernet(key) for key in split_keys(keys)]
            if not fernets:
                raise ValueError("no key")
        except (ValueError, TypeError):
            raise ConfigurationError(
                f"{source} is not a valid Fernet key (32 url-safe base64 bytes; several may be separated "
                "by commas, the first encrypting); make one with: python -c "
                "'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
            ) from None
        self._fernet = MultiFernet(fernets)

    def encrypt(self, plaintext: str) -> bytes:
        return self._fernet.encrypt(plaintext.encode("utf-8"))

    def decrypt(self, ciphertext: bytes) -> str:
        try:
            return self._fernet.decrypt(bytes(ciphertext)).decode("utf-8")
        except InvalidToken:
            raise WrongKeyError(
                f"a stored secret cannot be decrypted with {self.source} "
                "(was the key changed? restore it, or re-add the account)"
            ) from None

    def can_decrypt(self, ciphertext: bytes) -> bool:
        try:
            self._fernet.decrypt(bytes(ciphertext))
        except InvalidToken:
            return False
        return True

    def reencrypt(self, ciphertext: bytes) -> bytes:
        """The same secret encrypted under the first key (it was under any of the keys)."""
        try:
            return self._fernet.rotate(bytes(ciphertext))
        except InvalidToken:
            raise WrongKeyError(f"a stored secret cannot be decrypted with {self.source}") from None


def key_file_path(home: Path) -> Path:
    return home / KEY_FILE_NAME


def key_file_source(home: Path) -> str:
    return f"the key generated in {key_file_path(home)}"


def _generated_key(home: Path) -> bytes:
    path = key_file_path(home)
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


def key_file_keys(home: Path) -> list[bytes]:
    """The home's generated keys, the encrypting one first (made on first use)."""
    return split_keys(_generated_key(home))


def write_key_file(home: Path, keys: Sequence[bytes]) -> None:
    """Replace the home's key file with ``keys`` (one per line), atomically and durably.

    Readers see the old file or the new one, never a partial one; once this returns the new file
    survives a crash (the file and the directory entry are both synced).
    """
    if not keys:
        raise ValueError("a key file needs at least one key")
    path = key_file_path(home)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{KEY_FILE_NAME}.", dir=home)  # mode 0600
    try:
        with os.fdopen(descriptor, "wb") as key_file:
            key_file.write(b"\n".join(keys) + b"\n")
            key_file.flush()
            os.fsync(key_file.fileno())
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
    directory = os.open(home, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def secret_box_from_settings(settings: Settings) -> SecretBox:
    if settings.secret_key:
        return SecretBox(settings.secret_key, "HOSTAWAY_SECRET_KEY")
    if settings.uses_embedded_postgres:
        return SecretBox(key_file_keys(settings.home), key_file_source(settings.home))
    raise ConfigurationError(
        "HOSTAWAY_SECRET_KEY must be set when HOSTAWAY_DATABASE_URL points at your own Postgres "
        "(secrets are stored encrypted with it)"
    )
