"""The receiver's configuration: where it listens and the credentials Hostaway must send.

Address: ``HOSTAWAY_WEBHOOK_HOST`` (default 127.0.0.1) and ``HOSTAWAY_WEBHOOK_PORT`` (8787), validated in
``settings.py`` with every other variable. Credentials: ``HOSTAWAY_WEBHOOK_LOGIN`` and
``HOSTAWAY_WEBHOOK_PASSWORD``, from the environment only, never argv. A deployment must set them
(``webhooks serve`` refuses to start without them); the local stack (``dev``, ``demo``) generates a pair
once instead and keeps it in the pipeline home encrypted with the secrets key, so the receiver and the
webhooks registered at the stand-in keep agreeing across restarts.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from hostaway_pipeline.settings import ConfigurationError, Settings
from hostaway_pipeline.storage.secret_box import secret_box_from_settings
from hostaway_pipeline.webhooks.receiver import BasicCredentials

LOCAL_CREDENTIALS_FILE = "webhook_credentials.enc"
LOCAL_LOGIN = "hostaway-pipeline-local"


@dataclass(frozen=True)
class ListenAddress:
    host: str
    port: int


def listen_address(settings: Settings) -> ListenAddress:
    return ListenAddress(settings.webhook_host, settings.webhook_port)


def webhook_credentials(settings: Settings) -> BasicCredentials:
    """The deployment's webhook login and password; a one-line error naming what is missing."""
    missing = [name for name, value in (("HOSTAWAY_WEBHOOK_LOGIN", settings.webhook_login),
                                        ("HOSTAWAY_WEBHOOK_PASSWORD", settings.webhook_password)) if not value]
    if missing:
        raise ConfigurationError(
            f"set {' and '.join(missing)}: Hostaway sends them with every delivery (HTTP Basic) and the receiver "
            "accepts nothing without them (from the environment only, never as arguments)")
    assert settings.webhook_login is not None and settings.webhook_password is not None
    if ":" in settings.webhook_login:
        raise ConfigurationError("HOSTAWAY_WEBHOOK_LOGIN must not contain ':' (HTTP Basic cannot carry it)")
    return BasicCredentials(settings.webhook_login, settings.webhook_password)


def local_webhook_credentials(settings: Settings) -> tuple[BasicCredentials, bool]:
    """The configured pair when both are set, else the local stack's generated pair (created once).

    Returns the credentials and whether they were generated. The generated password is stored encrypted
    (Fernet, the secrets key) in ``<home>/webhook_credentials.enc``; it is never printed.
    """
    if settings.webhook_login or settings.webhook_password:
        return webhook_credentials(settings), False
    box = secret_box_from_settings(settings)
    path = Path(settings.home) / LOCAL_CREDENTIALS_FILE
    if path.exists():
        stored = json.loads(box.decrypt(path.read_bytes()))
        return BasicCredentials(stored["login"], stored["password"]), True
    credentials = BasicCredentials(LOCAL_LOGIN, secrets.token_urlsafe(32))
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(f".tmp{os.getpid()}")
    temporary.write_bytes(box.encrypt(json.dumps({"login": credentials.login, "password": credentials.password})))
    os.chmod(temporary, 0o600)
    temporary.replace(path)
    return credentials, True


def credentials_environment(credentials: BasicCredentials) -> dict[str, str]:
    """The variables that hand the pair to a child process (its environment, never its argv)."""
    return {"HOSTAWAY_WEBHOOK_LOGIN": credentials.login, "HOSTAWAY_WEBHOOK_PASSWORD": credentials.password}
