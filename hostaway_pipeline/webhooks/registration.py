"""Registering this deployment's receiver as an account's unified webhook, idempotently.

Hostaway keeps a list of unified webhooks per account. This deployment's is the one with its URL or its
login (``HOSTAWAY_WEBHOOK_LOGIN``): registering lists first and updates that one in place (URL, login,
password, enabled), so running it again, or with a new URL, never makes a second registration.
Webhooks of other integrations (another URL and login) are left alone. Passwords are never returned.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol


class UnifiedWebhookApi(Protocol):
    """The calls of ``HostawayClient`` this module needs."""

    def unified_webhooks(self) -> list[dict]: ...
    def create_unified_webhook(self, payload: Mapping[str, Any]) -> dict: ...
    def update_unified_webhook(self, webhook_id: int, payload: Mapping[str, Any]) -> dict: ...
    def delete_unified_webhook(self, webhook_id: int) -> None: ...


@dataclass(frozen=True)
class Webhook:
    """A unified webhook as shown to users: never its password."""

    webhook_id: int
    url: str | None
    login: str | None
    enabled: bool

    @classmethod
    def from_api(cls, row: Mapping[str, Any]) -> Webhook:
        return cls(int(row["id"]), row.get("url"), row.get("login"), bool(row.get("isEnabled")))


@dataclass(frozen=True)
class Registration:
    action: str  # "created" or "updated"
    webhook: Webhook


def list_webhooks(api: UnifiedWebhookApi) -> list[Webhook]:
    return [Webhook.from_api(row) for row in api.unified_webhooks() if isinstance(row, Mapping) and "id" in row]


def ours(webhooks: list[Webhook], login: str, url: str | None = None) -> list[Webhook]:
    """This deployment's webhooks: same URL first, then same login; by id within each."""
    by_url = sorted((w for w in webhooks if url is not None and w.url == url), key=lambda w: w.webhook_id)
    by_login = sorted((w for w in webhooks if w.login == login and w not in by_url), key=lambda w: w.webhook_id)
    return by_url + by_login


def register(api: UnifiedWebhookApi, url: str, login: str, password: str,
             alerting_email: str | None = None) -> Registration:
    """Create this deployment's webhook, or update the one it already has (list first)."""
    payload: dict[str, Any] = {"isEnabled": 1, "url": url, "login": login, "password": password}
    if alerting_email:
        payload["alertingEmailAddress"] = alerting_email
    existing = ours(list_webhooks(api), login, url)
    if existing:
        updated = api.update_unified_webhook(existing[0].webhook_id, payload)
        return Registration("updated", _shown(updated, existing[0].webhook_id, url, login))
    created = api.create_unified_webhook(payload)
    return Registration("created", _shown(created, None, url, login))


def unregister(api: UnifiedWebhookApi, login: str, url: str | None = None) -> list[Webhook]:
    """Delete this deployment's webhooks (by login, or URL when given); returns what was deleted."""
    deleted = ours(list_webhooks(api), login, url)
    for webhook in deleted:
        api.delete_unified_webhook(webhook.webhook_id)
    return deleted


def _shown(row: Any, webhook_id: int | None, url: str, login: str) -> Webhook:
    if isinstance(row, Mapping) and "id" in row:
        return Webhook.from_api(row)
    return Webhook(webhook_id if webhook_id is not None else -1, url, login, True)
