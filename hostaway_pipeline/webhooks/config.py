"""The receiver's configuration: where it listens and the credentials Hostaway must send.

``HOSTAWAY_WEBHOOK_HOST`` (default 127.0.0.1) and ``HOSTAWAY_WEBHOOK_PORT`` (8787) are read here;
``HOSTAWAY_WEBHOOK_LOGIN`` and ``HOSTAWAY_WEBHOOK_PASSWORD`` come from ``settings.py``, which reads them
for registration too. The password only ever comes from the environment, never argv.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from hostaway_pipeline.settings import ConfigurationError, Settings
from hostaway_pipeline.webhooks.receiver import BasicCredentials

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8787


@dataclass(frozen=True)
class ListenAddress:
    host: str
    port: int


def listen_address(environ: Mapping[str, str] | None = None) -> ListenAddress:
    env = os.environ if environ is None else environ
    host = (env.get("HOSTAWAY_WEBHOOK_HOST") or "").strip() or DEFAULT_HOST
    port_text = (env.get("HOSTAWAY_WEBHOOK_PORT") or "").strip()
    if not port_text:
        return ListenAddress(host, DEFAULT_PORT)
    if not (port_text.isascii() and port_text.isdigit()) or not 0 <= int(port_text) <= 65535:
        raise ConfigurationError(f"HOSTAWAY_WEBHOOK_PORT={port_text!r} must be a TCP port (0-65535)")
    return ListenAddress(host, int(port_text))


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
